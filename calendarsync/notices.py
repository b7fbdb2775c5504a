"""Change notices: an email to a clinician who opted in when something in the next
48 hours is booked, moved or cancelled on their personal calendar, for calendar
applications Tend cannot push to (Google Calendar refreshes a subscription only
every 8 to 24 hours).

**Recorded as the history is.** Every appointment change goes through a
``scheduling.services`` function that records an ``AppointmentChange`` (who did
what) with ``bulk_create``, which sends ``practice.changes.rows_changed`` with the
rows. That is the one hook that carries the actor, and each row holds the very
``Appointment`` instance the service changed; the instance's state as loaded
(clinician, start, on the calendar or not) was noted when it was loaded
(``post_init``). So the before and after of each change are known at the moment
of change, inside its transaction: a subscriber's line is written to
``PendingChangeNotice`` then (one query per transaction that touched the next 48
hours, none otherwise), and commits or rolls back with the change itself.

**Whose calendar.** An appointment is on a clinician's calendar while it is
theirs, not deleted and not cancelled. Taken from them (given to a colleague,
cancelled, deleted) is a cancellation for them; given to them is a booking.
Changes whose actor is the recipient are not noticed: they made them.

**Sent by the worker, at most once per 10 minutes.** On commit, each recipient
gets a send task (``tasks.change_notices_send``), deferred (where the tasks
backend can defer) by ``GATHER`` after a quiet spell, or until 10 minutes after
their last email. What is sent is derived from
the pending rows, not from the task: all rows waiting are gathered into one email
and coalesced per appointment (its first "before" against its last "after": a
change changed back cancels out). ``ChangeNoticeSubscription.send_queued_at``
says a task is waiting (claimed with a conditional ``UPDATE``; one older than
``STALE`` is taken for lost, and ``manage.py change_notices_send_due`` queues
any that are due), and ``last_sent_at`` is claimed by compare-and-swap before the
rows are, so two workers never send the same rows or two emails in one window.

**Only while the calendar may be read.** The sender checks ``permissions.
personal_calendar_open``; a user who may no longer read their calendar (access
disabled, the practice's sync off, deactivated, no longer a clinician) has their
notices turned off and gets no email.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_init
from django.tasks import default_task_backend
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from calendarsync.models import ChangeNoticeSubscription, PendingChangeNotice
from calendarsync.permissions import personal_calendar_open
from practice.changes import CommitBatch, rows_changed
from practice.dates import format_day_month, format_time, format_weekday
from practice.models import User
from scheduling.models import Appointment, AppointmentChange

logger = logging.getLogger("calendarsync.notices")

# At most one email per user in this long.
WINDOW = timedelta(minutes=10)
# Only changes touching this far ahead are noticed.
HORIZON = timedelta(hours=48)
# The first email after a quiet spell waits this long for more changes.
GATHER = timedelta(minutes=2)
# A queued mark or a claim older than this is taken for a lost task or sender.
STALE = timedelta(minutes=10)

NOT_ALLOWED = (
    "Change notices are about your own appointments: only a clinician whose "
    "calendar sync is on can turn them on."
)


# -- what changed ---------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where an appointment is, as far as one clinician's calendar is concerned."""

    clinician_id: int | None
    start: datetime | None
    shown: bool  # not deleted and not cancelled

    @classmethod
    def of(cls, values: dict) -> Placement:
        return cls(
            clinician_id=values.get("clinician_id"),
            start=values.get("start"),
            shown=values.get("deleted_at") is None
            and values.get("status") not in Appointment.CANCELLED_STATUSES,
        )

    def start_for(self, clinician_id: int) -> datetime | None:
        """The start on ``clinician_id``'s calendar, None when not on it."""
        if self.shown and self.clinician_id == clinician_id:
            return self.start
        return None


@dataclass(frozen=True)
class NoticeLine:
    """One appointment's change on one recipient's calendar."""

    user_id: int
    before: datetime | None
    after: datetime | None
    handed_over: bool


