"""Settings → Audit log: filters, CSV export, and a log nobody can change."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from practice.models import AuditEvent, AuditLogImmutable, patient_ids_text
from practice.services import audit_record
from scheduling.services import patient_view_record
from tests.factories import make_patient, make_practice, make_user

Kind = AuditEvent.Kind
only_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="The trigger exists on PostgreSQL only; SQLite relies on the model",
)


def _at(practice, kind, when, **fields):
    # Straight to the table to fake time passing: events are only ever inserted
    # "now", and a date filter needs events of other days.
    return AuditEvent.objects.create(
        practice=practice, kind=kind, created_at=when, **fields
    )


def _rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def log(practice, admin_user, clinician, scheduler):
    """Viewings by two people of two patients, over three days (New York time)."""
    elodie = make_patient(practice, first_name="Élodie", last_name="O'Brien")
    kwame = make_patient(practice, first_name="Kwame", last_name="Mensah")
    viewed = Kind.PATIENT_VIEWED
    _at(
        practice,
        viewed,
        datetime(2026, 11, 2, 4, 59, tzinfo=UTC),  # 1 Nov, 23:59 in New York
        actor=clinician,
        patient_ids=patient_ids_text([elodie.pk]),
    )
    _at(
        practice,
        viewed,
        datetime(2026, 11, 2, 5, 0, tzinfo=UTC),  # 2 Nov, 00:00 in New York
        actor=scheduler,
        patient_ids=patient_ids_text([kwame.pk]),
    )
    _at(
        practice,
        Kind.APPOINTMENT_VIEWED,
        datetime(2026, 11, 3, 15, 0, tzinfo=UTC),
        actor=scheduler,
        patient_ids=patient_ids_text([elodie.pk, kwame.pk]),
    )
    _at(practice, Kind.LOGIN, datetime(2026, 11, 3, 16, 0, tzinfo=UTC), actor=clinician)
    return {"elodie": elodie, "kwame": kwame}


def _kinds_and_people(response):
    return [(event.kind, event.actor.email) for event in response.context["page"]]


def test_filter_by_person(login, admin_user, clinician, log):
    response = login(admin_user).get(f"/settings/audit/?person={clinician.pk}")
    assert _kinds_and_people(response) == [
        (Kind.LOGIN, clinician.email),
        (Kind.PATIENT_VIEWED, clinician.email),
    ]


def test_filter_by_patient_name_or_number(login, admin_user, log):
    client = login(admin_user)
    by_name = client.get("/settings/audit/?patient=obrien")
    assert [event.kind for event in by_name.context["page"]] == [
        Kind.PATIENT_CREATED,  # today, by the factory
        Kind.APPOINTMENT_VIEWED,
        Kind.PATIENT_VIEWED,
    ]
    kwame = log["kwame"].pk
    by_number = client.get(f"/settings/audit/?patient=%23{kwame}")
    assert [event.patient_id_list for event in by_number.context["page"]] == [
        [kwame],
        sorted([log["elodie"].pk, kwame]),
        [kwame],
    ]
    # Patient 1 is not patient 11: ids are matched whole.
    assert client.get("/settings/audit/?patient=1").status_code == 200


def test_filter_by_kind_and_days_in_the_practice_zone(login, admin_user, log):
    client = login(admin_user)
    one_day = client.get("/settings/audit/?first_day=2026-11-02&last_day=2026-11-02")
    assert [event.kind for event in one_day.context["page"]] == [Kind.PATIENT_VIEWED]
    assert one_day.context["page"][0].created_at == datetime(
        2026, 11, 2, 5, 0, tzinfo=UTC
    )
    kind = client.get("/settings/audit/?kind=patient_viewed&last_day=2026-11-01")
    assert len(kind.context["page"]) == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("first_day=yesterday", "Write the first day as YYYY-MM-DD."),
        (
            "first_day=2026-11-03&last_day=2026-11-02",
            "The last day must be on or after the first day.",
        ),
        ("kind=shredded", "is not a kind of event"),
        ("person=999999", "That person is not a user of this practice."),
        ("patient=Nobody+Here", "No patient of this practice matches"),
    ],
)
def test_bad_filters_get_a_clear_message_and_keep_the_input(
    login, admin_user, log, query, message
):
    response = login(admin_user).get(f"/settings/audit/?{query}")
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert response.context["page"] is None
    assert "Nothing is shown until the filter above is corrected." in html
    # What was typed stays in the form.
    assert response.context["form"].data.urlencode() == query


def test_a_person_of_another_practice_is_refused(
    login, admin_user, outsider_admin, log
):
    response = login(admin_user).get(f"/settings/audit/?person={outsider_admin.pk}")
    assert response.status_code == 400


def test_too_many_matching_patients_ask_for_more(login, practice, admin_user):
    for number in range(21):
        make_patient(practice, first_name=f"Sam{number}", last_name="Jones")
    response = login(admin_user).get("/settings/audit/?patient=jones")
    assert response.status_code == 400
    assert "More than 20 patients match" in response.content.decode()


def test_pages_keep_the_filter(login, practice, admin_user, clinician):
    AuditEvent.objects.bulk_create(
        [AuditEvent(practice=practice, kind=Kind.LOGIN, actor=clinician)] * 60
    )
    html = (
        login(admin_user)
        .get(f"/settings/audit/?person={clinician.pk}")
        .content.decode()
    )
    assert "Page 1 of 2" in html
    assert f'href="?person={clinician.pk}&amp;page=2"' in html


def test_csv_export_of_the_filtered_log(login, admin_user, scheduler, log):
    response = login(admin_user).get(
        f"/settings/audit/export.csv?person={scheduler.pk}", REMOTE_ADDR="192.0.2.9"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith(
        'attachment; filename="audit-log-'
    )
    header, *rows = _rows(response)
    assert header[:3] == ["When", "Event", "Event code"]
    assert [(row[0], row[2], row[4]) for row in rows] == [
        ("2026-11-03T10:00:00-05:00", "appointment_viewed", scheduler.email),
        ("2026-11-02T00:00:00-05:00", "patient_viewed", scheduler.email),
    ]
    # Patients by number only: names do not leave Tend in the export.
    assert rows[0][6] == f"{log['elodie'].pk} {log['kwame'].pk}"
    assert "Brien" not in str(rows)
    # The export itself is on the record.
    [exported] = AuditEvent.objects.filter(kind=Kind.AUDIT_EXPORTED)
    assert exported.actor == admin_user
    assert exported.client_ip == "192.0.2.9"
    assert exported.details == {"filter": f"person={scheduler.pk}"}


def test_csv_cells_never_start_a_formula(login, practice, admin_user):
    sneaky = make_user(practice, name='=HYPERLINK("http://x.test")')
    audit_record(
        kind=Kind.LOGIN_FAILED,
        practice=practice,
        actor=sneaky,
        details={"email": "+cmd@x.test", "note": "-2+3", "at": "@SUM(A1)"},
    )
    exported = _rows(login(admin_user).get("/settings/audit/export.csv"))
    [row] = [row for row in exported if row[2] == Kind.LOGIN_FAILED]
    assert row[3] == '\'=HYPERLINK("http://x.test")'
    # Details start with their name, so they need no quote (PostgreSQL's jsonb
    # keeps keys in its own order).
    assert sorted(row[8].split("; ")) == [
        "at: @SUM(A1)",
        "email: +cmd@x.test",
        "note: -2+3",
    ]
    # A cell is only quoted when it starts with one of = + - @.
    audit_record(kind=Kind.LOGIN_FAILED, practice=practice, details={"email": "x"})
    from practice.export import csv_safe

    assert [csv_safe(value) for value in ("=1", "+1", "-1", "@1", "a=1", "", None)] == [
        "'=1",
        "'+1",
        "'-1",
        "'@1",
        "a=1",
        "",
        "",
    ]


def test_csv_export_with_a_bad_filter_shows_the_message(login, admin_user):
    response = login(admin_user).get("/settings/audit/export.csv?first_day=soon")
    assert response.status_code == 400
    assert "Write the first day as YYYY-MM-DD." in response.content.decode()
    assert not AuditEvent.objects.filter(kind=Kind.AUDIT_EXPORTED).exists()


def test_csv_export_is_for_administrators_of_the_practice_only(
    login, scheduler, clinician, outsider_admin, log
):
    for member in (scheduler, clinician):
        response = login(member).get("/settings/audit/export.csv")
        assert response.status_code in (302, 403)
    rows = _rows(login(outsider_admin).get("/settings/audit/export.csv"))
    assert {row[2] for row in rows[1:]} == {
        Kind.USER_CREATED,
        Kind.LOGIN,
        Kind.AUDIT_EXPORTED,
    }
    assert "riverside" not in str(rows)


# -- the log cannot be changed or deleted ---------------------------------------


@pytest.fixture
def event(practice, clinician):
    return audit_record(kind=Kind.LOGIN, practice=practice, actor=clinician)


def test_an_event_cannot_be_saved_again_or_deleted(event):
    event.kind = Kind.LOGOUT
    with pytest.raises(AuditLogImmutable):
        event.save()
    with pytest.raises(AuditLogImmutable):
        event.delete()
    with pytest.raises(AuditLogImmutable):
        AuditEvent.objects.filter(pk=event.pk).update(kind=Kind.LOGOUT)
    with pytest.raises(AuditLogImmutable):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AuditLogImmutable):
        AuditEvent.objects.bulk_update([event], ["kind"])
    event.refresh_from_db()
    assert event.kind == Kind.LOGIN


def test_deleting_a_user_or_practice_with_events_is_refused(practice, clinician, event):
    with pytest.raises(ProtectedError):
        clinician.delete()
    with pytest.raises(ProtectedError):
        practice.delete()
    assert AuditEvent.objects.get(pk=event.pk).actor == clinician


def test_a_practice_without_users_or_events_can_still_be_deleted(db):
    empty = make_practice(name="Never used")
    empty.delete()


@only_postgresql
def test_postgresql_refuses_update_and_delete_of_events(event):
    for statement in (
        "UPDATE practice_auditevent SET kind = 'logout' WHERE id = %s",
        "DELETE FROM practice_auditevent WHERE id = %s",
    ):
        with pytest.raises(IntegrityError, match="audit log cannot be changed"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).kind == Kind.LOGIN
    # Inserting stays possible, of course.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO practice_auditevent (kind, practice_id, patient_ids, details, "
            "created_at) VALUES ('login', %s, '', '{}', now())",
            [event.practice_id],
        )


@only_postgresql
def test_postgresql_refuses_the_cascades_the_model_protects_against(
    practice, clinician, event
):
    # SET NULL and CASCADE written by hand, as an old migration or a script might.
    with pytest.raises(IntegrityError):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE practice_auditevent SET actor_id = NULL WHERE actor_id = %s",
                [clinician.pk],
            )
    with pytest.raises(IntegrityError):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM practice_auditevent WHERE practice_id = %s", [practice.pk]
            )


def test_viewing_a_patient_twice_is_two_events(practice, scheduler):
    patient = make_patient(practice, first_name="Ana", last_name="Lopez")
    patient_view_record(user=scheduler, patient=patient, client_ip=None)
    patient_view_record(user=scheduler, patient=patient, client_ip=None)
    assert AuditEvent.objects.filter(kind=Kind.PATIENT_VIEWED).count() == 2
