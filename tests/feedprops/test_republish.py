"""Changes made elsewhere that alter what an event says in a feed: a clinician's
name (in the practice-wide calendar), and a location's or patient's name on an
appointment that has already ended but is still in the feed's window.

ICSx5 replaces an event only when its LAST-MODIFIED increased, and Google reportedly
only when SEQUENCE or LAST-MODIFIED changed, so each of these must publish a newer
version of every event a feed still shows (60 days back and onwards), not only of
future ones.
"""

from datetime import timedelta

import icalendar
import pytest
from django.db.models import F

from practice.models import Role
from practice.services import user_update
from scheduling.models import Appointment
from scheduling.services import location_update, patient_update
from tests.factories import (
    feed_paths,
    local,
    make_appointment,
    make_location,
    make_patient,
)


def one_event(client, path, uid) -> icalendar.Event:
    calendar = icalendar.Calendar.from_ical(client.get(path).content)
    (event,) = [e for e in calendar.walk("VEVENT") if str(e["UID"]) == f"{uid}@tend"]
    return event


def age() -> None:
    """A minute passes (straight to the table: the services never date back)."""
    Appointment.objects.update(
        created_at=F("created_at") - timedelta(minutes=1),
        updated_at=F("updated_at") - timedelta(minutes=1),
    )


def assert_newer_version(before, after, name):
    assert after.decoded(name) != before.decoded(name)
    assert after["SEQUENCE"] > before["SEQUENCE"]
    assert after.decoded("LAST-MODIFIED") > before.decoded("LAST-MODIFIED")


def test_renaming_a_clinician_republishes_their_practice_wide_events(
    client, practice, clinician, admin_user
):
    meeting = make_appointment(
        clinician,
        kind=Appointment.Kind.EVENT,
        title="Supervision",
        start=local(practice, days=2, hour=9),
        end=local(practice, days=2, hour=10),
    )
    path = feed_paths(admin_user)["practice"]
    age()
    before = one_event(client, path, meeting.uid)
    user_update(
        user=clinician,
        display_name="Dana Rivera-Smith",
        credentials="LCSW",
        roles=[Role.CLINICIAN],
        actor=admin_user,
        client_ip=None,
    )
    assert_newer_version(before, one_event(client, path, meeting.uid), "SUMMARY")


@pytest.mark.parametrize("what", ["location", "patient"])
def test_renames_republish_ended_appointments_still_in_the_feed(
    client, practice, clinician, admin_user, what
):
    office = make_location(practice, name="Main Street Office")
    patient = make_patient(practice, first_name="Ann", last_name="Lee")
    past = make_appointment(
        clinician,
        patients=[patient],
        location=office,
        start=local(practice, days=-3, hour=9),
        end=local(practice, days=-3, hour=10),
    )
    path = feed_paths(clinician)["personal"]
    age()
    before = one_event(client, path, past.uid)
    if what == "location":
        location_update(
            location=office, name="Harbour Office", is_telehealth=False, is_active=True
        )
        changed = "LOCATION"
    else:
        patient_update(patient=patient, actor=admin_user, first_name="Bea")
        changed = "SUMMARY"
    assert_newer_version(before, one_event(client, path, past.uid), changed)
