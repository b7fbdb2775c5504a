from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from practice.demo import seed_demo_data


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
