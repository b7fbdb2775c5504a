"""Installation operators' access to practice data at /operator/ is on the record,
in the log of each practice whose data they saw or changed."""

import pytest
from django.contrib import admin

from practice.admin_audit import AuditedModelAdmin
from practice.models import AuditEvent
from tests.factories import (
    make_appointment,
    make_authenticator,
    make_operator,
    make_patient,
)
from tests.support import pass_second_step

Kind = AuditEvent.Kind
ADDRESS = "198.51.100.20"


@pytest.fixture
def operator(db):
    operator = make_operator()
    operator.authenticator_key = make_authenticator(operator)
    return operator


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    pass_second_step(client, operator.authenticator_key)  # operators always do
    return client


def _operator_events(**filters):
    return list(
        AuditEvent.objects.filter(
            kind__in=[Kind.OPERATOR_VIEWED, Kind.OPERATOR_CHANGED], **filters
        ).order_by("practice_id", "id")
    )


# Not practice data: permission groups (unused), and the lockout's own records of
# sign-in attempts (an email and an address, no practice).
NOT_PRACTICE_DATA = {"auth", "axes"}


def test_every_operator_page_of_data_is_audited():
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedModelAdmin)
        and model._meta.app_label not in NOT_PRACTICE_DATA
    ]
    assert unaudited == []


def test_a_list_page_records_one_event_per_practice_shown(
    operator_client, operator, practice, other_practice, clinician, outsider_admin
):
    ours = make_patient(practice, first_name="Ana", last_name="Lopez")
    second = make_patient(practice, first_name="Ben", last_name="Okafor")
    theirs = make_patient(other_practice, first_name="Zed", last_name="Outside")
    response = operator_client.get("/operator/scheduling/patient/", REMOTE_ADDR=ADDRESS)
    assert response.status_code == 200
    riverside, harbor = _operator_events()
    assert (riverside.practice, harbor.practice) == (practice, other_practice)
    for event in (riverside, harbor):
        assert event.kind == Kind.OPERATOR_VIEWED
        assert event.actor == operator
        assert event.client_ip == ADDRESS
    assert riverside.details == {"what": "patients", "page": "list", "rows": 2}
    assert riverside.patient_id_list == sorted([ours.pk, second.pk])
    assert harbor.patient_id_list == [theirs.pk]


def test_a_list_filtered_to_one_practice_is_recorded_only_there(
    operator_client, practice, other_practice, clinician, outsider_admin
):
    make_appointment(clinician)
    make_appointment(outsider_admin)
    operator_client.get(
        f"/operator/scheduling/appointment/?practice__id__exact={practice.pk}"
    )
    [event] = _operator_events()
    assert event.practice == practice
    assert event.details["what"] == "appointments"
    assert len(event.patient_id_list) == 1


def test_a_change_page_is_recorded_in_the_objects_practice(
    operator_client, operator, practice, other_practice, clinician
):
    patient = make_patient(practice, first_name="Ana", last_name="Lopez")
    response = operator_client.get(f"/operator/scheduling/patient/{patient.pk}/change/")
    assert response.status_code == 200
    [event] = _operator_events()
    assert event.practice == practice
    assert event.details == {
        "what": "patients",
        "page": "details",
        "object": patient.pk,
    }
    assert event.patient_id_list == [patient.pk]
    # The practice itself is the practice's data.
    operator_client.get(f"/operator/practice/practice/{other_practice.pk}/change/")
    [_, on_practice] = _operator_events()
    assert on_practice.practice == other_practice


def test_a_change_saved_is_recorded_with_the_fields(
    operator_client, operator, practice, clinician
):
    url = f"/operator/practice/user/{clinician.pk}/change/"
    operator_client.get(url)
    response = operator_client.post(
        url,
        {
            "email": clinician.email,
            "display_name": "Dana Rivera-Lopez",
            "credentials": clinician.credentials,
            "practice": practice.pk,
            "is_clinician": "on",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "09:00:00",
        },
        REMOTE_ADDR=ADDRESS,
    )
    assert response.status_code == 302, response.content
    [viewed, changed] = _operator_events(practice=practice)
    assert viewed.kind == Kind.OPERATOR_VIEWED
    assert changed.kind == Kind.OPERATOR_CHANGED
    assert changed.actor == operator
    assert changed.client_ip == ADDRESS
    assert changed.details["action"] == "changed"
    assert changed.details["object"] == clinician.pk
    assert "display_name" in changed.details["fields"]


def test_practice_administrators_see_operator_access_in_their_log(
    operator_client, login, admin_user, practice
):
    patient = make_patient(practice, first_name="Ana", last_name="Lopez")
    operator_client.get(f"/operator/scheduling/patient/{patient.pk}/change/")
    html = login(admin_user).get("/settings/audit/?kind=operator_viewed").content
    assert b"Operator viewed practice data" in html
    assert b"Operator (installation operator)" in html
    assert f'<a href="/patients/{patient.pk}/">Ana Lopez</a>'.encode() in html


def test_the_audit_log_is_read_only_for_operators(
    operator_client, practice, admin_user
):
    event = AuditEvent.objects.filter(practice=practice).first()
    base = "/operator/practice/auditevent/"
    assert operator_client.get(f"{base}{event.pk}/change/").status_code == 200
    assert operator_client.get(f"{base}{event.pk}/delete/").status_code == 403
    assert operator_client.get(f"{base}add/").status_code == 403
    response = operator_client.post(
        base, {"action": "delete_selected", "_selected_action": [event.pk]}
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert response.status_code in (200, 302)


def test_a_user_with_events_cannot_be_deleted_through_admin(
    operator_client, practice, clinician
):
    response = operator_client.post(
        f"/operator/practice/user/{clinician.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code in (200, 403)
    clinician.refresh_from_db()
    assert not AuditEvent.objects.filter(
        kind=Kind.OPERATOR_CHANGED, details__action="deleted"
    ).exists()


def test_a_password_set_by_an_operator_is_recorded(
    operator_client, operator, practice, clinician
):
    response = operator_client.post(
        f"/operator/practice/user/{clinician.pk}/password/",
        {
            "password1": "a-long-new-password-2026",
            "password2": "a-long-new-password-2026",
        },
    )
    assert response.status_code == 302
    [event] = _operator_events(kind=Kind.OPERATOR_CHANGED)
    assert event.practice == practice
    assert event.actor == operator
    assert event.details == {
        "what": "users",
        "action": "password set",
        "object": clinician.pk,
    }
