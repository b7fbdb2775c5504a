"""Appointment services: feed contract, statuses, conflicts, locking, series, bad
input."""

import re
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from practice.services import user_set_active
from scheduling.models import Appointment, AppointmentChange, StatusTransitionError
from scheduling.recurrence import MONTHLY, WEEKLY, Recurrence
from scheduling.services import (
    SCOPE_FOLLOWING,
    SchedulingConflict,
    StaleAppointment,
    appointment_create,
    appointment_delete,
    appointment_set_status,
    appointment_update,
    location_update,
    patient_set_active,
)
from tests.factories import make_location

pytestmark = pytest.mark.django_db


def local(appointment):
    return appointment.start.astimezone(appointment.practice.zone).strftime(
        "%Y-%m-%d %H:%M"
    )


def test_create_records_history_and_starts_at_sequence_zero(
    book, clinician, patient, at, scheduler
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0)
    )
    assert appointment.sequence == 0
    assert appointment.uid
    change = appointment.changes.get()
    assert change.action == AppointmentChange.Action.CREATED
    assert change.actor == scheduler
    assert change.changes["patients"] == ["Élodie O'Brien"]
    assert change.changes["start"] == "1 Dec 2026, 09:00"


def test_published_change_bumps_sequence_and_updated_at(
    book, clinician, patient, at, scheduler
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0)
    )
    before = appointment.updated_at
    appointment_update(
        appointment=appointment,
        actor=scheduler,
        expected_revision=appointment.revision,
        start=at(2026, 12, 1, 10, 0),
        end=at(2026, 12, 1, 10, 53),
    )
    appointment.refresh_from_db()
    assert appointment.sequence == 1
    assert appointment.updated_at > before
    assert local(appointment) == "2026-12-01 10:00"
    change = appointment.changes.first()
    assert change.action == AppointmentChange.Action.CHANGED
    assert change.changes["start"] == ["1 Dec 2026, 09:00", "1 Dec 2026, 10:00"]


def test_visible_changes_in_one_second_publish_distinct_whole_seconds(
    book, clinician, patient, at, scheduler
):
    """Feeds publish LAST-MODIFIED to the second and ICSx5 takes an event only when
    that grew: back-to-back changes must still land on later seconds."""
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0)
    )
    seconds = [appointment.updated_at.replace(microsecond=0)]
    for hour in (10, 11, 12):
        appointment_update(
            appointment=appointment,
            actor=scheduler,
            expected_revision=appointment.revision,
            start=at(2026, 12, 1, hour, 0),
            end=at(2026, 12, 1, hour, 53),
        )
        appointment.refresh_from_db()
        seconds.append(appointment.updated_at.replace(microsecond=0))
    assert seconds == sorted(set(seconds))
    assert len(set(seconds)) == 4


def test_notes_only_change_leaves_what_feeds_publish_alone(
    book, clinician, patient, at, scheduler
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0)
    )
    before = appointment.updated_at
    appointment_update(
        appointment=appointment,
        actor=scheduler,
        expected_revision=appointment.revision,
        notes="Discussed sleep.",
    )
    appointment.refresh_from_db()
    assert appointment.sequence == 0
    assert appointment.revision == 1
    assert appointment.updated_at == before
    assert appointment.notes == "Discussed sleep."


@pytest.mark.parametrize("field", ["patients", "location", "clinician"])
def test_each_published_field_bumps_sequence(
    field,
    book,
    clinician,
    other_clinician,
    patient,
    second_patient,
    telehealth,
    at,
    scheduler,
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0)
    )
    value = {
        "patients": [patient, second_patient],
        "location": telehealth,
        "clinician": other_clinician,
    }[field]
    appointment_update(
        appointment=appointment,
        actor=scheduler,
        expected_revision=appointment.revision,
        **{field: value},
    )
    appointment.refresh_from_db()
    assert appointment.sequence == 1


def test_unchanged_save_changes_nothing(book, clinician, patient, at, scheduler):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0)
    )
    appointment_update(
        appointment=appointment,
        actor=scheduler,
        expected_revision=appointment.revision,
        patients=[patient],
        start=appointment.start,
    )
    appointment.refresh_from_db()
    assert (appointment.sequence, appointment.revision) == (0, 0)
    assert appointment.changes.count() == 1


