from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from practice.demo import seed_practices


class Command(BaseCommand):
    help = (
        "Create or refresh the demo practices (idempotent). "
        "Refuses production settings."
    )

    def handle(self, *args, **options):
        try:
            riverside, harbor = seed_practices()
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        extra = demo_hooks()
        for hook in extra:
            hook(riverside=riverside, harbor=harbor)
        self.stdout.write(
            self.style.SUCCESS(f"Demo practices ready: {riverside}, {harbor}.")
        )


def demo_hooks():
    """Later apps add their demo data here (scheduling, calendar sync)."""
    hooks = []
    try:
        from scheduling.demo import seed_scheduling
    except ImportError:
        pass
    else:
        hooks.append(seed_scheduling)
    try:
        from calendarsync.demo import seed_calendarsync
    except ImportError:
        pass
    else:
        hooks.append(seed_calendarsync)
    return hooks
