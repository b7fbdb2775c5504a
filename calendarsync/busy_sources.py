"""Writes for personal calendars read in as busy time (``BusySource``): adding one,
reading it, and removing it. Fetching and parsing are ``calendarsync.busy_read``;
the intervals themselves are stored by ``scheduling.busy_services`` alone.

**Adding reads at once.** A new source is read before anything is saved: an
address that is refused, missing, or answers with something that is not a
calendar is said plainly on the form and nothing is kept. Only a calendar that
was read is saved, with its busy time, in one transaction.

**Every 10 minutes.** ``BusySource.read_queued_at`` says a read is waiting (to run
at or after that moment). It is claimed by a conditional ``UPDATE`` before
enqueueing, so one read waits per source however often it is asked for; the read
claims it back as it starts (a duplicate finds nothing to claim and does nothing)
and, when done, enqueues the next one ``READ_EVERY`` later where the tasks backend
can defer. ``manage.py busy_refresh_due`` (from cron, and at ``make run``'s start)
enqueues every source whose read is due and has none waiting, and takes a mark
older than ``STALE`` for a lost task. "Refresh now" replaces a waiting later read
with one at once.

**Failures keep the last good data.** A read that fails records since when and
why, and leaves the intervals and ``BusyCalendar.read_at`` as they were: after a
day they show as stale, never as an empty schedule.

**Only while the owner is a clinician.** A source is read while its owner is
active, in the practice and a clinician. When that ends (deactivation, the role
taken away) the owner's busy time is removed at once and reading stops; the
sources stay listed, and reading resumes if the role is given back.

Nothing from a calendar but start, end and tentative reaches the database, the
logs or the task queue (whose rows hold only a source's id).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.tasks import default_task_backend
from django.utils import timezone

from calendarsync import crypto
from calendarsync.busy_read import (
    BusyReadError,
    Fetched,
    address_hint,
    caldav_fetch,
    ics_address,
    ics_fetch,
    read_busy,
)
from calendarsync.caldav_client import CalDAVClient, CalDAVError, same_resource
from calendarsync.models import BusySource, CalendarAccount
from calendarsync.permissions import busy_source_authorised
from practice.models import User
from scheduling.busy_services import (
    busy_read_confirm,
    busy_times_clear,
    busy_times_replace,
)
from scheduling.busy_services import busy_window as _window
from scheduling.models import BusyCalendar

logger = logging.getLogger("calendarsync.busy")

READ_EVERY = timedelta(minutes=10)
# A queued mark older than this (past its time) is taken for a lost task.
STALE = timedelta(minutes=10)
MAX_SOURCES = 20
DEFAULT_NAME = "Personal calendar"

NOT_A_CLINICIAN = "Only clinicians can add personal calendars as busy time."
TOO_MANY = f"You can add at most {MAX_SOURCES} personal calendars."
NO_ADDRESS = "Enter the calendar's address."
BAD_SCHEME = (
    "Enter an address that starts with https:// or webcal:// (the secret iCal "
    "address your calendar gives you)."
)
NO_ACCOUNT = "Connect a calendar account first."
TEND_CALENDAR = (
    "That is the calendar Tend writes your appointments into: it is never read "
    "back as busy time."
)
ALREADY_READ = "That calendar is already read as busy time."
ACCOUNT_GONE = (
    "the calendar account was disconnected — connect it again, or remove this calendar"
)
NOT_IN_ACCOUNT = "That calendar is not in your account any more; reload the page."


def _sentence(message: str) -> str:
    text = message[0].upper() + message[1:]
    return text if text.endswith(".") else text + "."


@dataclass(frozen=True)
class ReadOutcome:
    """What one read did: ``read`` (new busy time kept), ``unchanged`` (confirmed),
    ``failed``, ``stopped`` (the owner may not have busy time) or ``skipped``
    (no read was waiting: a duplicate task, or the source is gone)."""

    result: str
    busy_count: int = 0


# -- reading ---------------------------------------------------------------------------


def _fetch(source: BusySource, *, window, session=None, client=None) -> Fetched:
    if source.kind == BusySource.Kind.ICS:
        try:
            url = crypto.decrypt(source.secret_url)
        except crypto.CredentialError as error:
            raise BusyReadError("credential", str(error)) from None
        return ics_fetch(
            url,
            etag=source.etag,
            last_modified=source.last_modified,
            session=session,
        )
    account = source.account
    if account is None:
        raise BusyReadError("not_found", ACCOUNT_GONE)
    own_client = client is None
    if own_client:
        try:
            client = _account_client(account)
        except crypto.CredentialError as error:
            raise BusyReadError("credential", str(error)) from None
    try:
        return caldav_fetch(
            client,
            calendar_url=source.caldav_url,
            home_url=account.home_url,
            tag=source.etag,
            window=window,
        )
    finally:
        if own_client:
            client.close()


def _account_client(account: CalendarAccount) -> CalDAVClient:
    return CalDAVClient(
        url=account.server_url,
        username=account.username,
        password=crypto.decrypt(account.secret),
        auth_kind=account.auth_kind,
    )


def busy_source_read(
    *,
    source: BusySource,
    now: datetime | None = None,
    session=None,
    client=None,
) -> ReadOutcome:
    """Read the source once and keep what it gave: new busy time, a confirmation
    (unchanged), or the failure (the last good busy time stays)."""
    now = now or timezone.now()
    calendar = source.calendar
    if not busy_source_authorised(source):
        busy_times_clear(clinician_ids=[source.owner_id])
        return ReadOutcome("stopped")
    window = _window(practice=source.practice, now=now)
    try:
        fetched = _fetch(source, window=window, session=session, client=client)
        parsed = (
            None
            if fetched.bodies is None
            else read_busy(fetched.bodies, zone=source.practice.zone, window=window)
        )
    except BusyReadError as error:
        # The kind only: the message may be about the address, which is secret.
        logger.info("Busy source %s could not be read (%s)", source.pk, error.kind)
        BusySource.objects.filter(pk=source.pk).update(
            attempted_at=now,
            failing_since=source.failing_since or now,
            failure_message=error.message[:300],
        )
        return ReadOutcome("failed")
    with transaction.atomic():
        if not BusyCalendar.objects.select_for_update().filter(pk=calendar.pk).exists():
            return ReadOutcome("skipped")  # removed while it was being read
        if parsed is None:
            busy_read_confirm(calendar=calendar, read_at=now)
            count = source.busy_count
        else:
            count = busy_times_replace(
                calendar=calendar, intervals=parsed.intervals, read_at=now, now=now
            )
        BusySource.objects.filter(pk=source.pk).update(
            attempted_at=now,
            failing_since=None,
            failure_message="",
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            busy_count=count,
        )
    return ReadOutcome("unchanged" if parsed is None else "read", count)


def busy_source_read_queued(source_id: int, *, now: datetime | None = None) -> str:
    """The worker's read of one source (the task ``busy_source_read``): claim the
    waiting read, read, and queue the next one ``READ_EVERY`` later."""
    now = now or timezone.now()
    claimed = BusySource.objects.filter(
        pk=source_id, read_queued_at__lte=now + timedelta(seconds=1)
    ).update(read_queued_at=None)
    if not claimed:
        return "skipped"
    source = (
        BusySource.objects.select_related("calendar", "practice", "owner", "account")
        .filter(pk=source_id)
        .first()
    )
    if source is None:
        return "skipped"
    outcome = busy_source_read(source=source, now=now)
    if outcome.result != "stopped":
        busy_read_request([source_id], run_after=timezone.now() + READ_EVERY)
    return outcome.result


def busy_read_request(
    source_ids, *, run_after: datetime | None = None, now_over_later: bool = False
) -> list[int]:
    """Enqueue a read for each source with none waiting (``run_after``: not before
    then). ``now_over_later`` ("Refresh now"): a read waiting for later is
    brought forward. Returns the sources a read was enqueued for."""
    from calendarsync.tasks import busy_source_read as read_task

    now = timezone.now()
    if run_after is not None and not default_task_backend.supports_defer:
        return []
    mark = run_after if run_after is not None and run_after > now else now
    free = Q(read_queued_at__isnull=True) | Q(read_queued_at__lt=now - STALE)
    if now_over_later:
        free |= Q(read_queued_at__gt=now)
    enqueued = []
    for source_id in sorted(set(source_ids)):
        if not BusySource.objects.filter(free, pk=source_id).update(
            read_queued_at=mark
        ):
            continue
        try:
            if mark > now:
                read_task.using(run_after=mark).enqueue(source_id)
            else:
                read_task.enqueue(source_id)
        except BaseException:
            BusySource.objects.filter(pk=source_id).update(read_queued_at=None)
            raise
        enqueued.append(source_id)
    return enqueued


def busy_read_due(*, now: datetime | None = None) -> list[int]:
    """Enqueue a read for every source that is due (not attempted for
    ``READ_EVERY``) and whose owner may have busy time (``busy_refresh_due``)."""
    now = now or timezone.now()
    due = (
        BusySource.objects.filter(
            Q(attempted_at__isnull=True) | Q(attempted_at__lte=now - READ_EVERY),
            owner__is_active=True,
            owner__is_clinician=True,
            owner__practice_id=F("practice_id"),
        )
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    return busy_read_request(list(due))


# -- adding and removing ---------------------------------------------------------------


def _may_add(user: User) -> None:
    if user.practice_id is None or not user.is_active or not user.is_clinician:
        raise ValidationError(NOT_A_CLINICIAN)
    if BusySource.objects.filter(owner=user).count() >= MAX_SOURCES:
        raise ValidationError(TOO_MANY)


def _first_read(fetch, *, user: User, now: datetime):
    """Read a new source before saving it: the parsed calendar, or a
    ValidationError saying why it cannot be used."""
    practice = user.practice
    assert practice is not None  # _may_add checked
    window = _window(practice=practice, now=now)
    try:
        fetched = fetch(window)
        return fetched, read_busy(
            fetched.bodies or [], zone=practice.zone, window=window
        )
    except BusyReadError as error:
        raise ValidationError(
            f"Tend could not read that calendar: {error.message}.", code=error.kind
        ) from None


def _save(
    *, user: User, name: str, parsed, fetched: Fetched, now: datetime, **fields
) -> BusySource:
    with transaction.atomic():
        calendar = BusyCalendar(
            practice=user.practice,
            clinician=user,
            name=(name.strip() or parsed.name or DEFAULT_NAME)[:120],
        )
        calendar.full_clean()
        calendar.save()
        count = busy_times_replace(
            calendar=calendar, intervals=parsed.intervals, read_at=now, now=now
        )
        source = BusySource(
            practice=user.practice,
            owner=user,
            calendar=calendar,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            attempted_at=now,
            busy_count=count,
            **fields,
        )
        source.full_clean()
        source.save()
        transaction.on_commit(
            partial(busy_read_request, [source.pk], run_after=now + READ_EVERY)
        )
    return source


def busy_source_add_ics(
    *,
    user: User,
    url: str,
    name: str = "",
    now: datetime | None = None,
    session=None,
) -> BusySource:
    """Read a secret iCalendar address once and, if it gave a calendar, keep it as
    a source of the user's busy time (the address encrypted). Nothing is saved
    when the address is refused or does not give a calendar."""
    now = now or timezone.now()
    _may_add(user)
    url = url.strip()
    if not url:
        raise ValidationError(NO_ADDRESS)
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in ("https", "http", "webcal", "webcals"):
        raise ValidationError(BAD_SCHEME)
    if not crypto.configured():
        raise ValidationError(crypto.NO_KEY)
    fetched, parsed = _first_read(
        lambda window: ics_fetch(ics_address(url), session=session),
        user=user,
        now=now,
    )
    return _save(
        user=user,
        name=name,
        parsed=parsed,
        fetched=fetched,
        now=now,
        kind=BusySource.Kind.ICS,
        secret_url=crypto.encrypt(ics_address(url)),
        address_hint=address_hint(url),
    )


def is_tend_calendar(account: CalendarAccount, calendar_url: str) -> bool:
    """Whether ``calendar_url`` is the calendar Tend pushes into in ``account``:
    never a source of busy time (its events are Tend's own)."""
    return bool(account.calendar_url) and same_resource(
        account.calendar_url, calendar_url
    )


def busy_source_add_caldav(
    *,
    user: User,
    calendar_url: str,
    name: str = "",
    now: datetime | None = None,
    client: CalDAVClient | None = None,
) -> BusySource:
    """Read a calendar of the user's connected account once and keep it as a
    source of busy time. Tend's own calendar there is refused."""
    now = now or timezone.now()
    _may_add(user)
    account = CalendarAccount.objects.filter(user=user).first()
    if account is None:
        raise ValidationError(NO_ACCOUNT)
    if is_tend_calendar(account, calendar_url):
        raise ValidationError(TEND_CALENDAR)
    if any(
        same_resource(known, calendar_url)
        for known in BusySource.objects.filter(owner=user, kind="caldav").values_list(
            "caldav_url", flat=True
        )
    ):
        raise ValidationError(ALREADY_READ)
    own_client = client is None
    if client is None:
        try:
            client = _account_client(account)
        except crypto.CredentialError as error:
            raise ValidationError(_sentence(str(error))) from None
    reader: CalDAVClient = client
    try:
        names = {info.url: info.name for info in reader.calendars(account.home_url)}
        chosen = next((url for url in names if same_resource(url, calendar_url)), None)
        if chosen is None:
            raise ValidationError(NOT_IN_ACCOUNT)
        fetched, parsed = _first_read(
            lambda window: caldav_fetch(
                reader,
                calendar_url=chosen,
                home_url=account.home_url,
                tag="",
                window=window,
            ),
            user=user,
            now=now,
        )
    except CalDAVError as error:
        raise ValidationError(_sentence(error.message), code=error.kind) from None
    finally:
        if own_client:
            reader.close()
    return _save(
        user=user,
        name=name or names[chosen] or "",
        parsed=parsed,
        fetched=fetched,
        now=now,
        kind=BusySource.Kind.CALDAV,
        account=account,
        caldav_url=chosen,
        address_hint=f"{account.get_provider_display()} · {names[chosen] or ''}"[
            :300
        ].rstrip(" ·"),
    )


def busy_source_remove(*, source: BusySource) -> None:
    """Forget the source, its calendar and every busy interval read from it."""
    BusyCalendar.objects.filter(pk=source.calendar_id).delete()


def busy_sources_owner_changed(user: User) -> None:
    """The owner was deactivated or their roles changed: no longer a clinician,
    their busy time goes at once and reading stops; a clinician again, their
    sources are read again."""
    sources = BusySource.objects.filter(owner=user)
    if not sources.exists():
        return
    if user.is_active and user.is_clinician and user.practice_id is not None:
        ids = list(sources.values_list("pk", flat=True))
        transaction.on_commit(partial(busy_read_request, ids))
    else:
        busy_times_clear(clinician_ids=[user.pk])
