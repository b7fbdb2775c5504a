"""What the SQLite concurrency test does to its file database, through the real
services in a management shell (``manage.py shell -c``). Each action prints one
JSON line."""

import json
import time
from datetime import datetime, timedelta

from django.db import DatabaseError
from django.test.utils import override_settings
from django.utils import timezone

from calendarsync.services import feed_links_issue
from practice.models import Practice, Role, User
from practice.services import user_create
from scheduling.models import Appointment, Patient
from scheduling.services import appointment_create, appointment_update

CLINICIANS = 10
DOMAIN = "busy.test"


def _say(**values) -> None:
    print(json.dumps(values))


def _paths(user: User) -> list[str]:
    _access, links = feed_links_issue(user=user)
    return ["/" + item.https_url.split("/", 3)[3] for item in links]


# Hashing real passwords would cost most of the seeding time.
@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
def seed() -> None:
    """A practice with ten clinicians, a few appointments each and a scheduler;
    prints every calendar link the clinicians and the scheduler hold."""
    practice = Practice.objects.create(
        name="Busy Counseling", time_zone="America/New_York"
    )
    patient = Patient.objects.create(
        practice=practice, first_name="Élodie", last_name="O'Brien"
    )
    clinicians = [
        user_create(
            practice=practice,
            email=f"clinician{n}@{DOMAIN}",
            display_name=f"Clinician {n}",
            roles=[Role.CLINICIAN],
            password="busy-password",
        )
        for n in range(CLINICIANS)
    ]
    scheduler = user_create(
        practice=practice,
        email=f"scheduler@{DOMAIN}",
        display_name="Sam Porter",
        roles=[Role.SCHEDULER],
        password="busy-password",
    )
    today = timezone.now().astimezone(practice.zone).date()
    for clinician in clinicians:
        for days in (1, 2, 3):
            day = today + timedelta(days=days)
            start = datetime(day.year, day.month, day.day, 9, tzinfo=practice.zone)
            appointment_create(
                practice=practice,
                actor=scheduler,
                clinician=clinician,
                start=start,
                end=start + timedelta(minutes=50),
                patients=[patient],
                allow_conflicts=True,
            )
    paths = [path for user in [*clinicians, scheduler] for path in _paths(user)]
    _say(paths=paths)


def write(seconds: float = 5.0) -> None:
    """Move appointments back and forth, as schedulers would, for ``seconds``;
    prints how many moves were saved and every database error met."""
    scheduler = User.objects.get(email=f"scheduler@{DOMAIN}")
    ids = list(
        Appointment.objects.filter(practice=scheduler.practice)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    saved, errors = 0, []
    deadline = time.monotonic() + seconds
    turn = 0
    while time.monotonic() < deadline:
        shift = timedelta(minutes=15 if turn // len(ids) % 2 == 0 else -15)
        pk = ids[turn % len(ids)]
        turn += 1
        try:
            appointment = Appointment.objects.get(pk=pk)
            appointment_update(
                appointment=appointment,
                actor=scheduler,
                expected_revision=None,
                start=appointment.start + shift,
                end=appointment.end + shift,
                allow_conflicts=True,
            )
        except DatabaseError as error:
            errors.append(str(error))
        else:
            saved += 1
    _say(saved=saved, errors=errors)
