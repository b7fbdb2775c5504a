"""Nothing of one practice is visible or changeable from another (same 404)."""

import re

import pytest
from django.http import Http404

from practice.models import AuditEvent, Role
from practice.permissions import access_user_by_id
from practice.selectors import (
    audit_event_list,
    clinician_list,
    practice_allowed_cidrs,
    user_list,
)
from practice.services import audit_record, user_set_active
from tests.factories import make_user


def without_csrf(html: bytes) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html.decode())


@pytest.fixture
def harbor_member(other_practice):
    return make_user(
        other_practice,
        roles=[Role.CLINICIAN],
        email="lee@harbor.test",
        name="Jordan Lee",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/settings/users/{}/"),
        ("post", "/settings/users/{}/"),
        ("post", "/settings/users/{}/active/"),
    ],
)
def test_other_practices_user_gets_the_same_404_as_a_missing_one(
    login, admin_user, harbor_member, method, path
):
    client = login(admin_user)
    send = getattr(client, method)
    data = {"active": "0", "display_name": "Taken", "roles": ["clinician"]}
    theirs = send(path.format(harbor_member.pk), data)
    missing = send(path.format(harbor_member.pk + 1000), data)
    assert theirs.status_code == missing.status_code == 404
    assert without_csrf(theirs.content) == without_csrf(missing.content)
    harbor_member.refresh_from_db()
    assert harbor_member.is_active
    assert harbor_member.display_name == "Jordan Lee"
    assert harbor_member.roles == [Role.CLINICIAN]


def test_user_list_shows_only_the_practice(
    login, admin_user, clinician, harbor_member, outsider_admin
):
    riverside = login(admin_user).get("/settings/users/").content.decode()
    assert clinician.email in riverside
    assert harbor_member.email not in riverside
    assert outsider_admin.email not in riverside


def test_practice_settings_change_only_the_own_practice(
    client, outsider_admin, practice, other_practice
):
    client.force_login(outsider_admin)
    page = client.get("/settings/practice/")
    assert page.context["form"].initial["name"] == "Harbor Family Therapy"
    assert b"Riverside" not in page.content
    client.post(
        "/settings/practice/", {"name": "Harbor Therapy", "time_zone": "America/Denver"}
    )
    practice.refresh_from_db()
    other_practice.refresh_from_db()
    assert other_practice.name == "Harbor Therapy"
    assert (practice.name, practice.time_zone) == (
        "Riverside Counseling",
        "America/New_York",
    )


def test_network_settings_are_per_practice(
    client, outsider_admin, practice, other_practice, restrict
):
    restrict(practice, "10.20.0.0/16")
    client.force_login(outsider_admin)
    page = client.get("/settings/network/")
    assert b"10.20.0.0/16" not in page.content
    assert b"Not restricted" in page.content
    client.post("/settings/network/", {"networks": "127.0.0.0/8"})
    assert practice_allowed_cidrs(practice_id=practice.pk) == ["10.20.0.0/16"]
    assert practice_allowed_cidrs(practice_id=other_practice.pk) == ["127.0.0.0/8"]


def test_audit_log_shows_only_the_practice(
    login, admin_user, outsider_admin, practice, other_practice
):
    audit_record(
        kind=AuditEvent.Kind.LOGIN,
        practice=other_practice,
        actor=outsider_admin,
        client_ip="198.51.100.77",
    )
    audit_record(
        kind=AuditEvent.Kind.LOGIN,
        practice=practice,
        actor=admin_user,
        client_ip="198.51.100.66",
    )
    page = login(admin_user).get("/settings/audit/").content.decode()
    assert "198.51.100.66" in page
    assert "198.51.100.77" not in page
    assert "Alex Stone" not in page


def test_audit_log_query_count_does_not_grow(
    login, admin_user, clinician, practice, django_assert_max_num_queries
):
    client = login(admin_user)
    client.get("/settings/audit/")
    with django_assert_max_num_queries(10) as few:
        client.get("/settings/audit/")
    for number in range(30):
        audit_record(
            kind=AuditEvent.Kind.ROLE_CHANGED,
            practice=practice,
            actor=admin_user,
            target_user=clinician,
            client_ip=f"192.0.2.{number}",
            details={"before": ["clinician"], "after": ["scheduler"]},
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get("/settings/audit/")
    html = page.content.decode()
    assert html.count("changed the roles of Dana Rivera, LCSW to scheduler") == 30
    assert "before: clinician" in html and "after: scheduler" in html


def test_audit_log_pages_fifty_at_a_time(login, admin_user, practice):
    AuditEvent.objects.bulk_create(
        [AuditEvent(practice=practice, kind=AuditEvent.Kind.LOGIN) for _ in range(60)]
    )
    client = login(admin_user)
    first = client.get("/settings/audit/")
    assert len(first.context["page"].object_list) == 50
    assert b"Page 1 of 2" in first.content
    second = client.get("/settings/audit/?page=2")
    assert b"Page 2 of 2" in second.content
    assert client.get("/settings/audit/?page=zzz").status_code == 200


def test_selectors_are_scoped(
    admin_user, clinician, harbor_member, outsider_admin, practice, other_practice
):
    assert set(user_list(practice=practice)) == {admin_user, clinician}
    assert set(user_list(practice=other_practice)) == {harbor_member, outsider_admin}
    assert set(clinician_list(practice=practice)) == {admin_user, clinician}
    audit_record(kind=AuditEvent.Kind.LOGIN, practice=other_practice)
    assert (
        not audit_event_list(practice=practice)
        .filter(kind=AuditEvent.Kind.LOGIN)
        .exists()
    )


def test_clinician_list_leaves_out_deactivated_unless_asked(
    practice, clinician, other_clinician
):
    user_set_active(user=other_clinician, active=False, actor=clinician, client_ip=None)
    assert list(clinician_list(practice=practice)) == [clinician]
    assert set(clinician_list(practice=practice, include_inactive=True)) == {
        clinician,
        other_clinician,
    }


def test_access_user_by_id_is_the_same_404(admin_user, clinician, harbor_member):
    assert access_user_by_id(admin_user, clinician.pk) == clinician
    for user_id in (harbor_member.pk, harbor_member.pk + 1000):
        with pytest.raises(Http404):
            access_user_by_id(admin_user, user_id)
    # Non-administrators reach nobody, not even themselves.
    with pytest.raises(Http404):
        access_user_by_id(clinician, clinician.pk)
