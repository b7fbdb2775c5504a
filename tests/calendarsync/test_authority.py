"""Every fetch re-checks who may read the calendar; every refusal looks the same."""

import pytest
from django.utils import timezone

from calendarsync.models import FeedAccess, FeedLink, FeedScope
from calendarsync.services import (
    feed_access_disable,
    feed_access_enable,
    feed_access_reset,
    practice_sync_set,
)
from calendarsync.tokens import make_token
from practice.models import Role
from practice.services import user_set_active, user_update
from scheduling.models import Appointment
from tests.factories import (
    feed_links,
    local,
    make_appointment,
    personal_feed_path,
    practice_feed_path,
)


def snapshot(response):
    """Everything a caller can observe of a response."""
    return (
        response.status_code,
        sorted(response.headers.items()),
        response.content,
    )


@pytest.fixture
def reference_404(client, db):
    """The 404 of a token that never existed."""
    return snapshot(client.get("/calendar/" + "A" * 55 + ".ics"))


@pytest.fixture
def busy(practice, clinician, other_clinician):
    make_appointment(clinician, kind=Appointment.Kind.EVENT, title="Dana's block")
    make_appointment(other_clinician, kind=Appointment.Kind.EVENT, title="Wei's block")


def assert_dead(client, path, reference_404):
    response = client.get(path)
    assert snapshot(response) == reference_404
    assert response.status_code == 404
    assert b"BEGIN:VCALENDAR" not in response.content
    head = client.head(path)
    assert head.status_code == 404


def test_reference_404_is_plain_and_private(reference_404):
    status, headers, body = reference_404
    headers = dict(headers)
    assert status == 404
    assert body == b"Not found\n"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "private, no-cache"


def test_malformed_and_forged_tokens(client, clinician, busy, reference_404):
    path = personal_feed_path(clinician)
    token = path.removeprefix("/calendar/").removesuffix(".ics")
    forged_secret = token[:12] + ("B" if token[12] != "B" else "C") + token[13:]
    for bad in (
        "short",
        token + "x",
        token[:-1],
        forged_secret,
        token[:12] + "A" * 43,
        "A" * 12 + token[12:],
        token.replace("-", "+") if "-" in token else token[:-1] + "%",
    ):
        assert snapshot(client.get(f"/calendar/{bad}.ics")) == reference_404, bad
    assert client.get(path).status_code == 200


@pytest.mark.parametrize(
    "revoke",
    [
        "user_deactivated",
        "user_lost_clinician_role",
        "access_disabled",
        "access_reset",
        "practice_sync_off",
        "user_moved_practice",
    ],
)
def test_personal_link_dies_at_once(
    client,
    practice,
    other_practice,
    admin_user,
    clinician,
    busy,
    reference_404,
    revoke,
):
    path = personal_feed_path(clinician)
    assert client.get(path).status_code == 200
    if revoke == "user_deactivated":
        user_set_active(user=clinician, active=False, actor=admin_user, client_ip=None)
    elif revoke == "user_lost_clinician_role":
        user_update(
            user=clinician,
            display_name=clinician.display_name,
            credentials="",
            roles=[Role.SCHEDULER],
            actor=admin_user,
            client_ip=None,
        )
    elif revoke == "access_disabled":
        feed_access_disable(user=clinician, actor=admin_user, client_ip=None)
    elif revoke == "access_reset":
        feed_access_reset(user=clinician, actor=clinician, client_ip=None)
    elif revoke == "practice_sync_off":
        practice_sync_set(
            practice=practice, enabled=False, actor=admin_user, client_ip=None
        )
    elif revoke == "user_moved_practice":
        # No page moves a user to another practice: straight to the table.
        clinician.practice = other_practice
        clinician.save()
    assert_dead(client, path, reference_404)


