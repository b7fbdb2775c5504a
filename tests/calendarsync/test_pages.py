"""Settings → Sync Calendars with Other Applications, and the administrators' page."""

import re

from calendarsync.models import FeedAccess, FeedLink
from calendarsync.services import feed_access_disable, practice_sync_set
from practice.models import AuditEvent
from tests.factories import (
    feed_links,
    make_appointment,
    make_user,
    personal_feed_path,
    practice_feed_path,
)

SYNC = "/settings/sync/"
ADMIN = "/settings/sync/admin/"


def feed_urls(html: str) -> list[str]:
    return re.findall(r'value="(https?://[^"]+/calendar/[^"]+\.ics)"', html)


def test_clinician_sees_only_their_personal_calendar(login, clinician, other_clinician):
    response = login(clinician).get(SYNC)
    html = response.content.decode()
    assert response.status_code == 200
    assert (
        "no-store" in response["Cache-Control"]
        or "no-cache" in response["Cache-Control"]
    )
    assert "Your personal calendar" in html
    assert "Practice-wide calendar" not in html
    assert "Wei Chen" not in html
    (https_url,) = feed_urls(html)
    assert https_url.startswith("http://127.0.0.1:8000/calendar/")  # SITE_URL
    webcal = "webcal://" + https_url.split("://", 1)[1]
    assert f'href="{webcal}"' in html
    assert 'src="data:image/svg+xml' in html
    assert 'data-copy="#' in html
    for words in (
        "Outlook 2007 and later",
        "Google Calendar",
        "iPhone, iPad and Mac",
        "Settings → Calendar → Accounts → Add Account → Other → "
        "Add Subscribed Calendar",
        "Android",
        "all anyone needs",
        "Reset Access",
        "Disable Access",
        "initials",
        "never come back into Tend",
        "Email this link to me",
    ):
        assert words in html, words
    # Same link on every visit.
    assert feed_urls(login(clinician).get(SYNC).content.decode()) == [https_url]


def test_page_ignores_the_host_header(login, clinician):
    html = login(clinician).get(SYNC, HTTP_HOST="localhost").content.decode()
    assert all(url.startswith("http://127.0.0.1:8000/") for url in feed_urls(html))


def test_scheduler_and_admin_see_every_clinician_and_the_practice(
    login, practice, admin_user, scheduler, clinician, other_clinician
):
    from practice.models import Role
    from practice.services import user_set_active

    gone = make_user(practice, roles=[Role.CLINICIAN], name="Gone Away")
    user_set_active(user=gone, active=False, actor=admin_user, client_ip=None)

    html = login(scheduler).get(SYNC).content.decode()
    assert "Your personal calendar" not in html
    for label in ("Dana Rivera, LCSW", "Wei Chen, PhD", "Morgan Ellis, PsyD"):
        assert label in html
    assert "Gone Away" not in html
    assert "Practice-wide calendar" in html
    assert len(feed_urls(html)) == 4  # three clinicians and the practice

    html = login(admin_user).get(SYNC).content.decode()
    assert "Your personal calendar" in html
    # Personal calendar, the two other clinicians, the practice.
    assert len(feed_urls(html)) == 4


def test_sync_page_query_count_does_not_grow_with_clinicians(
    login, practice, scheduler, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from practice.models import Role

    client = login(scheduler)
    make_user(practice, roles=[Role.CLINICIAN])
    client.get(SYNC)
    with CaptureQueriesContext(connection) as few:
        before = client.get(SYNC).content.decode()
    for _ in range(6):
        make_user(practice, roles=[Role.CLINICIAN])
    client.get(SYNC)  # issues the new links
    with CaptureQueriesContext(connection) as many:
        after = client.get(SYNC).content.decode()
    assert len(many) == len(few)
    # The second page really lists the six new clinicians' calendars.
    assert len(feed_urls(after)) == len(feed_urls(before)) + 6


def test_reset_from_the_page(client, login, clinician):
    make_appointment(clinician)
    signed_in = login(clinician)
    old = feed_urls(signed_in.get(SYNC).content.decode())[0]
    response = signed_in.post(f"{SYNC}access/", {"action": "reset"}, follow=True)
    assert "New links were issued" in response.content.decode()
    new = feed_urls(response.content.decode())[0]
    assert new != old
    path = lambda url: url.split("8000", 1)[1]  # noqa: E731
    assert client.get(path(old)).status_code == 404
    assert client.get(path(new)).status_code == 200
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SYNC_RESET)
    assert event.actor == clinician and event.target_user == clinician
    assert html_has_confirm(signed_in.get(SYNC).content.decode())


def html_has_confirm(html: str) -> bool:
    return bool(re.search(r'data-confirm="Reset Access\?[^"]*subscribe again', html))