def test_event_title_change_bumps_sequence(practice, clinician, at, scheduler):
    event = appointment_create(
        practice=practice,
        actor=scheduler,
        clinician=clinician,
        kind=Appointment.Kind.EVENT,
        title="Staff meeting",
        start=at(2026, 12, 1, 8, 0),
        end=at(2026, 12, 1, 9, 0),
    )
    assert event.summary_text == "Staff meeting"
    appointment_update(
        appointment=event, actor=scheduler, expected_revision=0, title="Team meeting"
    )
    event.refresh_from_db()
    assert (event.title, event.sequence) == ("Team meeting", 1)


def test_status_transitions_follow_the_table(book, clinician, patient, at, scheduler):
    # In the past: an outcome is only recorded once the appointment has started.
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2025, 12, 1, 9, 0)
    )
    appointment_set_status(
        appointment=appointment,
        actor=scheduler,
        status=Appointment.Status.ATTENDED,
        expected_revision=0,
    )
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.ATTENDED
    assert appointment.sequence == 1
    with pytest.raises(StatusTransitionError, match="attended cannot become cancelled"):
        appointment_set_status(
            appointment=appointment,
            actor=scheduler,
            status=Appointment.Status.CANCELLED,
            expected_revision=appointment.revision,
        )
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.ATTENDED
    assert appointment.sequence == 1


def test_transition_table_covers_every_status():
    assert set(Appointment.TRANSITIONS) == set(Appointment.Status)
    cancelled = Appointment(status=Appointment.Status.CANCELLED)
    assert cancelled.allowed_statuses() == [Appointment.Status.SCHEDULED]


def test_events_are_only_scheduled_or_cancelled(practice, clinician, at, scheduler):
    event = appointment_create(
        practice=practice,
        actor=scheduler,
        clinician=clinician,
        kind=Appointment.Kind.EVENT,
        title="Out of office",
        start=at(2026, 12, 1, 8, 0),
        end=at(2026, 12, 1, 17, 0),
    )
    assert event.allowed_statuses() == [Appointment.Status.CANCELLED]
    with pytest.raises(StatusTransitionError):
        appointment_set_status(
            appointment=event,
            actor=scheduler,
            status=Appointment.Status.NO_SHOW,
            expected_revision=0,
        )


def test_cancel_records_history_and_is_cancelled(
    book, clinician, patient, at, scheduler
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0)
    )
    appointment_set_status(
        appointment=appointment,
        actor=scheduler,
        status=Appointment.Status.LATE_CANCELLED,
        expected_revision=0,
    )
    appointment.refresh_from_db()
    assert appointment.is_cancelled
    change = appointment.changes.first()
    assert change.action == AppointmentChange.Action.CANCELLED
    assert change.changes["status"] == ["Scheduled", "Late-cancelled"]
    assert change.actor == scheduler


def test_delete_is_soft_and_bumps_sequence(book, clinician, patient, at, scheduler):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0)
    )
    appointment_delete(appointment=appointment, actor=scheduler, expected_revision=0)
    appointment.refresh_from_db()
    assert appointment.deleted_at is not None
    assert appointment.sequence == 1
    assert appointment.changes.first().action == AppointmentChange.Action.DELETED
    assert Appointment.objects.filter(pk=appointment.pk).exists()
    with pytest.raises(StaleAppointment):
        appointment_delete(
            appointment=appointment, actor=scheduler, expected_revision=1
        )


def test_stale_revision_is_refused_and_nothing_saved(
    book, clinician, patient, at, scheduler, admin_user
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0)
    )
    loaded_revision = appointment.revision
    appointment_update(
        appointment=appointment,
        actor=admin_user,
        expected_revision=loaded_revision,
        notes="first",
    )
    with pytest.raises(StaleAppointment, match="changed by someone else"):
        appointment_update(
            appointment=appointment,
            actor=scheduler,
            expected_revision=loaded_revision,
            start=at(2026, 12, 1, 11, 0),
            end=at(2026, 12, 1, 11, 53),
        )
    appointment.refresh_from_db()
    assert local(appointment) == "2026-12-01 09:00"
    assert appointment.notes == "first"
    with pytest.raises(StaleAppointment):
        appointment_set_status(
            appointment=appointment,
            actor=scheduler,
            status=Appointment.Status.CANCELLED,
            expected_revision=loaded_revision,
        )


# -- conflicts ----------------------------------------------------------------------


