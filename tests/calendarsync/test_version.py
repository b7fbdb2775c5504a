"""The version a poll compares is derived from the publication contract's own
visibility rule: on randomised schedules, the poll's version aggregates and the
appointments a feed shows agree with the rule as written in words (an oracle in
plain Python), on SQLite and PostgreSQL alike."""

import uuid
from datetime import timedelta

from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calendarsync.models import FeedScope
from calendarsync.selectors import feed_link_for_poll
from scheduling import publication
from scheduling.models import Appointment
from tests.factories import feed_links

STATUSES = [status.value for status in Appointment.Status]

appointment = st.fixed_dictionaries(
    {
        "mine": st.booleans(),
        # From well before the longest window back to beyond the longest ahead.
        "start_minutes": st.integers(min_value=-90 * 1440, max_value=400 * 1440),
        "minutes": st.integers(min_value=5, max_value=24 * 60),
        "status": st.sampled_from(STATUSES),
        # Around the retention's edge.
        "cancelled_days_ago": st.integers(min_value=0, max_value=45),
        "deleted_days_ago": st.none() | st.integers(min_value=0, max_value=45),
        "changed_days_ago": st.integers(min_value=0, max_value=45),
    }
)


def oracle_shown(row, now) -> bool:
    """Current appointments, and cancelled or deleted ones for 30 days after they
    were cancelled or deleted."""
    cutoff = now - timedelta(days=30)
    if row.deleted_at is not None:
        return row.deleted_at >= cutoff
    if row.cancelled_at is not None:
        return row.cancelled_at >= cutoff
    return True


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(specs=st.lists(appointment, max_size=12))
def test_poll_version_and_shown_appointments_follow_the_rule(
    practice, clinician, other_clinician, admin_user, specs
):
    now = timezone.now()
    # Straight to the table in one statement: each example needs rows cancelled and
    # deleted days ago, which only the passage of time makes, and bulk_create keeps
    # the examples fast.
    rows = []
    for spec in specs:
        start = now + timedelta(minutes=spec["start_minutes"])
        cancelled = spec["status"] in Appointment.CANCELLED_STATUSES
        deleted = spec["deleted_days_ago"]
        rows.append(
            Appointment(
                practice=practice,
                clinician=clinician if spec["mine"] else other_clinician,
                kind=Appointment.Kind.EVENT,
                title="Block",
                start=start,
                end=start + timedelta(minutes=spec["minutes"]),
                status=spec["status"],
                cancelled_at=now - timedelta(days=spec["cancelled_days_ago"])
                if cancelled
                else None,
                deleted_at=None if deleted is None else now - timedelta(days=deleted),
                updated_at=now - timedelta(days=spec["changed_days_ago"]),
                uid=uuid.uuid4(),
            )
        )
    Appointment.objects.bulk_create(rows)
    try:
        links = {
            FeedScope.PERSONAL: feed_links(clinician)[
                (FeedScope.PERSONAL, clinician.pk)
            ],
            FeedScope.PRACTICE: feed_links(admin_user)[(FeedScope.PRACTICE, None)],
        }
        stored = list(Appointment.objects.filter(practice=practice))
        for scope, path in links.items():
            public_id = path.removeprefix("/calendar/")[:12]
            link = feed_link_for_poll(public_id=public_id, now=now)
            mine = [
                row
                for row in stored
                if scope == FeedScope.PRACTICE or row.clinician_id == clinician.pk
            ]
            low, high = publication.version_bounds(scope=scope, now=now)
            counted = [row for row in mine if row.start < high and row.end > low]
            changed = max((row.updated_at for row in counted), default=None)
            deleted = max(
                (row.deleted_at for row in counted if row.deleted_at), default=None
            )
            expected = [
                len(counted),
                sum(oracle_shown(row, now) for row in counted),
                changed,
                deleted,
            ]
            assert link.schedule_version == "/".join(
                "" if value is None else str(value) for value in expected
            )
            assert link.version_changed == changed

            start, end = publication.calendar_bounds(
                scope=scope, zone=practice.zone, now=now
            )
            shown = publication.calendar_appointments(
                scope=scope,
                practice_id=practice.pk,
                clinician_id=link.clinician_id,
                start=start,
                end=end,
                now=now,
            )
            assert set(shown.values_list("pk", flat=True)) == {
                row.pk
                for row in mine
                if row.start < end and row.end > start and oracle_shown(row, now)
            }
    finally:
        Appointment.objects.filter(practice=practice).delete()
