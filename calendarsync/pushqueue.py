"""When a connected calendar account gets a push run (``push.push_account``).

**On commit, per account, once.** Every write that can change what a clinician's
personal calendar shows, or whether they may read it, notes which calendars it
touched: an appointment's clinician (and the one it was taken from), the owner of
a sync access switched, disabled or reset, a deactivated user or one whose roles
changed, every account of a practice whose settings changed (the practice-wide
switch, its name or zone). Nothing is queried while the transaction runs; when it
commits, one query finds the connected accounts among those noted and each gets
one run, however many changes the transaction made.

**Two marks on the account, none in the queue.** ``CalendarAccount.
push_wanted_at`` says a run is wanted (not before that moment): the schedule
changed since the last run started. ``push_queued_at`` says a task is waiting in
the queue for the account (to start at or after that moment). Both are claimed
with conditional ``UPDATE``s, so of two processes committing at once only one
enqueues, and a change made while a task waits enqueues nothing more. A task
clears its own queued mark as it starts, then takes the wanted mark
(``push_take``) before it reads the schedule: a change committed after that
wants the next run; one committed before is read by this one. A queued mark
older than ``STALE`` is taken for a lost task and claimed again. The marks live
on the account, not in the queue backend's table, so this works the same with any
backend.

**Many accounts at once.** A worker runs one task at a time, and one run is
mostly waiting on a calendar server. So a run, once started, also takes the
other accounts whose wanted mark is due (``push_take_due``: not failing, not held
by another run) and runs them beside its own on threads, up to
``PUSH_CONCURRENCY`` at a time, taking more as they come due until none are
(``push.push_account``). Their own tasks, if any wait, then find nothing wanted
and do nothing; and since a sweep leaves queued marks alone, an account changed
many times during a sweep has at most one task waiting, not one per run.

**Again later.** A run that failed on the server or the network asks for another
with exponential backoff and jitter, capped at ``RETRY_CAP`` (``retry_delay``); one
that found the account held by another run asks again ``BUSY_DELAY`` later; one
whose dates were held back to the clock asks again when they are real. A refused
password, a full account or a refused address ("needs attention") asks for
nothing: the user must act, and a new app password, reconnecting or the nightly
reconcile (``manage.py push_reconcile_all``) runs it again. Runs of a failing
account wait for their retry: a sweep does not take them. A backend that cannot defer
(the tests' immediate one) gets no later run.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_init, post_save
from django.tasks import default_task_backend
from django.utils import timezone

from calendarsync.models import CalendarAccount, FeedAccess
from practice import hooks
from practice.changes import CommitBatch, quiet_fields, rows_changed
from practice.models import Practice
from scheduling.models import Appointment

logger = logging.getLogger("calendarsync.push")

# A queued mark older than this is taken for a lost task.
STALE = timedelta(minutes=10)
# After a failure: the first retry, and the longest wait between two.
RETRY_FIRST = timedelta(seconds=10)
RETRY_CAP = timedelta(hours=1)
# Another run held the account: ask again this much later.
BUSY_DELAY = timedelta(seconds=1)
# The longest a run may hold an account (``lease_free``): one that died keeps it
# no longer.
LEASE = timedelta(minutes=10)


def lease_free(now: datetime) -> Q:
    """Accounts no run holds at ``now``. A lease is a column, not a lock held
    across the network: the database is never kept waiting on a calendar
    server; a run claims it with a conditional ``UPDATE`` setting
    ``push_lease_until`` to ``now + LEASE`` and gives it back with its outcome."""
    return Q(push_lease_until__isnull=True) | Q(push_lease_until__lt=now)


def retry_delay(
    *, failing_since: datetime | None, now: datetime, rng: random.Random | None = None
) -> timedelta:
    """How long to wait before retrying a failing account: about as long as it has
    been failing (so each wait roughly doubles the time since the first failure:
    exponential backoff without a counter), at least ``RETRY_FIRST`` and at most
    ``RETRY_CAP``, with half of it random so accounts failing together spread out."""
    elapsed = now - failing_since if failing_since is not None else timedelta(0)
    base = min(max(elapsed, RETRY_FIRST), RETRY_CAP)
    return base / 2 + base / 2 * (rng or random).random()


def push_request(
    account_ids: Iterable[int], *, run_after: datetime | None = None
) -> list[int]:
    """Want a run of each account (``run_after``: not before then), and enqueue a
    task for each that has none waiting. Returns the accounts a task was enqueued
    for. Call it outside a transaction, or on commit."""
    from calendarsync.push import push_account

    now = timezone.now()
    if run_after is not None and not default_task_backend.supports_defer:
        logger.debug("Tasks backend cannot defer; no later push run")
        return []
    mark = run_after if run_after is not None and run_after > now else now
    enqueued = []
    for account_id in sorted(set(account_ids)):
        connected = CalendarAccount.objects.filter(pk=account_id).exclude(
            calendar_url=""
        )
        with transaction.atomic():  # one commit for both marks
            # The earliest moment a run is wanted since the last one started.
            connected.filter(
                Q(push_wanted_at__isnull=True) | Q(push_wanted_at__gt=mark)
            ).update(push_wanted_at=mark)
            claimed = connected.filter(
                Q(push_queued_at__isnull=True) | Q(push_queued_at__lt=now - STALE)
            ).update(push_queued_at=mark)
        if not claimed:
            continue
        try:
            queued = push_account.using(run_after=mark) if mark > now else push_account
            queued.enqueue(account_id, queued_at=mark.isoformat())
        except BaseException:
            CalendarAccount.objects.filter(pk=account_id).update(push_queued_at=None)
            raise
        enqueued.append(account_id)
    return enqueued


class Take(enum.Enum):
    """What a starting task found (``push_take``)."""

    RUN = "run"  # the run is this task's, and the account's lease with it
    NOTHING = "nothing"  # no run wanted now: another took it, or it is for later
    HELD = "held"  # a run is wanted, but another run holds the account


def push_take(account_id: int, queued_at: datetime | None) -> Take:
    """A task starts: clear its queued mark (``queued_at``, the mark it was
    queued with, if it is still that one) and take the account's run, with its
    lease (``LEASE``), if one is wanted and due and no run holds it; if one
    is wanted only later, queue a task for then. A run not queued by
    ``push_request`` (``queued_at`` None) always runs, and claims the lease
    itself."""
    account = CalendarAccount.objects.filter(pk=account_id)
    if queued_at is None:
        account.update(push_queued_at=None, push_wanted_at=None)
        return Take.RUN
    account.filter(push_queued_at=queued_at).update(push_queued_at=None)
    now = timezone.now()
    taken = (
        account.filter(push_wanted_at__lte=now)
        .filter(lease_free(now))
        .update(push_wanted_at=None, push_lease_until=now + LEASE)
    )
    if taken:
        return Take.RUN
    wanted = account.values_list("push_wanted_at", flat=True).first()
    if wanted is not None and wanted <= now:
        return Take.HELD
    if wanted is not None:
        # A run is wanted later (a retry, or dates held back to the clock),
        # asked for while this task waited, so none was queued for it: queue it
        # now, or nothing would run it (a sweep takes only runs that are due).
        push_request([account_id], run_after=wanted)
    return Take.NOTHING


def push_take_due(limit: int, *, exclude: Iterable[int] = ()) -> list[int]:
    """Take up to ``limit`` accounts whose run is wanted and due, that no run
    holds and that are not failing (those wait for their retry), the longest
    waiting first, each with its lease; returns their ids. Each is taken with a
    conditional ``UPDATE`` on the mark read, so of two workers only one takes an
    account, and a task of its own, if one waits, later finds nothing wanted
    (``push_take``)."""
    if limit <= 0:
        return []
    now = timezone.now()
    free = lease_free(now)
    due = (
        CalendarAccount.objects.exclude(calendar_url="")
        .exclude(pk__in=list(exclude))
        .filter(free, push_wanted_at__lte=now, failing_since__isnull=True)
        .order_by("push_wanted_at", "pk")
        .values_list("pk", "push_wanted_at")[:limit]
    )
    return [
        pk
        for pk, mark in list(due)
        if CalendarAccount.objects.filter(free, pk=pk, push_wanted_at=mark).update(
            push_wanted_at=None, push_lease_until=now + LEASE
        )
    ]


def push_request_all() -> list[int]:
    """A full run for every connected account (the nightly reconcile): each
    lists its calendar, whatever its tag says."""
    accounts = CalendarAccount.objects.exclude(calendar_url="")
    accounts.update(calendar_tag="")
    return push_request(list(accounts.values_list("pk", flat=True)))


# -- noting what a transaction touched ----------------------------------------------


class _Touched(CommitBatch):
    """The calendars one transaction touched: their accounts get one run each when
    it commits."""

    def __init__(self) -> None:
        super().__init__()
        self.clinician_ids: set[int] = set()
        self.practice_ids: set[int] = set()
        self.everything = False

    def send(self) -> None:
        accounts = CalendarAccount.objects.exclude(calendar_url="")
        if not self.everything:
            accounts = accounts.filter(
                Q(user_id__in=self.clinician_ids) | Q(practice_id__in=self.practice_ids)
            )
        push_request(list(accounts.values_list("pk", flat=True)))


def calendars_touched(
    *,
    clinician_ids: Iterable[int] = (),
    practice_ids: Iterable[int] | None = (),
    using: str | None = None,
) -> None:
    """Note calendars the current transaction changed (``practice_ids`` None:
    possibly any); their accounts get one run each when it commits (at once
    outside a transaction)."""
    touched = _Touched.current(using)
    now = touched is None
    if touched is None:
        touched = _Touched()
    touched.clinician_ids.update(pk for pk in clinician_ids if pk is not None)
    if practice_ids is None:
        touched.everything = True
    else:
        touched.practice_ids.update(practice_ids)
    if now:
        touched.flush()


def _clinicians(appointments) -> set[int]:
    ids = set()
    for appointment in appointments:
        ids.add(appointment.clinician_id)
        # Moved to another clinician: the one it left loses it.
        ids.add(getattr(appointment, "_loaded_clinician_id", None))
    ids.discard(None)
    return ids


def _on_appointment_init(sender, instance, **kwargs):
    instance._loaded_clinician_id = instance.__dict__.get("clinician_id")


def _on_appointment_save(sender, instance, raw=False, **kwargs):
    if not raw:
        calendars_touched(clinician_ids=_clinicians([instance]))


def _on_appointment_delete(sender, instance, **kwargs):
    calendars_touched(clinician_ids=_clinicians([instance]))


def _on_rows(sender, practice_ids, objs=None, **kwargs):
    if sender is not Appointment:
        return
    if objs is not None:
        calendars_touched(clinician_ids=_clinicians(objs))
    else:
        calendars_touched(practice_ids=practice_ids)


def _on_practice_save(sender, instance, update_fields=None, raw=False, **kwargs):
    if raw or (
        update_fields is not None and set(update_fields) <= quiet_fields(sender)
    ):
        return
    calendars_touched(practice_ids=[instance.pk])


def _on_feed_access_save(sender, instance, raw=False, **kwargs):
    if not raw:
        calendars_touched(clinician_ids=[instance.user_id])


def _on_authority(sender, user, **kwargs):
    calendars_touched(clinician_ids=[user.pk])


def connect() -> None:
    """Listen to the writes that change a pushed calendar
    (``CalendarsyncConfig.ready``)."""
    post_init.connect(_on_appointment_init, sender=Appointment, dispatch_uid="push")
    post_save.connect(_on_appointment_save, sender=Appointment, dispatch_uid="push")
    post_delete.connect(_on_appointment_delete, sender=Appointment, dispatch_uid="push")
    rows_changed.connect(_on_rows, dispatch_uid="push-rows")
    post_save.connect(_on_practice_save, sender=Practice, dispatch_uid="push")
    post_save.connect(_on_feed_access_save, sender=FeedAccess, dispatch_uid="push")
    hooks.user_authority_changed.connect(_on_authority, dispatch_uid="push")