@pytest.mark.parametrize(
    "revoke",
    ["scheduler_lost_role", "clinician_deactivated", "clinician_not_clinician"],
)
def test_scheduler_links_die_with_the_role_or_the_clinician(
    client,
    practice,
    admin_user,
    scheduler,
    clinician,
    busy,
    reference_404,
    revoke,
):
    links = feed_links(scheduler)
    clinician_path = links[(FeedScope.CLINICIAN, clinician.pk)]
    practice_feed_path = links[(FeedScope.PRACTICE, None)]
    assert b"Dana's block" in client.get(clinician_path).content
    assert b"Wei's block" in client.get(practice_feed_path).content

    if revoke == "scheduler_lost_role":
        user_update(
            user=scheduler,
            display_name="Sam Porter",
            credentials="",
            roles=[Role.CLINICIAN],
            actor=admin_user,
            client_ip=None,
        )
        assert_dead(client, clinician_path, reference_404)
        assert_dead(client, practice_feed_path, reference_404)
    else:
        if revoke == "clinician_deactivated":
            user_set_active(
                user=clinician, active=False, actor=admin_user, client_ip=None
            )
        else:
            user_update(
                user=clinician,
                display_name="Dana Rivera",
                credentials="LCSW",
                roles=[Role.SCHEDULER],
                actor=admin_user,
                client_ip=None,
            )
        assert_dead(client, clinician_path, reference_404)
        # The practice-wide calendar itself stays.
        assert client.get(practice_feed_path).status_code == 200


def test_reset_issues_new_links_for_every_calendar(
    client, scheduler, clinician, busy, reference_404
):
    before = feed_links(scheduler)
    assert feed_links(scheduler) == before  # the same links on every visit
    feed_access_reset(user=scheduler, actor=scheduler, client_ip=None)
    after = feed_links(scheduler)
    assert set(before) == set(after)
    for key, path in before.items():
        assert after[key] != path
        assert_dead(client, path, reference_404)
        assert client.get(after[key]).status_code == 200


def test_enable_never_brings_back_old_links(client, clinician, busy, reference_404):
    old = personal_feed_path(clinician)
    feed_access_disable(user=clinician, actor=clinician, client_ip=None)
    feed_access_enable(user=clinician, actor=clinician, client_ip=None)
    new = personal_feed_path(clinician)
    assert new != old
    assert_dead(client, old, reference_404)
    assert client.get(new).status_code == 200


def test_practice_switch_back_on_restores_current_links(
    client, practice, admin_user, clinician, busy
):
    path = personal_feed_path(clinician)
    practice_sync_set(
        practice=practice, enabled=False, actor=admin_user, client_ip=None
    )
    assert client.get(path).status_code == 404
    practice_sync_set(practice=practice, enabled=True, actor=admin_user, client_ip=None)
    assert client.get(path).status_code == 200


def test_database_alone_cannot_rebuild_a_link(client, clinician, busy):
    path = personal_feed_path(clinician)
    link = FeedLink.objects.get(access__user=clinician)
    access = FeedAccess.objects.get(user=clinician)
    # Everything stored, combined with a wrong key guess, is worthless.
    guessed = make_token(
        user_id=clinician.pk,
        scope=link.scope,
        clinician_id=link.clinician_id,
        public_id=link.public_id,
        salt=bytes(access.secret_salt),
    )
    assert path == f"/calendar/{guessed}.ics"  # right key: the real token
    from django.test import override_settings

    with override_settings(CALENDAR_FEED_KEY="a-key-read-from-a-stolen-backup"):
        wrong = make_token(
            user_id=clinician.pk,
            scope=link.scope,
            clinician_id=link.clinician_id,
            public_id=link.public_id,
            salt=bytes(access.secret_salt),
        )
    assert client.get(f"/calendar/{wrong}.ics").status_code == 404
    # The token itself is stored nowhere.
    secret = guessed[12:]
    for row in FeedLink.objects.values_list():
        assert secret not in " ".join(map(str, row))


