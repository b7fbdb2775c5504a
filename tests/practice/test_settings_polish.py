"""Settings polish: the audit log in sentences, one date format, the branded
invitation page, the favicon and the confirmation before deactivating."""

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.template import Context, Template
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from practice import dates
from practice.audit_sentences import SENTENCES, audit_sentence
from practice.models import AuditEvent, Role
from practice.services import audit_record
from tests.factories import make_user

AUDIT = "/settings/audit/"


# The audit log in words ---------------------------------------------------------


@pytest.mark.parametrize("kind", AuditEvent.Kind.values)
def test_every_kind_of_event_reads_as_a_sentence(kind, practice, admin_user, clinician):
    """A new kind of event without a sentence fails here."""
    assert kind in SENTENCES, f"no sentence for {kind!r}"
    about_other = audit_record(
        kind=kind, practice=practice, actor=admin_user, target_user=clinician
    )
    about_self = audit_record(
        kind=kind, practice=practice, actor=clinician, target_user=clinician
    )
    nobody = audit_record(kind=kind, practice=practice, target_user=clinician)
    for event in (about_other, about_self, nobody):
        sentence = audit_sentence(event)
        assert "{" not in sentence and "None" not in sentence
        assert sentence[0].isupper()
        assert "Dana Rivera, LCSW" in sentence or "Morgan Ellis, PsyD" in sentence
    assert "Dana Rivera, LCSW" in audit_sentence(nobody)


def test_an_addition_nobody_signed_in_made_reads_passive(practice, clinician):
    added = audit_record(
        kind=AuditEvent.Kind.USER_CREATED,
        practice=practice,
        target_user=clinician,
        details={"roles": ["administrator", "clinician"]},
    )
    assert audit_sentence(added) == (
        "Dana Rivera, LCSW was added as administrator and clinician"
    )


def test_sentences_name_who_did_what_to_whom(practice, admin_user, clinician):
    added = audit_record(
        kind=AuditEvent.Kind.USER_CREATED,
        practice=practice,
        actor=admin_user,
        target_user=clinician,
        details={"email": clinician.email, "roles": ["clinician"]},
    )
    assert (
        audit_sentence(added)
        == "Morgan Ellis, PsyD added Dana Rivera, LCSW as clinician"
    )
    own_reset = audit_record(
        kind=AuditEvent.Kind.SYNC_RESET,
        practice=practice,
        actor=clinician,
        target_user=clinician,
    )
    assert audit_sentence(own_reset) == "Dana Rivera, LCSW reset their calendar links"
    roles = audit_record(
        kind=AuditEvent.Kind.ROLE_CHANGED,
        practice=practice,
        actor=admin_user,
        target_user=clinician,
        details={"before": ["clinician"], "after": ["scheduler", "clinician"]},
    )
    assert audit_sentence(roles) == (
        "Morgan Ellis, PsyD changed the roles of Dana Rivera, LCSW "
        "to scheduler and clinician"
    )


def test_audit_log_page_shows_sentences_compact_times_and_details_on_demand(
    login, practice, admin_user, clinician
):
    audit_record(
        kind=AuditEvent.Kind.SYNC_RESET,
        practice=practice,
        actor=clinician,
        target_user=clinician,
        details={"clinician_id": None, "new_network": False, "links": 3},
    )
    html = login(admin_user).get(AUDIT).content.decode()
    assert "Dana Rivera, LCSW reset their calendar links" in html
    # Details behind a disclosure, without empty values.
    details = re.search(r"<details[^>]*>(.*?)</details>", html, re.S)[1]
    assert "<summary>Details</summary>" in details
    assert "links: 3" in details and "new network: no" in details
    assert "None" not in details and "clinician id" not in details
    # One compact timestamp in the practice's zone: "29 Nov 2026, 09:51".
    when = re.search(r'<time datetime="[^"]+">([^<]*)</time>', html)[1]
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}", when)


# One date and time format -----------------------------------------------------