def test_clinician_double_booking_is_a_named_conflict(
    practice, book, clinician, patient, second_patient, service, at, scheduler
):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0))
    with pytest.raises(SchedulingConflict) as caught:
        appointment_create(
            practice=practice,
            actor=scheduler,
            clinician=clinician,
            patients=[second_patient],
            service=service,
            start=at(2026, 12, 1, 9, 30),
            end=at(2026, 12, 1, 10, 23),
        )
    (conflict,) = caught.value.conflicts
    assert "Dana Rivera, LCSW is already booked" in conflict.message
    assert "09:00–09:53" in conflict.message
    assert Appointment.objects.count() == 1
    appointment_create(
        practice=practice,
        actor=scheduler,
        clinician=clinician,
        patients=[second_patient],
        start=at(2026, 12, 1, 9, 30),
        end=at(2026, 12, 1, 10, 23),
        allow_conflicts=True,
    )
    assert Appointment.objects.count() == 2


def test_patient_double_booking_names_the_patient(
    practice, book, clinician, other_clinician, patient, at, scheduler
):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0))
    # Initials, the other booking's clinician and its time.
    message = (
        "É.O. already has an appointment with Dana Rivera, LCSW at 09:00–09:53 "
        "on Tue 1 Dec 2026."
    )
    with pytest.raises(SchedulingConflict, match=re.escape(message)):
        appointment_create(
            practice=practice,
            actor=scheduler,
            clinician=other_clinician,
            patients=[patient],
            start=at(2026, 12, 1, 9, 50),
            end=at(2026, 12, 1, 10, 30),
        )


def test_touching_cancelled_and_deleted_appointments_are_no_conflict(
    practice, book, clinician, patient, at, scheduler
):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0))
    cancelled = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 11, 0)
    )
    appointment_set_status(
        appointment=cancelled,
        actor=scheduler,
        status=Appointment.Status.CANCELLED,
        expected_revision=0,
    )
    deleted = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 13, 0)
    )
    appointment_delete(appointment=deleted, actor=scheduler, expected_revision=0)
    for hour in (11, 13):
        appointment_create(
            practice=practice,
            actor=scheduler,
            clinician=clinician,
            patients=[patient],
            start=at(2026, 12, 1, hour, 0),
            end=at(2026, 12, 1, hour, 53),
        )
    # Back to back with the 9:00 (ends 9:53) is fine too.
    appointment_create(
        practice=practice,
        actor=scheduler,
        clinician=clinician,
        patients=[patient],
        start=at(2026, 12, 1, 9, 53),
        end=at(2026, 12, 1, 10, 30),
    )


def test_moving_into_a_conflict_warns_and_saves_nothing(
    book, clinician, patient, second_patient, at, scheduler
):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9, 0))
    later = book(
        clinician=clinician, patients=[second_patient], start=at(2026, 12, 1, 11, 0)
    )
    with pytest.raises(SchedulingConflict):
        appointment_update(
            appointment=later,
            actor=scheduler,
            expected_revision=0,
            start=at(2026, 12, 1, 9, 15),
            end=at(2026, 12, 1, 10, 8),
        )
    later.refresh_from_db()
    assert (local(later), later.sequence) == ("2026-12-01 11:00", 0)


def test_series_conflict_is_found_in_one_query(
    practice,
    book,
    clinician,
    patient,
    second_patient,
    at,
    scheduler,
    django_assert_max_num_queries,
):
    book(clinician=clinician, patients=[patient], start=at(2026, 12, 22, 9, 0))
    # Savepoint, the overlap query, its patients, the personal busy time,
    # rollback: not one per occurrence.
    with django_assert_max_num_queries(6), pytest.raises(SchedulingConflict) as caught:
        appointment_create(
            practice=practice,
            actor=scheduler,
            clinician=clinician,
            patients=[second_patient],
            start=at(2026, 12, 1, 9, 0),
            end=at(2026, 12, 1, 9, 53),
            recurrence=Recurrence(frequency=WEEKLY, count=10),
        )
    assert "Tue 22 Dec 2026" in caught.value.conflicts[0].message


# -- bad input ----------------------------------------------------------------------


def _errors(call):
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.message_dict


@pytest.mark.parametrize(
    ("minutes", "message"),
    [
        (-30, "The end is before the start."),
        (0, "this would last no time"),
        (24 * 60 + 1, "more than 24 hours"),
    ],
)
def test_bad_durations_are_refused(
    practice, clinician, patient, at, scheduler, minutes, message
):
    start = at(2026, 12, 1, 9, 0)
    errors = _errors(
        lambda: appointment_create(
            practice=practice,
            actor=scheduler,
            clinician=clinician,
            patients=[patient],
            start=start,
            end=start + timedelta(minutes=minutes),
        )
    )
    assert message in " ".join(errors["end"])
    assert not Appointment.objects.exists()


