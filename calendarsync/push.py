"""Direct push: make a connected calendar account's Tend calendar show what the
user's personal feed shows.

What must be on the server is derived from the schedule on every run (the
personal calendar of ``scheduling.publication``: the same UIDs, SEQUENCE,
initials-only text and cancellation rules as the feed), never from a queue. Each
run compares it with what Tend last wrote (``PushedEvent``) and with the
server's listing (hrefs and ETags):

- an appointment new or changed in Tend is PUT (``If-None-Match: *`` /
  ``If-Match``), one no longer shown is DELETEd (``If-Match``);
- an event changed or deleted on the server is put back as Tend has it and
  counted (``CalendarAccount.restored_count``);
- a resource of Tend's (named ``<uid>.ics``) that Tend no longer knows of is
  removed; anything else in the calendar is left alone;
- while the owner may not read their calendar (``permissions.
  calendar_account_authorised``), or Reset Access paused the account
  (``calendarsync.pushstop``), nothing must be there: Tend's events are removed,
  and counted on the account for the page.

So a lost or repeated run heals at the next one, and a second run right after a
first does nothing. Only ``account.calendar_url`` is ever written.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Max
from django.tasks import task
from django.utils import timezone

from calendarsync import crypto, ical, pushqueue, tasks
from calendarsync.caldav_client import CalDAVClient, CalDAVError
from calendarsync.models import CalendarAccount, PushedEvent
from calendarsync.permissions import calendar_account_sending
from practice.models import AuditEvent
from practice.services import audit_record
from scheduling import publication

logger = logging.getLogger("calendarsync.push")


# A run that takes other due accounts beside its own (``push_account``) looks
# for more this often while any is running, and takes new ones for this long.
SWEEP_POLL = 0.1
SWEEP_BUDGET = 60.0

# How Tend names its resources; only these are ever removed as orphans.
TEND_RESOURCE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.ics$"
)


@dataclass(frozen=True)
class Wanted:
    """One resource as it must be on the server."""

    uid: str
    body: bytes
    fingerprint: str  # SHA-256 of ``body``


@dataclass
class PushResult:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    restored: int = 0
    orphans_removed: int = 0
    error: CalDAVError | None = None
    # Another run held the account: this one did nothing.
    busy: bool = False
    # Dates were held back to the clock: a run after this writes the real ones.
    rerun_after: datetime | None = None
    # Sending is stopped: the run removed Tend's events instead.
    stopped: bool = False
    # The calendar's tag as the run left it ("": unknown, list it next time).
    calendar_tag: str = ""
    # The run listed the calendar (it was not known unchanged).
    listed: bool = False
    # Tend's record of what the run wrote and removed, kept until the run
    # records its outcome: one short transaction, however many events.
    rows: dict[str, PushedEvent] = field(default_factory=dict)
    removed_rows: list[int] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return (
            self.created
            + self.updated
            + self.deleted
            + self.restored
            + self.orphans_removed
        )


def wanted_events(account: CalendarAccount, *, now: datetime) -> dict[str, Wanted]:
    """{uid: resource} for every appointment the account owner's personal
    calendar shows at ``now`` (one query)."""
    practice = account.practice
    scope = publication.Scope.PERSONAL
    start, end = publication.calendar_bounds(scope=scope, zone=practice.zone, now=now)
    appointments = publication.calendar_appointments(
        scope=scope,
        practice_id=practice.pk,
        clinician_id=account.user_id,
        start=start,
        end=end,
        now=now,
    )
    wanted = {}
    for event in publication.published_appointments(
        appointments, with_clinician=False, now=now
    ):
        body = ical.render_resource(event, practice.time_zone)
        wanted[event.uid] = Wanted(
            uid=event.uid, body=body, fingerprint=hashlib.sha256(body).hexdigest()
        )
    return wanted


def rerun_after(account: CalendarAccount, *, now: datetime) -> datetime | None:
    """When the account's latest change is still ahead of the clock (several
    changes within a second are each dated a second later, and publication holds
    such dates back to the present), the moment a run writes the real dates."""
    latest = publication.calendar_version_rows(
        scope=publication.Scope.PERSONAL,
        practice_id=account.practice_id,
        clinician_id=account.user_id,
        now=now,
    ).aggregate(latest=Max("updated_at"))["latest"]
    return latest if latest is not None and latest > now else None


def client_for(
    account: CalendarAccount, *, password: str | None = None
) -> CalDAVClient:
    """A client with the account's credential, decrypted only for it (or with
    ``password``, a new one to try before it is saved)."""
    return CalDAVClient(
        url=account.calendar_url or account.server_url,
        username=account.username,
        password=crypto.decrypt(account.secret) if password is None else password,
        auth_kind=account.auth_kind,
    )


def _key(url: str) -> str:
    return unquote(urlsplit(url).path)


def resource_url(account: CalendarAccount, uid: str) -> str:
    base = account.calendar_url
    return (base if base.endswith("/") else base + "/") + f"{uid}.ics"


def reconcile(
    account: CalendarAccount,
    *,
    now: datetime | None = None,
    client: CalDAVClient | None = None,
    leased: bool = False,
) -> PushResult:
    """Bring the account's calendar in line with the schedule (see the module
    docstring); records the outcome on the account. Never raises for a server's
    failure: it is in ``PushResult.error`` and on the account. ``leased``: the
    caller took the account's lease already (``pushqueue.push_take``)."""
    now = now or timezone.now()
    result = PushResult()
    if not account.calendar_url:
        if leased:
            CalendarAccount.objects.filter(pk=account.pk).update(push_lease_until=None)
        return result
    # Without the right to read the calendar (access disabled, the practice's
    # sync off, the owner deactivated or no longer a clinician), or after Reset
    # Access, nothing of it may stay on the server: Tend's events are removed.
    authorised = calendar_account_sending(account)
    result.stopped = not authorised
    if not leased and not lease_claim(account):
        result.busy = True
        return result
    own_client = client is None
    try:
        if client is None:
            client = client_for(account)
        for attempt in (1, 2):
            try:
                _reconcile(
                    account,
                    client,
                    now=now,
                    result=result,
                    authorised=authorised,
                    trust_tag=attempt == 1,
                )
                break
            except CalDAVError as error:
                # An ETag moved between the listing and a write: list again,
                # from Tend's record of what this attempt wrote.
                if error.kind != "conflict" or attempt == 2:
                    raise
                _save_rows(account, result)
        result.rerun_after = rerun_after(account, now=now)
    except CalDAVError as error:
        result.error = error
    except crypto.CredentialError as error:
        result.error = CalDAVError("auth", str(error))
    except BaseException:
        # Not the server's failure (the database's, say): nothing to record,
        # but the next run must not wait for the lease.
        CalendarAccount.objects.filter(pk=account.pk).update(push_lease_until=None)
        raise
    finally:
        if own_client and client is not None:
            client.close()
    _record(account, result, now=now)
    return result


