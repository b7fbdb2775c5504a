"""Unchanged polls answered from the link's snapshot, with no query; and every kind
of write ending those snapshots at once, so no poll ever gets stale or revoked
content. These tests turn the suite-wide cross-check with the database off, so
what they see is what production serves."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calendarsync import freshness as snapshot
from calendarsync import services as sync_services
from calendarsync.models import FeedFetch
from practice.changes import ChangeNotifyingQuerySet
from practice.models import Practice, Role
from practice.services import practice_update, user_set_active, user_update
from scheduling.services import appointment_update, patient_update
from tests.factories import local, make_appointment, make_patient, personal_feed_path
from tests.support import clear_caches

GOOGLE = {"User-Agent": "Google-Calendar-Importer"}


@pytest.fixture(autouse=True)
def _production_snapshots(settings):
    settings.CALENDAR_FEED_SNAPSHOT_SECONDS = 300
    settings.CALENDAR_FEED_SNAPSHOT_VERIFY = False


@pytest.fixture
def booked(practice, clinician):
    patient = make_patient(practice, first_name="Maria", last_name="Lopez")
    return make_appointment(
        clinician, start=local(practice, days=2, hour=10), patients=[patient]
    )


def poll(client, path, **headers):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, headers={**GOOGLE, **headers})
    return response, len(captured.captured_queries)


def warm(client, path):
    """Poll until the link has a snapshot (the first poll of a link in a process
    learns its practice; the next leaves the snapshot)."""
    first, _ = poll(client, path)
    poll(client, path)
    response, queries = poll(client, path)
    assert queries == 0, "the third poll should come from the snapshot"
    assert response.content == first.content
    return first


def test_unchanged_polls_make_no_query_and_send_the_same_answers(
    client, clinician, booked
):
    path = personal_feed_path(clinician)
    first = warm(client, path)
    again, queries = poll(client, path)
    assert (queries, again.status_code) == (0, 200)
    assert again.content == first.content
    assert again["ETag"] == first["ETag"]
    assert again["Last-Modified"] == first["Last-Modified"]

    by_etag, queries = poll(client, path, **{"If-None-Match": first["ETag"]})
    assert (queries, by_etag.status_code) == (0, 304)
    by_date, queries = poll(
        client, path, **{"If-Modified-Since": first["Last-Modified"]}
    )
    assert (queries, by_date.status_code) == (0, 304)
    zipped, queries = poll(client, path, **{"Accept-Encoding": "gzip"})
    assert (queries, zipped["Content-Encoding"]) == (0, "gzip")
    assert zipped["ETag"] == first["ETag"][:-1] + '-gzip"'


def test_a_wrong_secret_is_refused_even_with_a_snapshot(client, clinician, booked):
    path = personal_feed_path(clinician)
    warm(client, path)
    token = path.removeprefix("/calendar/").removesuffix(".ics")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    response, _ = poll(client, f"/calendar/{forged}.ics")
    assert response.status_code == 404
    assert poll(client, path)[0].status_code == 200


def test_polls_answered_from_snapshots_are_still_counted(client, clinician, booked):
    path = personal_feed_path(clinician)
    warm(client, path)
    for _ in range(4):
        poll(client, path)
    cache.delete_many(
        [
            f"calendarsync:fetches:{link}:google:written"
            for link in _public_ids(clinician)
        ]
    )
    poll(client, path)
    assert FeedFetch.objects.get().fetch_count == 8


def _public_ids(user):
    return list(user.feed_access.links.values_list("public_id", flat=True))


# Every way a calendar or its authority can change, each ending the snapshot. Some
# write straight to the table on purpose (QuerySet.update, a bare save, an m2m add):
# the snapshot must end however a row changes, not only through the services.


def _move(booked, clinician, **_):
    appointment_update(
        appointment=booked,
        actor=clinician,
        expected_revision=booked.revision,
        start=booked.start + timedelta(hours=1),
        end=booked.end + timedelta(hours=1),
    )


def _bulk_update(booked, **_):
    type(booked).objects.filter(pk=booked.pk).update(
        title="Moved by a bulk update", updated_at=timezone.now(), sequence=5
    )


def _rename_patient(booked, clinician, **_):
    patient_update(patient=booked.patients.get(), actor=clinician, first_name="Zoe")


def _add_patient(booked, practice, **_):
    booked.patients.add(make_patient(practice, first_name="Ana", last_name="Quinn"))
    type(booked).objects.filter(pk=booked.pk).update(updated_at=timezone.now())


def _rename_clinician(clinician, admin_user, **_):
    user_update(
        user=clinician,
        display_name="Dr. Renamed",
        credentials="PhD",
        roles=[Role.CLINICIAN],
        actor=admin_user,
        client_ip=None,
    )


CHANGES = {
    "moved in SCHEDULING": _move,
    "QuerySet.update": _bulk_update,
    "patient renamed": _rename_patient,
    "patient added": _add_patient,
    "clinician renamed": _rename_clinician,
}


@pytest.mark.parametrize("change", CHANGES)
def test_every_change_to_a_calendar_ends_its_snapshot(
    client,
    practice,
    clinician,
    admin_user,
    booked,
    change,
):
    path = personal_feed_path(clinician)
    before = warm(client, path)
    CHANGES[change](
        booked=booked,
        clinician=clinician,
        admin_user=admin_user,
        practice=practice,
    )
    after, queries = poll(client, path, **{"If-None-Match": before["ETag"]})
    assert queries >= 1
    assert after.status_code == 200
    assert after.content != before.content
    assert after["ETag"] != before["ETag"]


def _reset(user, admin_user, **_):
    sync_services.feed_access_reset(user=user, actor=user, client_ip=None)


def _disable(user, admin_user, **_):
    sync_services.feed_access_disable(user=user, actor=admin_user, client_ip=None)


def _practice_off(user, admin_user, **_):
    sync_services.practice_sync_set(
        practice=user.practice, enabled=False, actor=admin_user, client_ip=None
    )


def _deactivate(user, admin_user, **_):
    user_set_active(user=user, active=False, actor=admin_user, client_ip=None)


def _role_removed(user, admin_user, **_):
    user_update(
        user=user,
        display_name=user.display_name,
        credentials=user.credentials,
        roles=[Role.ADMINISTRATOR],
        actor=admin_user,
        client_ip=None,
    )


# The last two write straight to the table: no page moves a user to another
# practice, and a bulk update must end snapshots as a save does.
def _moved_to_another_practice(user, other_practice, **_):
    user.practice = other_practice
    user.save()


def _bulk_deactivate(user, **_):
    type(user).objects.filter(pk=user.pk).update(is_active=False)


REVOCATIONS = {
    "reset": _reset,
    "disabled": _disable,
    "practice switched sync off": _practice_off,
    "owner deactivated": _deactivate,
    "clinician role removed": _role_removed,
    "owner moved to another practice": _moved_to_another_practice,
    "QuerySet.update": _bulk_deactivate,
}


@pytest.mark.parametrize("revocation", REVOCATIONS)
def test_every_revocation_ends_the_snapshot_on_the_next_poll(
    client, clinician, admin_user, other_practice, booked, revocation
):
    path = personal_feed_path(clinician)
    warm(client, path)
    REVOCATIONS[revocation](
        user=clinician, admin_user=admin_user, other_practice=other_practice
    )
    response, _ = poll(client, path)
    assert response.status_code == 404


def test_a_change_in_another_practice_leaves_the_snapshot_alone(
    client, clinician, booked, other_practice
):
    path = personal_feed_path(clinician)
    warm(client, path)
    Practice.objects.filter(pk=other_practice.pk).update(name="Elsewhere")
    # Unknown practice: every snapshot ends (a bulk update names no practice)...
    assert poll(client, path)[1] >= 1
    # ...while a change saved in another practice ends only that practice's.
    practice_update(
        practice=other_practice, actor=None, client_ip=None, name="Elsewhere again"
    )
    assert poll(client, path)[1] == 0


def test_a_lost_stamp_or_an_old_snapshot_means_asking_the_database(
    client, clinician, practice, booked
):
    path = personal_feed_path(clinician)
    warm(client, path)
    cache.delete(snapshot.practice_stamp_key(practice.pk))
    response, queries = poll(client, path)
    assert (response.status_code, queries >= 1) == (200, True)
    assert poll(client, path)[1] == 0

    public_id = path.removeprefix("/calendar/")[:12]
    now = timezone.now()
    assert snapshot.snapshot_read(public_id, now=now).snapshot is not None
    later = now + timedelta(seconds=301)
    assert snapshot.snapshot_read(public_id, now=later).snapshot is None


def test_a_snapshot_never_outlives_the_day(client, clinician, practice, booked):
    path = personal_feed_path(clinician)
    warm(client, path)
    public_id = path.removeprefix("/calendar/")[:12]
    found = snapshot.snapshot_read(public_id, now=timezone.now()).snapshot
    local_now = timezone.now().astimezone(practice.zone)
    midnight = (local_now + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    assert found.expires_at <= midnight.timestamp()


def test_the_suite_wide_check_catches_a_write_that_ends_no_snapshot(
    client, settings, clinician, booked
):
    """A write behind the ORM's back (raw SQL) is exactly what the stamps cannot
    see; with the cross-check on, as in every other test, it fails loudly."""
    path = personal_feed_path(clinician)
    warm(client, path)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE scheduling_appointment SET title = %s, updated_at = %s "
            "WHERE id = %s",
            ["Raw", timezone.now(), booked.pk],
        )
    settings.CALENDAR_FEED_SNAPSHOT_VERIFY = True
    with pytest.raises(AssertionError, match="Stale feed snapshot"):
        client.get(path)


def test_snapshots_are_off_with_a_per_process_cache(settings):
    settings.CALENDAR_FEED_SNAPSHOT_SECONDS = 0
    clear_caches()
    assert snapshot.snapshot_read(
        "abcdefghijkl", now=timezone.now()
    ) == snapshot.SnapshotRead(None, None, None)


def test_a_refused_poll_counted_with_the_snapshot_read_is_uncounted(
    client, clinician, admin_user, booked
):
    path = personal_feed_path(clinician)
    warm(client, path)  # three polls: the first written, two counted since
    sync_services.practice_sync_set(
        practice=clinician.practice, enabled=False, actor=admin_user, client_ip=None
    )
    assert poll(client, path)[0].status_code == 404
    sync_services.practice_sync_set(
        practice=clinician.practice, enabled=True, actor=admin_user, client_ip=None
    )
    cache.delete_many(
        [
            f"calendarsync:fetches:{link}:google:written"
            for link in _public_ids(clinician)
        ]
    )
    assert poll(client, path)[0].status_code == 200
    assert FeedFetch.objects.get().fetch_count == 4


def test_a_migration_ends_every_snapshot(client, clinician, booked):
    """Data migrations write through historical models, which send no signal the
    stamps hear."""
    path = personal_feed_path(clinician)
    warm(client, path)
    call_command("migrate", verbosity=0)
    assert poll(client, path)[1] >= 1


def test_every_watched_model_reports_its_bulk_writes():
    """A model added to practice, scheduling or calendarsync is watched unless
    listed as bookkeeping; its bulk writes then reach the stamps only through
    ChangeNotifyingQuerySet, which its manager must use."""
    watched = snapshot.watched_models()
    assert {model._meta.label for model in watched} >= {
        "practice.Practice",
        "practice.User",
        "scheduling.Appointment",
        "scheduling.Patient",
        "calendarsync.FeedAccess",
        "calendarsync.FeedLink",
    }
    for model in watched:
        queryset = model._default_manager.get_queryset()
        assert isinstance(queryset, ChangeNotifyingQuerySet), model._meta.label