def _notice_lines(
    before: Placement | None, after: Placement, *, actor_id: int | None, now: datetime
) -> Iterator[NoticeLine]:
    recipients = {after.clinician_id}
    if before is not None:
        recipients.add(before.clinician_id)
    for user_id in recipients:
        if user_id is None or user_id == actor_id:
            continue
        was = before.start_for(user_id) if before is not None else None
        now_at = after.start_for(user_id)
        if was == now_at:
            continue
        if not any(t is not None and now <= t <= now + HORIZON for t in (was, now_at)):
            continue
        yield NoticeLine(
            user_id=user_id,
            before=was,
            after=now_at,
            handed_over=now_at is None and after.shown,
        )


def notices_record(
    changes: Iterable[AppointmentChange], *, now: datetime | None = None
) -> int:
    """Note, for subscribers, the changes these history rows record (called as
    they are written, inside the change's transaction); their sends are queued
    when it commits. Returns the rows written."""
    now = now or timezone.now()
    found: list[tuple[Appointment, NoticeLine]] = []
    for change in changes:
        appointment = change.appointment
        after = Placement.of(appointment.__dict__)
        before = getattr(appointment, "_notice_placement", None)
        if change.action == AppointmentChange.Action.CREATED:
            before = None
        elif before is None:
            continue  # not loaded in a way Tend knows: nothing to compare
        # A later change of the same instance compares with this one.
        setattr(appointment, "_notice_placement", after)  # noqa: B010
        for line in _notice_lines(before, after, actor_id=change.actor_id, now=now):
            found.append((appointment, line))
    if not found:
        return 0
    subscribed = set(
        ChangeNoticeSubscription.objects.filter(
            user_id__in={line.user_id for _appointment, line in found}
        ).values_list("user_id", flat=True)
    )
    rows = [
        PendingChangeNotice(
            practice_id=appointment.practice_id,
            user_id=line.user_id,
            appointment_id=appointment.pk,
            is_event=appointment.kind == Appointment.Kind.EVENT,
            before_start=line.before,
            after_start=line.after,
            handed_over=line.handed_over,
            recorded_at=now,
        )
        for appointment, line in found
        if line.user_id in subscribed
    ]
    if not rows:
        return 0
    PendingChangeNotice.objects.bulk_create(rows)
    _requested_on_commit({row.user_id for row in rows})
    return len(rows)


class _Batch(CommitBatch):
    """The recipients one transaction noted, asked for once when it commits."""

    def __init__(self) -> None:
        super().__init__()
        self.user_ids: set[int] = set()

    def send(self) -> None:
        notices_request(self.user_ids)


def _requested_on_commit(user_ids: set[int]) -> None:
    """Queue sends for ``user_ids`` when the current transaction commits, once
    for all the changes it makes (at once outside a transaction)."""
    batch = _Batch.current()
    if batch is None:
        notices_request(user_ids)
    else:
        batch.user_ids |= user_ids


def _on_init(sender, instance, **kwargs):
    instance._notice_placement = Placement.of(instance.__dict__)


def _on_history(sender, objs=None, **kwargs):
    if sender is AppointmentChange and objs:
        notices_record(objs)


def connect() -> None:
    """Listen to appointments loaded and history written (``CalendarsyncConfig.
    ready``)."""
    post_init.connect(_on_init, sender=Appointment, dispatch_uid="notices")
    rows_changed.connect(_on_history, dispatch_uid="notices-history")


# -- when to send ---------------------------------------------------------------