def lease_claim(account: CalendarAccount) -> bool:
    """Claim the account for one run (False: another run holds it;
    ``pushqueue.lease_free``)."""
    moment = timezone.now()
    claimed = CalendarAccount.objects.filter(
        pushqueue.lease_free(moment), pk=account.pk
    ).update(push_lease_until=moment + pushqueue.LEASE)
    return claimed == 1


def _reconcile(
    account: CalendarAccount,
    client: CalDAVClient,
    *,
    now: datetime,
    result: PushResult,
    authorised: bool,
    trust_tag: bool = True,
) -> None:
    wanted = wanted_events(account, now=now) if authorised else {}
    pushed = {row.uid: row for row in PushedEvent.objects.filter(account=account)}
    rows = result.rows
    tag = ""
    if trust_tag and account.calendar_tag:
        tag = client.collection_tag(account.calendar_url)
    if tag and tag == account.calendar_tag:
        # Nothing changed in the calendar since Tend's last run left it as Tend
        # wants: Tend's record is what a listing would say (one small request
        # instead of a listing of every resource).
        on_server = {_key(row.href): (row.href, row.etag) for row in pushed.values()}
    else:
        result.listed = True
        listing = client.resources(account.calendar_url)
        on_server = {_key(href): (href, etag) for href, etag in listing.items()}
    writes = result.writes
    known = set()

    for uid, want in wanted.items():
        row = pushed.get(uid)
        href = row.href if row is not None else resource_url(account, uid)
        known.add(_key(href))
        server_href, server_etag = on_server.get(_key(href), (href, None))
        if row is None:
            # New to Tend's record (or the record was lost: then replace what is
            # there, which is Tend's own resource).
            etag = client.put(server_href, want.body, etag=server_etag)
            row = PushedEvent(account=account, uid=uid, href=server_href)
            result.created += 1
        elif server_etag is None or server_etag != row.etag:
            # Deleted or changed outside Tend: put back as Tend has it.
            etag = client.put(server_href, want.body, etag=server_etag)
            result.restored += 1
        elif row.fingerprint != want.fingerprint:
            etag = client.put(server_href, want.body, etag=row.etag)
            result.updated += 1
        else:
            continue
        row.etag = etag
        row.fingerprint = want.fingerprint
        row.sent_at = now
        rows[uid] = row

    for uid, row in pushed.items():
        if uid in wanted:
            continue
        known.add(_key(row.href))
        found = on_server.get(_key(row.href))
        if found is not None:
            client.delete(found[0], etag=found[1] or None)
        rows.pop(uid, None)
        result.removed_rows.append(row.pk)
        result.deleted += 1

    for key, (href, etag) in on_server.items():
        name = key.rstrip("/").rsplit("/", 1)[-1]
        if key not in known and TEND_RESOURCE.match(name):
            client.delete(href, etag=etag or None)
            result.orphans_removed += 1

    missing = [
        row for uid, row in {**pushed, **rows}.items() if uid in wanted and not row.etag
    ]
    if missing:
        # A server that answered a PUT without an ETag: take them from a listing,
        # or the next run would take its own writes for changes made outside.
        listing = {
            _key(h): e for h, e in client.resources(account.calendar_url).items()
        }
        for row in missing:
            row.etag = listing.get(_key(row.href), "")
            rows[row.uid] = row
    # The tag the calendar has now, for the next run to compare. A change made
    # outside Tend between the last write above and this read is taken for
    # Tend's own; the nightly reconcile (which lists) puts it right.
    if tag and result.writes == writes:
        result.calendar_tag = tag
    else:
        result.calendar_tag = client.collection_tag(account.calendar_url)