def test_key_rotation_and_secret_key_independence(client, settings, clinician, busy):
    path = personal_feed_path(clinician)
    settings.SECRET_KEY = "a-brand-new-secret-key-after-rotation-0123456789"
    assert client.get(path).status_code == 200

    old_key = settings.CALENDAR_FEED_KEY
    settings.CALENDAR_FEED_KEY = "the-next-feed-key-0123456789-abcdefghijkl"
    assert client.get(path).status_code == 404
    settings.CALENDAR_FEED_KEY_FALLBACKS = [old_key]
    assert client.get(path).status_code == 200
    # The page now shows links made with the new key, which work too.
    new_path = personal_feed_path(clinician)
    assert new_path != path
    assert client.get(new_path).status_code == 200


def test_token_of_one_practice_never_shows_another(
    client,
    practice,
    other_practice,
    clinician,
    outsider_admin,
    reference_404,
):
    make_appointment(clinician, kind=Appointment.Kind.EVENT, title="Riverside only")
    make_appointment(
        outsider_admin,
        kind=Appointment.Kind.EVENT,
        title="Harbor only",
        start=local(other_practice, days=1),
    )
    harbor_personal = client.get(personal_feed_path(outsider_admin)).content
    harbor_all = client.get(practice_feed_path(outsider_admin)).content
    riverside = client.get(personal_feed_path(clinician)).content
    assert b"Harbor only" in harbor_personal and b"Harbor only" in harbor_all
    assert b"Riverside" not in harbor_personal + harbor_all
    assert b"Harbor only" not in riverside
    assert b"X-WR-TIMEZONE:America/Los_Angeles" in harbor_all

    # A Harbor link row pointed at a Riverside clinician opens nothing.
    link = FeedLink.objects.get(access__user=outsider_admin, scope=FeedScope.PERSONAL)
    token = make_token(
        user_id=outsider_admin.pk,
        scope=FeedScope.CLINICIAN,
        clinician_id=clinician.pk,
        public_id="Z" * 12,
        salt=bytes(link.access.secret_salt),
    )
    # A forged row no service would write: straight to the table.
    FeedLink.objects.create(
        access=link.access,
        scope=FeedScope.CLINICIAN,
        clinician=clinician,
        public_id="Z" * 12,
    )
    assert snapshot(client.get(f"/calendar/{token}.ics")) == reference_404


def test_appointments_of_other_clinicians_stay_out_of_a_personal_feed(
    client, clinician, other_clinician, busy
):
    body = client.get(personal_feed_path(clinician)).content
    assert b"Dana's block" in body
    assert b"Wei's block" not in body


def test_feed_fetch_is_recorded_once_a_minute(client, clinician, busy):
    from calendarsync.models import FeedFetch
    from practice.models import AuditEvent

    path = personal_feed_path(clinician)
    google = {"User-Agent": "Google-Calendar-Importer"}
    iphone = {"User-Agent": "iOS/18.1 (22B83) dataaccessd/1.0"}
    for _ in range(3):
        client.get(path, headers=google)
    client.get(path, headers=iphone)
    fetches = {fetch.client: fetch for fetch in FeedFetch.objects.all()}
    assert set(fetches) == {"google", "ios"}
    assert fetches["google"].fetch_count == 1  # later polls wait for the next write
    assert fetches["google"].is_new_client
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.FEED_FETCHED).count() == 2
    assert fetches["ios"].last_fetched_at <= timezone.now()


def test_repeated_failures_from_one_address_are_limited_not_valid_links(
    client, clinician, busy, reference_404
):
    from calendarsync.views import MISSES_ALLOWED

    path = personal_feed_path(clinician)
    prober = {"REMOTE_ADDR": "198.51.100.66"}
    for index in range(MISSES_ALLOWED):
        response = client.get(f"/calendar/{'Q' * 54}{index % 10}.ics", **prober)
        assert snapshot(response) == reference_404
    limited = client.get(f"/calendar/{'Q' * 55}.ics", **prober)
    assert limited.status_code == 429
    assert limited["Retry-After"]
    # A valid link from the same (shared) address still works, at full speed.
    assert client.get(path, **prober).status_code == 200
    # Other addresses are not affected.
    other = client.get(f"/calendar/{'Q' * 55}.ics", REMOTE_ADDR="198.51.100.67")
    assert other.status_code == 404