def test_objects_of_another_practice_are_refused(
    practice,
    clinician,
    patient,
    outsider_patient,
    outsider_service,
    outsider_location,
    outsider_admin,
    at,
    scheduler,
):
    start = at(2026, 12, 1, 9, 0)
    errors = _errors(
        lambda: appointment_create(
            practice=practice,
            actor=scheduler,
            clinician=outsider_admin,
            patients=[patient, outsider_patient],
            service=outsider_service,
            location=outsider_location,
            start=start,
            end=start + timedelta(minutes=50),
        )
    )
    assert set(errors) == {"clinician", "patients", "service", "location"}
    assert not Appointment.objects.exists()


def test_deactivated_clinician_and_patient_cannot_be_booked(
    practice, clinician, patient, admin_user, at, scheduler
):
    user_set_active(user=clinician, active=False, actor=admin_user, client_ip=None)
    patient_set_active(patient=patient, actor=scheduler, active=False)
    start = at(2026, 12, 1, 9, 0)
    errors = _errors(
        lambda: appointment_create(
            practice=practice,
            actor=scheduler,
            clinician=clinician,
            patients=[patient],
            start=start,
            end=start + timedelta(minutes=50),
        )
    )
    assert "deactivated" in errors["clinician"][0]
    assert "deactivated" in errors["patients"][0]
    assert not Appointment.objects.exists()


def test_session_needs_patients_and_event_needs_title(
    practice, clinician, at, scheduler
):
    start = at(2026, 12, 1, 9, 0)
    for kind, field in (
        (Appointment.Kind.SESSION, "patients"),
        (Appointment.Kind.EVENT, "title"),
    ):
        errors = _errors(
            lambda kind=kind: appointment_create(
                practice=practice,
                actor=scheduler,
                clinician=clinician,
                kind=kind,
                title="   ",
                start=start,
                end=start + timedelta(minutes=50),
            )
        )
        assert field in errors
    assert not Appointment.objects.exists()


@override_settings(SERIES_MAX_OCCURRENCES=20)
def test_series_beyond_the_limit_is_refused(
    practice, clinician, patient, at, scheduler
):
    start = at(2026, 12, 1, 9, 0)

    def create(recurrence):
        return lambda: appointment_create(
            practice=practice,
            actor=scheduler,
            clinician=clinician,
            patients=[patient],
            start=start,
            end=start + timedelta(minutes=50),
            recurrence=recurrence,
        )

    errors = _errors(create(Recurrence(frequency=WEEKLY, count=300)))
    assert "at most 20 occurrences" in errors["count"][0]
    errors = _errors(create(Recurrence(frequency=WEEKLY, until=date(2030, 1, 1))))
    assert "more than 20 occurrences" in errors["until"][0]
    errors = _errors(create(Recurrence(frequency=WEEKLY, until=date(2026, 11, 1))))
    assert "cannot end before" in errors["until"][0]
    assert not Appointment.objects.exists()
    create(Recurrence(frequency=WEEKLY, count=20))()
    assert Appointment.objects.count() == 20


# -- series -------------------------------------------------------------------------


def test_weekly_series_through_march_dst_keeps_local_time(book, clinician, patient, at):
    first = book(
        clinician=clinician,
        patients=[patient],
        start=at(2026, 2, 23, 9, 0),
        recurrence=Recurrence(frequency=WEEKLY, count=4),
    )
    occurrences = list(first.series.occurrences.order_by("series_index"))
    assert [local(a) for a in occurrences] == [
        "2026-02-23 09:00",
        "2026-03-02 09:00",
        "2026-03-09 09:00",
        "2026-03-16 09:00",
    ]
    assert [a.series_index for a in occurrences] == [0, 1, 2, 3]
    assert all(a.end - a.start == timedelta(minutes=53) for a in occurrences)
    assert {a.uid for a in occurrences}.__len__() == 4
    assert all(a.patients.get() == patient for a in occurrences)


def test_weekly_series_through_november_dst_keeps_local_time(
    book, clinician, patient, at
):
    first = book(
        clinician=clinician,
        patients=[patient],
        start=at(2026, 10, 19, 9, 0),
        recurrence=Recurrence(frequency=WEEKLY, count=4),
    )
    assert [local(a) for a in first.series.occurrences.order_by("start")] == [
        "2026-10-19 09:00",
        "2026-10-26 09:00",
        "2026-11-02 09:00",
        "2026-11-09 09:00",
    ]