@transaction.atomic
def _record(account: CalendarAccount, result: PushResult, *, now: datetime) -> None:
    """The run's outcome on the account, and the lease given back."""
    fresh = CalendarAccount.objects.select_for_update().filter(pk=account.pk).first()
    if fresh is None:  # disconnected meanwhile
        return
    # What the run wrote, even when it failed part way: those writes are there.
    _save_rows(account, result)
    fresh.push_lease_until = None
    if result.error is not None and fresh.secret != account.secret:
        # The owner entered a new password while this run used the old one: its
        # failure says nothing of the new one. The next run tries that.
        fresh.save(update_fields=["push_lease_until"])
        transaction.on_commit(partial(pushqueue.push_request, [fresh.pk]), robust=True)
        account.refresh_from_db()
        return
    if result.stopped:
        # Counted even when the run failed part way: those are gone.
        fresh.stopped_at = fresh.stopped_at or now
        fresh.stopped_removed += result.deleted + result.orphans_removed
    elif result.error is None:
        fresh.stopped_at = None
        fresh.stopped_removed = 0
    if result.error is None:
        if fresh.failing_since is not None:
            _audit(fresh, AuditEvent.Kind.CALENDAR_RECOVERED, {})
        if result.writes:
            # When the last change was sent: the run's end, not its start.
            fresh.last_sent_at = timezone.now()
        fresh.last_reconciled_at = now
        fresh.failing_since = None
        fresh.failure_message = ""
        fresh.needs_attention = False
        # A new failure after this recovery emails the user again.
        fresh.attention_emailed_at = None
        fresh.restored_count += result.restored
        fresh.calendar_tag = result.calendar_tag[:500]
    else:
        if fresh.failing_since is None:
            fresh.failing_since = now
            _audit(
                fresh,
                AuditEvent.Kind.CALENDAR_FAILING,
                {"reason": result.error.kind, "message": result.error.message},
            )
        fresh.failure_message = result.error.message[:300]
        # After a failure the next run lists the calendar.
        fresh.calendar_tag = ""
        fresh.needs_attention = result.error.needs_attention
        if fresh.needs_attention and fresh.attention_emailed_at is None:
            # Once per failing episode; the worker claims it (``attention``).
            transaction.on_commit(
                partial(
                    tasks.attention_email.enqueue,
                    account_id=fresh.pk,
                    kind=result.error.kind,
                ),
                robust=True,
            )
        logger.warning(
            "Calendar push failed for account %s: %s", fresh.pk, result.error.kind
        )
    fresh.save()
    account.refresh_from_db()