def notices_request(user_ids: Iterable[int], *, now: datetime | None = None) -> list:
    """Queue a send for each subscriber that has none waiting: ``GATHER`` from
    now, or 10 minutes after their last email if that is later. A backend that
    cannot defer sends at once, and queues none while the window is closed
    (``change_notices_send_due`` queues it later). Returns the users a send was
    queued for. Call it outside a transaction or on commit."""
    from calendarsync.tasks import change_notices_send

    now = now or timezone.now()
    queued = []
    subscriptions = ChangeNoticeSubscription.objects.filter(
        user_id__in=set(user_ids)
    ).order_by("user_id")
    can_defer = default_task_backend.supports_defer
    for subscription in subscriptions:
        last = subscription.last_sent_at
        if last is not None and now < last + WINDOW:
            due = last + WINDOW
            if not can_defer:
                logger.debug("Tasks backend cannot defer; change notice left waiting")
                continue
        else:
            # The first email after a quiet spell waits a little, so that a burst
            # of edits (a day rearranged) arrives as one email.
            due = now + GATHER if can_defer else now
        claimed = (
            ChangeNoticeSubscription.objects.filter(pk=subscription.pk)
            .filter(Q(send_queued_at__isnull=True) | Q(send_queued_at__lt=now - STALE))
            .update(send_queued_at=due)
        )
        if not claimed:
            continue
        try:
            if due > now:
                change_notices_send.using(run_after=due).enqueue(
                    user_id=subscription.user_id
                )
            else:
                change_notices_send.enqueue(user_id=subscription.user_id)
        except BaseException:
            ChangeNoticeSubscription.objects.filter(pk=subscription.pk).update(
                send_queued_at=None
            )
            raise
        queued.append(subscription.user_id)
    return queued


def notices_request_due(*, now: datetime | None = None) -> list:
    """Queue a send for every subscriber with changes waiting (a lost task, or a
    backend that cannot defer): ``manage.py change_notices_send_due``."""
    now = now or timezone.now()
    waiting = PendingChangeNotice.objects.filter(
        Q(claim="") | Q(claimed_at__lt=now - STALE)
    ).values_list("user_id", flat=True)
    return notices_request(set(waiting), now=now)


# -- sending ----------------------------------------------------------------------


def _day(moment: datetime, zone: tzinfo) -> str:
    return f"{format_weekday(moment, zone)} {format_day_month(moment, zone)}"


def notice_sentence(
    *,
    before: datetime | None,
    after: datetime | None,
    is_event: bool,
    handed_over: bool,
    zone: tzinfo,
) -> str:
    """ "Tue 1 Dec: the 10:00 appointment moved to 11:30", with no patient, title
    or place: only the day, the time and what happened."""
    noun = "event" if is_event else "appointment"
    if before is None:
        assert after is not None
        return f"{_day(after, zone)}: a {format_time(after, zone)} {noun} was booked"
    head = f"{_day(before, zone)}: the {format_time(before, zone)} {noun}"
    if after is None:
        if handed_over:
            return f"{head} was given to another clinician"
        return f"{head} was cancelled"
    if _day(before, zone) == _day(after, zone):
        return f"{head} moved to {format_time(after, zone)}"
    return f"{head} moved to {_day(after, zone)} at {format_time(after, zone)}"


def notice_lines(rows: Iterable[PendingChangeNotice], *, zone: tzinfo) -> list[str]:
    """The email's lines for these rows, in order of time: per appointment its
    first "before" against its last "after", so a change changed back (or
    booked and cancelled) says nothing."""
    first: dict[int, PendingChangeNotice] = {}
    last: dict[int, PendingChangeNotice] = {}
    for row in sorted(rows, key=lambda row: (row.recorded_at, row.pk or 0)):
        first.setdefault(row.appointment_id, row)
        last[row.appointment_id] = row
    found = []
    for appointment_id, head in first.items():
        tail = last[appointment_id]
        before, after = head.before_start, tail.after_start
        if before == after:
            continue
        moment = before if before is not None else after
        assert moment is not None
        sentence = notice_sentence(
            before=before,
            after=after,
            is_event=tail.is_event,
            handed_over=tail.handed_over,
            zone=zone,
        )
        found.append((moment, sentence))
    return [sentence for _moment, sentence in sorted(found)]


