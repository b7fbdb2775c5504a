"""Settings → Practice: name and IANA time zone."""

from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from practice.dates import format_datetime
from practice.models import AuditEvent, Practice
from practice.services import practice_create, practice_update


def test_practice_page_shows_current_values(login, admin_user):
    response = login(admin_user).get("/settings/practice/")
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["name"] == "Riverside Counseling"
    assert form.initial["time_zone"] == "America/New_York"
    assert form.initial["clinicians_may_schedule_themselves"] is True
    assert b'<option value="America/New_York" selected>' in response.content
    assert form["clinicians_may_schedule_themselves"].value() is True


def test_practice_change_is_saved_and_audited(login, admin_user, practice):
    response = login(admin_user).post(
        "/settings/practice/",
        {"name": "Riverside Counseling Group", "time_zone": "America/Chicago"},
        REMOTE_ADDR="192.0.2.20",
    )
    assert response.status_code == 302
    practice.refresh_from_db()
    assert practice.name == "Riverside Counseling Group"
    assert practice.time_zone == "America/Chicago"
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.PRACTICE_CHANGED)
    assert (event.actor, event.practice, event.client_ip) == (
        admin_user,
        practice,
        "192.0.2.20",
    )
    assert event.details["changed"]["time_zone"] == [
        "America/New_York",
        "America/Chicago",
    ]


@pytest.mark.parametrize("checked", [True, False])
def test_the_self_scheduling_switch_is_saved_as_posted(
    login, admin_user, practice, checked
):
    data = {"name": practice.name, "time_zone": practice.time_zone}
    if checked:
        data["clinicians_may_schedule_themselves"] = "on"
    response = login(admin_user).post("/settings/practice/", data)
    assert response.status_code == 302
    practice.refresh_from_db()
    assert practice.clinicians_may_schedule_themselves is checked
    changes = AuditEvent.objects.filter(kind=AuditEvent.Kind.PRACTICE_CHANGED)
    if checked:  # nothing changed, nothing to audit
        assert not changes.exists()
    else:
        assert changes.get().details["changed"] == {
            "clinicians_may_schedule_themselves": [True, False]
        }


def test_pages_show_times_in_the_practice_zone(login, admin_user, practice):
    practice_update(
        practice=practice, actor=admin_user, client_ip=None, time_zone="Asia/Kolkata"
    )
    page = login(admin_user).get("/settings/audit/").content.decode()
    changed = AuditEvent.objects.get(kind=AuditEvent.Kind.PRACTICE_CHANGED)
    kolkata = ZoneInfo("Asia/Kolkata")
    assert f">{format_datetime(changed.created_at, kolkata)}</time>" in page
    assert "Asia/Kolkata" in page


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"name": "Riverside", "time_zone": "Mars/Olympus_Mons"},
            "time_zone",
            "Mars/Olympus_Mons is not a known time zone",
        ),
        ({"name": "Riverside", "time_zone": "EST5EDT "}, "time_zone", "not a known"),
        ({"name": "", "time_zone": "UTC"}, "name", "This field is required."),
        ({"name": "x" * 201, "time_zone": "UTC"}, "name", "at most 200 characters"),
    ],
    ids=["unknown-zone", "zone-with-space", "no-name", "long-name"],
)
def test_bad_practice_input_is_refused_and_nothing_saved(
    login, admin_user, practice, data, field, message
):
    response = login(admin_user).post("/settings/practice/", data)
    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field])
    practice.refresh_from_db()
    assert (practice.name, practice.time_zone) == (
        "Riverside Counseling",
        "America/New_York",
    )
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.PRACTICE_CHANGED).exists()


def test_model_validation_refuses_unknown_zone(db):
    with pytest.raises(ValidationError) as error:
        practice_create(name="Nowhere", time_zone="Europe/Atlantis")
    assert "is not a known time zone" in str(error.value)
    assert not Practice.objects.filter(name="Nowhere").exists()