def test_no_template_writes_a_date_format_of_its_own():
    offenders = []
    for template in (settings.BASE_DIR / "templates").rglob("*"):
        if template.is_file():
            for number, line in enumerate(template.read_text().splitlines(), 1):
                if re.search(r"\|\s*(date|time)\s*:", line):
                    offenders.append(f"{template.name}:{number}")
    assert offenders == [], "use the tend_dates filters (practice/dates.py)"


def test_dates_are_written_one_way_in_the_practice_zone():
    moment = datetime(2026, 11, 29, 14, 51, tzinfo=UTC)
    new_york = ZoneInfo("America/New_York")
    assert dates.format_date(moment, new_york) == "29 Nov 2026"
    assert dates.format_datetime(moment, new_york) == "29 Nov 2026, 09:51"
    assert dates.format_time(moment, new_york) == "09:51"
    assert dates.format_date(date(2026, 3, 1)) == "1 Mar 2026"
    with timezone.override(new_york):
        rendered = Template(
            "{{ moment|tend_datetime }}|{{ moment|tend_date }}|{{ moment|iso_date }}"
            "|{{ missing|tend_date|default:'—' }}"
        ).render(Context({"moment": moment, "missing": None}))
    assert rendered == "29 Nov 2026, 09:51|29 Nov 2026|2026-11-29|—"


# The invitation page ----------------------------------------------------------


def test_invitation_page_names_tend_and_the_practice(client, practice, admin_user):
    invited = make_user(
        practice, roles=[Role.CLINICIAN], name="Kim Park", password=None
    )
    uid = urlsafe_base64_encode(force_bytes(invited.pk))
    token = default_token_generator.make_token(invited)
    response = client.get(f"/password/reset/{uid}/{token}/", follow=True)
    html = response.content.decode()
    assert "Set your password for Riverside Counseling on Tend" in html
    assert "Choose a new password" not in html


def test_reset_page_names_the_practice_too(client, practice, clinician):
    uid = urlsafe_base64_encode(force_bytes(clinician.pk))
    token = default_token_generator.make_token(clinician)
    html = client.get(f"/password/reset/{uid}/{token}/", follow=True).content.decode()
    assert "Choose a new password for Riverside Counseling on Tend" in html


# Favicon ----------------------------------------------------------------------


def test_favicon_is_linked_and_answered(client, db):
    login_page = client.get("/login/").content.decode()
    icon = re.search(r'<link rel="icon" href="([^"]+)"', login_page)[1]
    assert client.get(icon).status_code == 200
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in {"image/x-icon", "image/vnd.microsoft.icon"}


# Deactivation asks first --------------------------------------------------------


def test_users_page_deactivates_only_through_a_confirmation(
    login, admin_user, clinician
):
    client = login(admin_user)
    listing = client.get("/settings/users/").content.decode()
    row = re.search(
        rf"<tr[^>]*>(?:(?!</tr>).)*{clinician.email}.*?</tr>", listing, re.S
    )[0]
    assert 'name="active" value="0"' not in row
    assert f'href="/settings/users/{clinician.pk}/active/"' in row
    confirm = client.get(f"/settings/users/{clinician.pk}/active/").content.decode()
    assert 'name="active" value="0"' in confirm
    assert "Deactivate Dana Rivera, LCSW</button>" in confirm
    clinician.refresh_from_db()
    assert clinician.is_active


# Each user's effective calendar state on Settings → Users -----------------------


def users_row(html: str, member) -> str:
    return re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{member.email}.*?</tr>", html, re.S)[0]


def test_users_page_shows_each_users_effective_calendar_state(
    login, practice, admin_user, clinician, other_clinician
):
    from calendarsync.services import feed_access_disable, practice_sync_set

    feed_access_disable(user=other_clinician, actor=admin_user, client_ip=None)
    client = login(admin_user)
    html = client.get("/settings/users/").content.decode()
    assert ">On<" in users_row(html, clinician)
    assert "Off for this user" in users_row(html, other_clinician)

    practice_sync_set(
        practice=practice, enabled=False, actor=admin_user, client_ip=None
    )
    html = client.get("/settings/users/").content.decode()
    for member in (admin_user, clinician, other_clinician):
        row = users_row(html, member)
        assert "Off — practice-wide sync is off" in row and ">On<" not in row
