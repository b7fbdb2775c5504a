from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from calendarsync.demo import seed_calendarsync
from practice.demo import seed_practices
from scheduling.demo import seed_scheduling


def seed_demo_data():
    """Create or refresh both demo practices and everything in them; returns them
    (riverside, harbor). ImproperlyConfigured under production settings."""
    riverside, harbor = seed_practices()
    for seed in (seed_scheduling, seed_calendarsync):
        seed(riverside=riverside, harbor=harbor)
    return riverside, harbor


class Command(BaseCommand):
    help = (
        "Create or refresh the demo practices (idempotent). "
        "Refuses production settings."
    )

    def handle(self, *args, **options):
        try:
            riverside, harbor = seed_demo_data()
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            self.style.SUCCESS(f"Demo practices ready: {riverside}, {harbor}.")
        )