@transaction.atomic
def _save_rows(account: CalendarAccount, result: PushResult) -> None:
    """Write Tend's record of what the run wrote and removed (and forget it)."""
    if result.removed_rows:
        PushedEvent.objects.filter(account=account, pk__in=result.removed_rows).delete()
    new = [row for row in result.rows.values() if row.pk is None]
    known = [row for row in result.rows.values() if row.pk is not None]
    PushedEvent.objects.bulk_create(new)
    PushedEvent.objects.bulk_update(known, ["href", "etag", "fingerprint", "sent_at"])
    result.rows = {}
    result.removed_rows = []


def _audit(account: CalendarAccount, kind: str, details: dict) -> None:
    audit_record(
        kind=kind,
        practice=account.practice,
        target_user=account.user,
        details=details,
    )


@task()
def push_account(account_id: int, queued_at: str | None = None) -> dict:
    """The worker's entry point: reconcile one account (unless another run took
    it meanwhile, ``pushqueue.push_take``) and ask for the next run when this one
    could not finish. Then, while other accounts' runs are due, run them too,
    beside it on threads (``push_due``)."""
    mark = datetime.fromisoformat(queued_at) if queued_at else None
    taken = pushqueue.push_take(account_id, mark)
    if taken is pushqueue.Take.HELD:
        # Another run holds the account and may have read the schedule before
        # the change this run is for: ask again shortly.
        pushqueue.push_request(
            [account_id], run_after=timezone.now() + pushqueue.BUSY_DELAY
        )
        return {"skipped": "held"}
    if taken is pushqueue.Take.NOTHING:
        return {"skipped": "taken"}
    others = _Others.begin(exclude=account_id) if mark is not None else None
    try:
        outcome = push_one(account_id, leased=mark is not None)
    finally:
        count = others.finish() if others is not None else 0
    if count:
        outcome["others"] = count
    return outcome


def push_one(account_id: int, *, leased: bool = False) -> dict:
    """Reconcile one account already taken from the queue (``leased``: with its
    lease), and ask for its next run when this one could not finish."""
    account = (
        CalendarAccount.objects.select_related("practice", "user")
        .filter(pk=account_id)
        .first()
    )
    if account is None:
        return {"skipped": "disconnected"}
    result = reconcile(account, leased=leased)
    follow_up(account, result)
    return {
        "writes": result.writes,
        "restored": result.restored,
        "error": result.error.kind if result.error else None,
        "busy": result.busy,
    }


def _give_back(account_id: int) -> None:
    """A run taken from the queue failed outside the calendar server's answers
    (the database's failure, say): give its lease back and want it again, so the
    change it was for is not left to the nightly reconcile."""
    try:
        CalendarAccount.objects.filter(pk=account_id).update(push_lease_until=None)
        pushqueue.push_request([account_id])
    except Exception:
        logger.exception("Calendar push: account %s not queued again", account_id)