def notices_send(*, user_id: int, now: datetime | None = None) -> str:
    """Email the user the changes waiting for them, if their window is open and
    they may still read their calendar (the worker's entry point). Returns what
    happened: "sent", "nothing", "later", "busy", "off" or "stopped"."""
    now = now or timezone.now()
    # From here on a change asks for a new task.
    ChangeNoticeSubscription.objects.filter(user_id=user_id).update(send_queued_at=None)
    subscription = (
        ChangeNoticeSubscription.objects.select_related(
            "user__feed_access", "user__practice", "practice"
        )
        .filter(user_id=user_id)
        .first()
    )
    if subscription is None:
        PendingChangeNotice.objects.filter(user_id=user_id).delete()
        return "off"
    user = subscription.user
    if not personal_calendar_open(user, practice=subscription.practice):
        change_notices_stop(user_id=user_id)
        return "stopped"
    outcome = _send_window(subscription, now=now)
    if PendingChangeNotice.objects.filter(user_id=user_id, claim="").exists():
        notices_request([user_id], now=now)
    return outcome


def _send_window(subscription: ChangeNoticeSubscription, *, now: datetime) -> str:
    previous = subscription.last_sent_at
    if previous is not None and now < previous + WINDOW:
        return "later"
    # Compare and swap: of two senders only one opens this window.
    window = ChangeNoticeSubscription.objects.filter(pk=subscription.pk)
    window = (
        window.filter(last_sent_at__isnull=True)
        if previous is None
        else window.filter(last_sent_at=previous)
    )
    if not window.update(last_sent_at=now):
        return "busy"
    token = uuid.uuid4().hex
    PendingChangeNotice.objects.filter(user_id=subscription.user_id).filter(
        Q(claim="") | Q(claimed_at__lt=now - STALE)
    ).update(claim=token, claimed_at=now)
    claimed = PendingChangeNotice.objects.filter(claim=token)
    lines = notice_lines(claimed, zone=subscription.practice.zone)

    def give_back() -> None:
        ChangeNoticeSubscription.objects.filter(
            pk=subscription.pk, last_sent_at=now
        ).update(last_sent_at=previous)

    if not lines:
        claimed.delete()
        give_back()
        return "nothing"
    try:
        _email(subscription, lines)
    except BaseException:
        claimed.update(claim="", claimed_at=None)
        give_back()
        raise
    claimed.delete()
    return "sent"


def _email(subscription: ChangeNoticeSubscription, lines: list[str]) -> None:
    user = subscription.user
    practice = subscription.practice
    count = len(lines)
    context = {
        "user": user,
        "lines": lines,
        "zone": practice.time_zone,
        "scheduling_url": settings.SITE_URL + reverse("scheduling:calendar"),
        "settings_url": settings.SITE_URL
        + reverse("calendarsync:sync")
        + "#change-notices",
    }
    EmailMessage(
        subject=(
            f"Tend: {count} change{'' if count == 1 else 's'} to your calendar in "
            "the next 48 hours"
        ),
        body=render_to_string("calendarsync/change_notices_email.txt", context),
        to=[user.email],
    ).send()


# -- opting in and out ----------------------------------------------------------------


def change_notices_enabled(*, user: User) -> bool:
    """Whether ``user`` gets change notices (opted in and may read their
    calendar)."""
    if not personal_calendar_open(user):
        return False
    return ChangeNoticeSubscription.objects.filter(
        user=user, practice=user.practice
    ).exists()


@transaction.atomic
def change_notices_set(*, user: User, enabled: bool) -> None:
    """Turn the user's change notices on (only while they may read their personal
    calendar: ValidationError otherwise) or off (dropping what waits)."""
    if not enabled:
        change_notices_stop(user_id=user.pk)
        return
    practice = user.practice
    if practice is None or not personal_calendar_open(user):
        raise ValidationError(NOT_ALLOWED)
    ChangeNoticeSubscription.objects.filter(user=user).exclude(
        practice=practice
    ).delete()
    ChangeNoticeSubscription.objects.get_or_create(
        user=user, defaults={"practice": practice}
    )


def change_notices_stop(*, user_id: int) -> None:
    """Turn the user's change notices off and drop what waits for them."""
    ChangeNoticeSubscription.objects.filter(user_id=user_id).delete()
    PendingChangeNotice.objects.filter(user_id=user_id).delete()
