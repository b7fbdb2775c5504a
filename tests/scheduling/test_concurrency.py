"""Two schedulers saving the same appointment at the same moment (PostgreSQL, real
row locks): exactly one save wins, the other is told to reload."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from scheduling.models import Appointment
from scheduling.services import StaleAppointment, appointment_update

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite serialises writers itself; row locks need PostgreSQL",
    ),
]


def test_simultaneous_saves_one_wins_one_is_stale(
    book, clinician, patient, at, scheduler, admin_user
):
    appointment = book(
        clinician=clinician, patients=[patient], start=at(2026, 12, 1, 9)
    )
    barrier = threading.Barrier(2)
    outcomes = []

    def save(actor, hour):
        from django.db import connections

        try:
            copy = Appointment.objects.get(pk=appointment.pk)
            barrier.wait()
            appointment_update(
                appointment=copy,
                actor=actor,
                expected_revision=0,
                start=at(2026, 12, 1, hour),
                end=at(2026, 12, 1, hour) + timedelta(minutes=53),
            )
            outcomes.append(("saved", hour))
        except StaleAppointment:
            outcomes.append(("stale", hour))
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=save, args=(scheduler, 10)),
        threading.Thread(target=save, args=(admin_user, 11)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(kind for kind, _ in outcomes) == ["saved", "stale"]
    (winner,) = [hour for kind, hour in outcomes if kind == "saved"]
    appointment.refresh_from_db()
    local = appointment.start.astimezone(appointment.practice.zone)
    assert local.hour == winner
    assert (appointment.sequence, appointment.revision) == (1, 1)