class _Others(threading.Thread):
    """The other accounts whose runs are due, run beside the task's own run: a
    thread that keeps up to ``PUSH_CONCURRENCY - 1`` of them going (all of
    ``PUSH_CONCURRENCY`` once the own run is over, the own account included
    again), takes more as they come due (looking every ``SWEEP_POLL``), and stops
    once the own run is over and none are due or running; after ``SWEEP_BUDGET``
    it takes no more, so that the worker's other tasks are not kept waiting."""

    def __init__(self, *, exclude: int, slots: int):
        super().__init__(name="push-others", daemon=True)
        self.exclude = exclude
        self.slots = slots
        self.stopping = threading.Event()
        self.taken = 0
        self.started_at = time.monotonic()
        self.jobs: queue.Queue[int | None] = queue.Queue()
        self.done: queue.Queue[int] = queue.Queue()
        self.threads: list[threading.Thread] = []

    @classmethod
    def begin(cls, *, exclude: int) -> _Others | None:
        slots = settings.PUSH_CONCURRENCY - 1
        # Other runs use connections of their own, which see only what is
        # committed: inside a transaction (a run called on the spot), none.
        if slots < 1 or connection.in_atomic_block:
            return None
        others = cls(exclude=exclude, slots=slots)
        others.start()
        return others

    def run(self) -> None:
        running: set[int] = set()
        try:
            while True:
                over = time.monotonic() - self.started_at > SWEEP_BUDGET
                if not over:
                    # The task's own account, while its run goes on (and one
                    # more slot once it is over).
                    own = [] if self.stopping.is_set() else [self.exclude]
                    took = pushqueue.push_take_due(
                        self.slots + (0 if own else 1) - len(running),
                        exclude=[*own, *running],
                    )
                    for pk in took:
                        running.add(pk)
                        self.jobs.put(pk)
                    self.taken += len(took)
                    while len(self.threads) < len(running):
                        thread = threading.Thread(
                            target=self._work, name=f"push-{len(self.threads)}"
                        )
                        thread.start()
                        self.threads.append(thread)
                if not running:
                    if self.stopping.is_set():
                        return
                    # The task's own run is still going: look again soon.
                    self.stopping.wait(SWEEP_POLL)
                    continue
                try:
                    running.discard(self.done.get(timeout=SWEEP_POLL))
                    while True:
                        running.discard(self.done.get_nowait())
                except queue.Empty:
                    pass
        except Exception:
            logger.exception("Calendar push: running other accounts failed")
        finally:
            for _thread in self.threads:
                self.jobs.put(None)
            for thread in self.threads:
                thread.join()
            connections.close_all()

    def _work(self) -> None:
        """One of the sweep's threads: runs the accounts it is handed, on one
        database connection of its own, closed when the sweep ends."""
        try:
            while (account_id := self.jobs.get()) is not None:
                try:
                    push_one(account_id, leased=True)
                except Exception:
                    logger.exception("Calendar push failed for account %s", account_id)
                    _give_back(account_id)
                finally:
                    self.done.put(account_id)
        finally:
            connections.close_all()

    def finish(self) -> int:
        """Wait for the other runs to end; how many there were."""
        self.stopping.set()
        self.join()
        return self.taken


def follow_up(account: CalendarAccount, result: PushResult) -> datetime | None:
    """Ask for a later run when this one left something undone: a retry with
    backoff after a failure the user need not fix, another shortly when the
    account was busy, one when held-back dates become real. Returns when."""
    now = timezone.now()
    if result.busy:
        when = now + pushqueue.BUSY_DELAY
    elif result.error is not None:
        if result.error.needs_attention:
            return None
        when = now + pushqueue.retry_delay(failing_since=account.failing_since, now=now)
    elif result.rerun_after is not None:
        when = result.rerun_after
    else:
        return None
    return when if pushqueue.push_request([account.pk], run_after=when) else None
