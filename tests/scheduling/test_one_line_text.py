"""Names and titles are stored on one line and without bidirectional controls,
whichever form or service they come through; calendars publish them the same way
(``tests/feedprops`` checks that for text stored any other way)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from practice.models import Role
from practice.services import practice_update, user_update
from practice.text import single_line
from scheduling.models import Appointment
from scheduling.services import appointment_create, location_create, patient_create

DISGUISED = " \u202eDana\r\nRivera\u202c\t\x07"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        (DISGUISED, "Dana Rivera"),
        ("a\u2028b\u2029c\x85d", "a b c d"),
        ("\u2066left\u2069 \u200fright\u200e", "left right"),
        ("  many   spaces\u00a0here ", "many spaces here"),
        ("שלום & 王小明 é", "שלום & 王小明 é"),
        ("", ""),
    ],
)
def test_single_line(typed, stored):
    assert single_line(typed) == stored


def test_names_and_titles_are_stored_on_one_line(
    practice, admin_user, clinician, scheduler
):
    user_update(
        user=clinician,
        display_name=DISGUISED,
        credentials="LCSW\r\n",
        roles=[Role.CLINICIAN],
        actor=admin_user,
        client_ip=None,
    )
    clinician.refresh_from_db()
    assert (clinician.display_name, clinician.credentials) == ("Dana Rivera", "LCSW")

    practice_update(
        practice=practice, actor=admin_user, client_ip=None, name="River\u202eside\n"
    )
    practice.refresh_from_db()
    assert practice.name == "Riverside"

    room = location_create(
        practice=practice, name="Suite\r\n4\u202e", is_telehealth=False
    )
    assert room.name == "Suite 4"
    patient = patient_create(
        practice=practice,
        actor=scheduler,
        first_name="\u202eMaria\n",
        last_name="Lopez",
    )
    assert patient.first_name == "Maria"

    start = timezone.now().replace(microsecond=0) + timedelta(days=1)
    meeting = appointment_create(
        practice=practice,
        actor=scheduler,
        clinician=clinician,
        kind=Appointment.Kind.EVENT,
        title="Staff\r\nmeeting \u202egnitsixe",
        start=start,
        end=start + timedelta(hours=1),
        allow_conflicts=True,
    )
    assert meeting.title == "Staff meeting gnitsixe"
