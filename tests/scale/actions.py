"""What the two-server test (and the database-outage test, which only seeds) does
to the shared database, run through the real services in a management shell
(``manage.py shell -c``) as an operator would. Each action prints one JSON line."""

import json
from datetime import datetime, timedelta

from django.utils import timezone

from calendarsync.models import FeedScope
from calendarsync.services import (
    feed_access_disable,
    feed_access_reset,
    feed_links_issue,
)
from practice.models import Practice, Role, User
from practice.services import user_create
from scheduling.models import Appointment, Patient
from scheduling.services import appointment_create, appointment_update

EMAIL = "rivera@two-servers.test"
PASSWORD = "two-servers-password"


def _say(**values) -> None:
    print(json.dumps(values))


def _clinician() -> User:
    return User.objects.get(email=EMAIL)


def _path(user: User, scope: str = FeedScope.PERSONAL) -> str:
    _access, links = feed_links_issue(user=user)
    (item,) = [item for item in links if item.link.scope == scope]
    return "/" + item.https_url.split("/", 3)[3]


def seed() -> None:
    practice = Practice.objects.create(
        name="Two Servers Counseling", time_zone="America/New_York"
    )
    clinician = user_create(
        practice=practice,
        email=EMAIL,
        display_name="Dana Rivera",
        credentials="LCSW",
        roles=[Role.CLINICIAN],
        password=PASSWORD,
    )
    patient = Patient.objects.create(
        practice=practice, first_name="Élodie", last_name="O'Brien"
    )
    today = timezone.now().astimezone(practice.zone).date() + timedelta(days=2)
    start = datetime(today.year, today.month, today.day, 9, tzinfo=practice.zone)
    appointment_create(
        practice=practice,
        actor=clinician,
        clinician=clinician,
        start=start,
        end=start + timedelta(minutes=50),
        patients=[patient],
    )
    _say(path=_path(clinician))


def move() -> None:
    appointment = Appointment.objects.get(clinician=_clinician())
    appointment_update(
        appointment=appointment,
        actor=_clinician(),
        expected_revision=None,
        start=appointment.start + timedelta(hours=2),
        end=appointment.end + timedelta(hours=2),
    )
    _say(sequence=Appointment.objects.get(pk=appointment.pk).sequence)


def reset() -> None:
    clinician = _clinician()
    feed_access_reset(user=clinician, actor=clinician, client_ip=None)
    _say(path=_path(clinician))


def disable() -> None:
    clinician = _clinician()
    feed_access_disable(user=clinician, actor=clinician, client_ip=None)
    _say(done=True)
