import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from practice.models import Role
from practice.services import practice_create, user_create


class Command(BaseCommand):
    help = "Create a practice and its first administrator."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Practice name, e.g. 'Riverside Counseling'")
        parser.add_argument("--time-zone", default="America/New_York", help="IANA zone")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-name", required=True)
        parser.add_argument(
            "--clinician", action="store_true", help="Administrator is also a clinician"
        )
        parser.add_argument("--password", help="Omit to be prompted")

    def handle(self, *args, **options):
        password = options["password"] or getpass.getpass("Administrator password: ")
        roles = [Role.ADMINISTRATOR] + (
            [Role.CLINICIAN] if options["clinician"] else []
        )
        try:
            with transaction.atomic():
                practice = practice_create(
                    name=options["name"], time_zone=options["time_zone"]
                )
                user = user_create(
                    practice=practice,
                    email=options["admin_email"],
                    display_name=options["admin_name"],
                    roles=roles,
                    password=password,
                )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(
            self.style.SUCCESS(f"Created {practice} with administrator {user.email}.")
        )