def test_disable_and_enable_from_the_page(client, login, clinician):
    signed_in = login(clinician)
    old = feed_urls(signed_in.get(SYNC).content.decode())[0]
    html = signed_in.post(f"{SYNC}access/", {"action": "disable"}, follow=True)
    html = html.content.decode()
    assert "Calendar sync is off for your account" in html
    assert feed_urls(html) == []
    assert client.get(old.split("8000", 1)[1]).status_code == 404
    html = signed_in.post(f"{SYNC}access/", {"action": "enable"}, follow=True)
    new = feed_urls(html.content.decode())[0]
    assert new != old
    kinds = list(
        AuditEvent.objects.filter(target_user=clinician)
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds[-2:] == [AuditEvent.Kind.SYNC_DISABLED, AuditEvent.Kind.SYNC_ENABLED]


def test_actions_need_post_and_csrf_and_a_valid_action(login, clinician):
    from django.test import Client

    signed_in = login(clinician)
    assert signed_in.get(f"{SYNC}access/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(clinician, backend="django.contrib.auth.backends.ModelBackend")
    assert strict.post(f"{SYNC}access/", {"action": "reset"}).status_code == 403
    response = signed_in.post(f"{SYNC}access/", {"action": "explode"}, follow=True)
    assert "Choose Reset, Disable or Enable." in response.content.decode()
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.SYNC_RESET).exists()


def test_practice_switched_off_is_explained(login, practice, admin_user, clinician):
    practice_sync_set(
        practice=practice, enabled=False, actor=admin_user, client_ip=None
    )
    html = login(clinician).get(SYNC).content.decode()
    assert "switched calendar sync off" in html
    assert feed_urls(html) == []


def test_email_link_to_me_only_and_rate_limited(
    login, clinician, mailoutbox, django_capture_on_commit_callbacks
):
    signed_in = login(clinician)
    html = signed_in.get(SYNC).content.decode()
    public_id = re.search(r'name="link" value="([^"]+)"', html)[1]
    (https_url,) = feed_urls(html)
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(
            f"{SYNC}email/",
            {"link": public_id, "email": "attacker@evil.test"},
            follow=True,
        )
    assert f"The link is on its way to {clinician.email}" in response.content.decode()
    (message,) = mailoutbox
    assert message.to == [clinician.email]
    assert https_url in message.body
    assert "webcal://" + https_url.split("://", 1)[1] in message.body
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SYNC_LINK_EMAILED)
    assert https_url.rsplit("/", 1)[1].removesuffix(".ics") not in str(event.details)

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(4):
            signed_in.post(f"{SYNC}email/", {"link": public_id})
    assert len(mailoutbox) == 5
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(f"{SYNC}email/", {"link": public_id}, follow=True)
    assert "Please wait an hour" in response.content.decode()
    assert len(mailoutbox) == 5


def test_email_link_of_someone_else_is_404(login, clinician, other_clinician):
    feed_links(other_clinician)
    theirs = FeedLink.objects.get(access__user=other_clinician).public_id
    assert login(clinician).post(f"{SYNC}email/", {"link": theirs}).status_code == 404
    assert login(clinician).post(f"{SYNC}email/", {"link": "x" * 40}).status_code == 302


def test_sync_page_needs_sign_in(client, db):
    response = client.get(SYNC)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


# Administrators -----------------------------------------------------------------


def member_row(html: str, member) -> str:
    return re.search(rf'id="sync-member-{member.pk}">(.*?)</tr>', html, re.S)[1]


def test_admin_page_lists_every_user_state(
    login, admin_user, scheduler, clinician, other_clinician, outsider_admin
):
    feed_links(clinician)
    feed_access_disable(user=other_clinician, actor=admin_user, client_ip=None)
    html = login(admin_user).get(ADMIN).content.decode()
    for label in ("Dana Rivera, LCSW", "Wei Chen, PhD", "Sam Porter", "Morgan Ellis"):
        assert label in html
    assert "Alex Stone" not in html
    row = member_row(html, other_clinician)
    assert "Off for this user" in row and "Enable" in row
    row = member_row(html, clinician)
    assert ">On<" in row and "never" in row


def test_admin_page_shows_the_effective_state_when_the_practice_is_off(
    login, practice, admin_user, clinician, other_clinician
):
    feed_links(clinician)
    feed_access_disable(user=other_clinician, actor=admin_user, client_ip=None)
    practice_sync_set(
        practice=practice, enabled=False, actor=admin_user, client_ip=None
    )
    html = login(admin_user).get(ADMIN).content.decode()
    for member in (admin_user, clinician, other_clinician):
        row = member_row(html, member)
        assert "Off — practice-wide sync is off" in row
        assert "Enabled" not in row and ">On<" not in row
    assert "and off for this user" in member_row(html, other_clinician)