def test_monthly_series_on_the_second_tuesday(book, clinician, patient, at):
    first = book(
        clinician=clinician,
        patients=[patient],
        start=at(2026, 1, 13, 16, 0),
        recurrence=Recurrence(frequency=MONTHLY, count=3),
    )
    assert [local(a) for a in first.series.occurrences.order_by("start")] == [
        "2026-01-13 16:00",
        "2026-02-10 16:00",
        "2026-03-10 16:00",
    ]


def _series(book, clinician, patient, at, count=6):
    first = book(
        clinician=clinician,
        patients=[patient],
        start=at(2026, 2, 16, 9, 0),
        recurrence=Recurrence(frequency=WEEKLY, count=count),
    )
    return list(first.series.occurrences.order_by("series_index"))


def test_move_one_occurrence_leaves_the_others(book, clinician, patient, at, scheduler):
    occurrences = _series(book, clinician, patient, at)
    third = occurrences[2]
    appointment_update(
        appointment=third,
        actor=scheduler,
        expected_revision=0,
        start=at(2026, 3, 3, 14, 0),
        end=at(2026, 3, 3, 14, 53),
    )
    refreshed = [Appointment.objects.get(pk=a.pk) for a in occurrences]
    assert [local(a) for a in refreshed] == [
        "2026-02-16 09:00",
        "2026-02-23 09:00",
        "2026-03-03 14:00",
        "2026-03-09 09:00",
        "2026-03-16 09:00",
        "2026-03-23 09:00",
    ]
    assert [a.sequence for a in refreshed] == [0, 0, 1, 0, 0, 0]


def test_move_this_and_following_shifts_each_to_the_new_local_time(
    book, clinician, patient, at, scheduler
):
    occurrences = _series(book, clinician, patient, at)
    # From Monday 2 March 9:00 (before DST) to Tuesday 10:30, this and following.
    appointment_update(
        appointment=occurrences[2],
        actor=scheduler,
        expected_revision=0,
        scope=SCOPE_FOLLOWING,
        start=at(2026, 3, 3, 10, 30),
        end=at(2026, 3, 3, 11, 30),
    )
    refreshed = [Appointment.objects.get(pk=a.pk) for a in occurrences]
    assert [local(a) for a in refreshed] == [
        "2026-02-16 09:00",
        "2026-02-23 09:00",
        "2026-03-03 10:30",
        "2026-03-10 10:30",
        "2026-03-17 10:30",
        "2026-03-24 10:30",
    ]
    assert all(a.end - a.start == timedelta(hours=1) for a in refreshed[2:])
    assert [a.sequence for a in refreshed] == [0, 0, 1, 1, 1, 1]
    assert refreshed[4].changes.first().changes["scope"] == "this and following"


def test_this_and_following_applies_other_fields_too(
    book, clinician, patient, telehealth, at, scheduler
):
    occurrences = _series(book, clinician, patient, at, count=4)
    appointment_update(
        appointment=occurrences[1],
        actor=scheduler,
        expected_revision=0,
        scope=SCOPE_FOLLOWING,
        location=telehealth,
    )
    names = [Appointment.objects.get(pk=a.pk).location.name for a in occurrences]
    assert names == ["Main Street office", "Telehealth", "Telehealth", "Telehealth"]


def test_cancel_this_and_following(book, clinician, patient, at, scheduler):
    occurrences = _series(book, clinician, patient, at)
    appointment_set_status(
        appointment=occurrences[0],
        actor=scheduler,
        status=Appointment.Status.ATTENDED,
        expected_revision=0,
    )
    appointment_set_status(
        appointment=occurrences[3],
        actor=scheduler,
        status=Appointment.Status.CANCELLED,
        expected_revision=0,
        scope=SCOPE_FOLLOWING,
    )
    statuses = [Appointment.objects.get(pk=a.pk).status for a in occurrences]
    assert statuses == [
        "attended",
        "scheduled",
        "scheduled",
        "cancelled",
        "cancelled",
        "cancelled",
    ]
    assert (
        AppointmentChange.objects.filter(
            action=AppointmentChange.Action.CANCELLED
        ).count()
        == 3
    )


def test_delete_this_and_following(book, clinician, patient, at, scheduler):
    occurrences = _series(book, clinician, patient, at, count=4)
    deleted = appointment_delete(
        appointment=occurrences[1],
        actor=scheduler,
        expected_revision=0,
        scope=SCOPE_FOLLOWING,
    )
    assert [a.pk for a in deleted] == [a.pk for a in occurrences[1:]]
    live = Appointment.objects.filter(deleted_at__isnull=True)
    assert list(live) == [occurrences[0]]


