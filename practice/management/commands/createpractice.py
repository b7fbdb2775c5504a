import getpass

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from practice.models import Role
from practice.services import practice_create, user_create


class Command(BaseCommand):
    help = (
        "Create a practice and its first administrator. Nothing is saved unless "
        "both are valid."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Practice name, e.g. 'Riverside Counseling'")
        parser.add_argument(
            "--time-zone", default="America/New_York", help="IANA time zone name"
        )
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-name", required=True)
        parser.add_argument(
            "--clinician", action="store_true", help="Administrator is also a clinician"
        )
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--password", help="Omit to be prompted")
        how.add_argument(
            "--invite",
            action="store_true",
            help="Email the administrator a link to choose a password instead",
        )

    def handle(self, *args, **options):
        password = None
        if not options["invite"]:
            password = options["password"] or getpass.getpass(
                "Administrator password: "
            )
        roles = [Role.ADMINISTRATOR]
        if options["clinician"]:
            roles.append(Role.CLINICIAN)
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
                if password is not None:
                    validate_password(password, user)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        how = "invited by email" if password is None else "with the given password"
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {practice} ({practice.time_zone}) with administrator "
                f"{user.email}, {how}."
            )
        )