def test_admin_page_is_for_administrators_only(login, scheduler, clinician):
    assert login(scheduler).get(ADMIN).status_code == 403
    assert login(clinician).get(ADMIN).status_code == 403


def test_admin_page_query_count(login, practice, admin_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from practice.models import Role

    client = login(admin_user)
    make_user(practice, roles=[Role.CLINICIAN])
    with CaptureQueriesContext(connection) as few:
        before = client.get(ADMIN).content.decode()
    for _ in range(8):
        make_user(practice, roles=[Role.CLINICIAN])
    with CaptureQueriesContext(connection) as many:
        after = client.get(ADMIN).content.decode()
    assert len(many) == len(few)
    row = 'data-label="Last fetched"'
    assert after.count(row) == before.count(row) + 8


def test_admin_disables_and_resets_a_user(
    client, login, admin_user, scheduler, clinician
):
    path = practice_feed_path(scheduler)
    signed_in = login(admin_user)
    response = signed_in.post(
        f"{ADMIN}users/{scheduler.pk}/", {"action": "disable"}, follow=True
    )
    assert "Calendar sync is off for Sam Porter" in response.content.decode()
    assert client.get(path).status_code == 404
    assert not FeedAccess.objects.get(user=scheduler).enabled
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SYNC_DISABLED)
    assert (event.actor, event.target_user) == (admin_user, scheduler)

    signed_in.post(f"{ADMIN}users/{scheduler.pk}/", {"action": "enable"})
    new_path = practice_feed_path(scheduler)
    signed_in.post(f"{ADMIN}users/{scheduler.pk}/", {"action": "reset"})
    assert client.get(new_path).status_code == 404
    assert client.get(practice_feed_path(scheduler)).status_code == 200


def test_admin_cannot_touch_another_practice(
    login, admin_user, outsider_admin, clinician
):
    signed_in = login(outsider_admin)
    for action in ("reset", "disable"):
        response = signed_in.post(f"{ADMIN}users/{clinician.pk}/", {"action": action})
        assert response.status_code == 404
        missing = signed_in.post(f"{ADMIN}users/999999/", {"action": action})
        assert missing.status_code == 404
    assert not AuditEvent.objects.filter(
        target_user=clinician, kind__startswith="sync"
    ).exists()
    assert not FeedAccess.objects.filter(user=clinician).exists()


def test_practice_switch(
    client,
    login,
    practice,
    other_practice,
    admin_user,
    outsider_admin,
    clinician,
):
    path = personal_feed_path(clinician)
    harbor = personal_feed_path(outsider_admin)
    signed_in = login(admin_user)
    response = signed_in.post(f"{ADMIN}practice/", {"enabled": "0"}, follow=True)
    assert "Calendar sync is switched off for the practice" in response.content.decode()
    assert client.get(path).status_code == 404
    assert client.get(harbor).status_code == 200  # the other practice is untouched
    assert (
        AuditEvent.objects.get(kind=AuditEvent.Kind.SYNC_PRACTICE_OFF).practice
        == practice
    )
    signed_in.post(f"{ADMIN}practice/", {"enabled": "1"})
    assert client.get(path).status_code == 200
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.SYNC_PRACTICE_ON).count() == 1
    bad = signed_in.post(f"{ADMIN}practice/", {"enabled": "maybe"}, follow=True)
    assert "Choose On or Off." in bad.content.decode()


def test_demo_seed_gives_everyone_access(db, settings):
    from calendarsync.demo import seed_calendarsync
    from practice.demo import seed_practices
    from practice.models import User

    settings.DEMO_DATA_ALLOWED = True
    riverside, harbor = seed_practices()
    seed_calendarsync(riverside=riverside, harbor=harbor)
    before = dict(FeedAccess.objects.values_list("user_id", "secret_salt"))
    seed_calendarsync(riverside=riverside, harbor=harbor)
    users = User.objects.filter(practice__isnull=False, is_active=True)
    assert users.count() >= 7
    accesses = FeedAccess.objects.filter(user__in=users, enabled=True)
    assert accesses.count() == users.count()
    # Idempotent: a second run keeps every link as it was.
    assert dict(FeedAccess.objects.values_list("user_id", "secret_salt")) == before


def test_page_shows_who_reads_each_link(client, login, admin_user, clinician):
    signed_in = login(clinician)
    html = signed_in.get(SYNC).content.decode()
    assert "Never fetched: no calendar application has read this link yet." in html
    (https_url,) = feed_urls(html)
    path = https_url.split("8000", 1)[1]
    client.get(path, headers={"User-Agent": "Google-Calendar-Importer"})
    html = signed_in.get(SYNC).content.decode()
    assert "Google Calendar</strong> · last fetched" in html
    assert "new client" in html
    assert "cannot be made to refresh sooner" in html
    row = member_row(login(admin_user).get(ADMIN).content.decode(), clinician)
    assert "just now" in row and "never" not in row