def test_renaming_a_location_republishes_future_appointments(
    book, clinician, patient, office, at, scheduler
):
    past = book(clinician=clinician, patients=[patient], start=at(2020, 1, 6, 9, 0))
    future = book(clinician=clinician, patients=[patient], start=at(2099, 1, 6, 9, 0))
    location_update(
        location=office, name="Main St.", is_telehealth=False, is_active=True
    )
    past.refresh_from_db()
    future.refresh_from_db()
    assert (past.sequence, future.sequence) == (0, 1)


def test_patient_initials_change_republishes_future_appointments(
    book, clinician, patient, at, scheduler
):
    from scheduling.services import patient_update

    past = book(clinician=clinician, patients=[patient], start=at(2020, 1, 6, 9, 0))
    future = book(clinician=clinician, patients=[patient], start=at(2099, 1, 6, 9, 0))
    patient_update(patient=patient, actor=scheduler, phone="555-0100")
    future.refresh_from_db()
    assert future.sequence == 0  # the phone never reaches a calendar
    patient_update(patient=patient, actor=scheduler, last_name="Brennan")
    past.refresh_from_db()
    future.refresh_from_db()
    assert (past.sequence, future.sequence) == (0, 1)
    assert future.summary_text == "É.B."


def test_renaming_a_service_republishes_nothing(book, clinician, patient, service, at):
    """No calendar shows a service: renaming one must not make every subscriber
    download every appointment again."""
    from scheduling.services import service_update

    future = book(clinician=clinician, patients=[patient], start=at(2099, 1, 6, 9, 0))
    service_update(service=service, name="Therapy", default_minutes=50, is_active=True)
    future.refresh_from_db()
    assert (future.sequence, future.updated_at) == (0, future.created_at)


def test_a_location_turned_telehealth_republishes_its_appointments(
    book, clinician, patient, at
):
    """Calendars show a telehealth location only as "Telehealth"."""
    from scheduling.services import location_update

    office = make_location(clinician.practice, name="Room 2")
    future = book(
        clinician=clinician,
        patients=[patient],
        start=at(2099, 1, 6, 9, 0),
        location=office,
    )
    location_update(location=office, name="Room 2", is_telehealth=True, is_active=True)
    future.refresh_from_db()
    assert future.sequence == 1


@pytest.mark.parametrize("change", ["patients", "location", "cancel", "delete"])
def test_series_changes_cost_the_same_queries_for_5_or_40_occurrences(
    book, clinician, patient, second_patient, telehealth, at, scheduler, change
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def run(count, year):
        first = book(
            clinician=clinician,
            patients=[patient],
            start=at(year, 1, 5, 9),
            recurrence=Recurrence(frequency=WEEKLY, count=count),
        )
        with CaptureQueriesContext(connection) as captured:
            if change == "patients":
                appointment_update(
                    appointment=first,
                    actor=scheduler,
                    expected_revision=first.revision,
                    scope=SCOPE_FOLLOWING,
                    patients=[patient, second_patient],
                )
            elif change == "location":
                appointment_update(
                    appointment=first,
                    actor=scheduler,
                    expected_revision=first.revision,
                    scope=SCOPE_FOLLOWING,
                    location=telehealth,
                )
            elif change == "cancel":
                appointment_set_status(
                    appointment=first,
                    actor=scheduler,
                    status=Appointment.Status.CANCELLED,
                    expected_revision=first.revision,
                    scope=SCOPE_FOLLOWING,
                )
            else:
                appointment_delete(
                    appointment=first,
                    actor=scheduler,
                    expected_revision=first.revision,
                    scope=SCOPE_FOLLOWING,
                )
        series = Appointment.objects.filter(series=first.series)
        if change == "patients":
            assert all(
                {p.pk for p in a.patients.all()} == {patient.pk, second_patient.pk}
                for a in series
            )
        elif change == "location":
            assert set(series.values_list("location", flat=True)) == {telehealth.pk}
        elif change == "cancel":
            assert set(series.values_list("status", flat=True)) == {"cancelled"}
        else:
            assert not series.filter(deleted_at__isnull=True).exists()
        assert set(series.values_list("sequence", flat=True)) == {1}
        assert (
            AppointmentChange.objects.filter(appointment__series=first.series).count()
            == 2 * count
        )  # created, then changed
        return len(captured.captured_queries)

    assert run(5, 2098) == run(40, 2099)
