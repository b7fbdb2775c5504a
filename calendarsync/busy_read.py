"""Reading a personal calendar as busy time: fetching it (a secret iCalendar
address, or a calendar of the owner's CalDAV account) and turning it into busy
intervals. No database here: ``calendarsync.busy_sources`` stores the outcome.

What is taken from an event: its start and end, whether it is tentative, and
whether it counts at all. Titles, places, attendees and descriptions are never
copied anywhere, not even into an error message.

- Recurrences are expanded by recurring-ical-events (RRULE, RDATE, EXDATE,
  RECURRENCE-ID overrides); ``X-WR-TIMEZONE`` calendars are made standard first
  (x-wr-timezone), Windows zone names in TZID are understood by icalendar, and a
  time whose zone is unknown or missing is read in the practice's zone, like a
  floating time.
- An all-day event is busy from midnight to midnight in the practice's zone.
- Skipped: TRANSP:TRANSPARENT ("free"), STATUS:CANCELLED, Outlook's
  X-MICROSOFT-CDO-BUSYSTATUS:FREE, and every event Tend wrote itself (its UID,
  ``ical.is_tend_uid``), which SCHEDULING shows already.
- STATUS:TENTATIVE (or Outlook's TENTATIVE busy status) is tentative.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

import icalendar
import recurring_ical_events
import x_wr_timezone
from recurring_ical_events.adapters.event import EventAdapter
from recurring_ical_events.selection.name import ComponentsWithName

from calendarsync import outbound
from calendarsync.caldav_client import CalDAVClient, CalDAVError, same_resource
from calendarsync.ical import is_tend_uid
from scheduling.busy_services import BusyInterval

USER_AGENT = "Tend busy time"
ICAL_ACCEPT = "text/calendar, text/plain;q=0.5, */*;q=0.1"

NOT_A_CALENDAR = (
    "the address answered with something that is not a calendar — check that it "
    "is the calendar's secret iCal address, not the page that shows it"
)
NOT_FOUND = "{status} — the address may have been reset: copy the new one"
REFUSED = (
    "{status} — the calendar refused Tend: use the secret or public address, not "
    "one that needs signing in"
)
SERVER_ERROR = "the calendar server answered with an error ({status})"
UNEXPECTED = "the calendar server gave an answer Tend did not expect ({status})"
NO_ACCOUNT = (
    "the calendar account was disconnected — connect it again, or remove this calendar"
)
NOT_IN_ACCOUNT = "the calendar is no longer in your calendar account"


class BusyReadError(Exception):
    """A read that gave no usable calendar. ``message`` follows "Failing since
    09:10: " and never quotes the calendar or its address."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Fetched:
    """One read: ``bodies`` None when the calendar is unchanged since the last
    good read (a 304, the same ctag); otherwise one or more iCalendar texts."""

    bodies: list[bytes] | None
    etag: str = ""
    last_modified: str = ""


@dataclass(frozen=True)
class ParsedCalendar:
    name: str  # X-WR-CALNAME, "" when none
    intervals: list[BusyInterval]


# -- addresses -------------------------------------------------------------------------


def ics_address(url: str) -> str:
    """The address as Tend reads it: ``webcal://`` and ``webcals://`` are read over
    https; anything else is left for the outbound rules to judge."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("webcal", "webcals"):
        return f"https://{rest}"
    return url


def address_hint(url: str) -> str:
    """What may be shown of a secret address: its host and an ellipsis."""
    rest = ics_address(url).partition("://")[2]
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{host}/…" if host else "…"


# -- fetching --------------------------------------------------------------------------


def _lower(message: str) -> str:
    return (message[0].lower() + message[1:]).rstrip(".")


def _status_error(status: int) -> BusyReadError:
    if status in (404, 410):
        return BusyReadError("not_found", NOT_FOUND.format(status=status))
    if status in (401, 403):
        return BusyReadError("auth", REFUSED.format(status=status))
    if status >= 500:
        return BusyReadError("server", SERVER_ERROR.format(status=status))
    return BusyReadError("protocol", UNEXPECTED.format(status=status))


def ics_fetch(
    url: str,
    *,
    etag: str = "",
    last_modified: str = "",
    session: outbound.Session | None = None,
) -> Fetched:
    """Read a calendar address under the outbound rules, conditionally when an
    ETag or Last-Modified of the last good read is known."""
    headers = {"User-Agent": USER_AGENT, "Accept": ICAL_ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    own_session = session is None
    session = session or outbound.Session()
    try:
        response = session.request("GET", ics_address(url), headers=headers)
    except outbound.OutboundError as error:
        raise BusyReadError(error.kind, _lower(error.message)) from None
    finally:
        if own_session:
            session.close()
    if response.status == 304 and (etag or last_modified):
        return Fetched(None, etag, last_modified)
    if response.status != 200:
        raise _status_error(response.status)
    return Fetched(
        [response.body],
        etag=response.header("etag")[:300],
        last_modified=response.header("last-modified")[:100],
    )


def caldav_fetch(
    client: CalDAVClient,
    *,
    calendar_url: str,
    home_url: str,
    tag: str,
    window: tuple[datetime, datetime],
) -> Fetched:
    """Read a calendar of a CalDAV account: its ctag (or sync token) first, and the
    events of ``window`` only when that changed since ``tag``."""
    try:
        info = next(
            (
                info
                for info in client.calendars(home_url)
                if same_resource(info.url, calendar_url)
            ),
            None,
        )
        if info is None:
            raise BusyReadError("not_found", NOT_IN_ACCOUNT)
        current = info.ctag or info.sync_token
        if current and current == tag:
            return Fetched(None, tag)
        start, end = (moment.astimezone(zoneinfo.ZoneInfo("UTC")) for moment in window)
        bodies = client.calendar_query(
            calendar_url, f"{start:%Y%m%dT%H%M%SZ}", f"{end:%Y%m%dT%H%M%SZ}"
        )
    except CalDAVError as error:
        raise BusyReadError(error.kind, error.message) from None
    return Fetched(bodies, current[:300])


# -- parsing ---------------------------------------------------------------------------

# What is read of an event: when it is, how it repeats, and whether it is busy.
EVENT_PROPERTIES = frozenset(
    {
        "UID",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "EXRULE",
        "RECURRENCE-ID",
        "SEQUENCE",
        "STATUS",
        "TRANSP",
        "X-MICROSOFT-CDO-BUSYSTATUS",
    }
)
# Said by most events, and what an event means without them: not worth parsing.
DEFAULTS = frozenset({"STATUS:CONFIRMED", "TRANSP:OPAQUE"})
CALENDAR_PROPERTIES = frozenset(
    {"VERSION", "PRODID", "CALSCALE", "X-WR-CALNAME", "X-WR-TIMEZONE"}
)
# Components read: the calendar, its events, and the time zones they name.
COMPONENTS = frozenset({"VCALENDAR", "VEVENT", "VTIMEZONE", "STANDARD", "DAYLIGHT"})
FOLD = re.compile(r"\r?\n[ \t]")
NAME_END = re.compile(r"[;:]")


def _outside(event: list[str], days: tuple[str, str]) -> bool:
    """Whether a single event (no recurrence) lies wholly outside ``days``
    (``YYYYMMDD`` strings, wide enough that no zone can move it in), read from
    its lines alone: such an event is dropped before parsing. Anything unsure
    is kept."""
    values = {}
    for line in event:
        name, _, value = line.partition(":")
        key = name.split(";", 1)[0].upper()
        if key in ("RRULE", "RDATE", "RECURRENCE-ID"):
            return False
        values[key] = value.strip()[:8]
    start = values.get("DTSTART", "")
    if len(start) != 8 or not start.isdigit():
        return False
    if start > days[1]:
        return True
    end = values.get("DTEND", "" if "DURATION" in values else start)
    return len(end) == 8 and end.isdigit() and end < days[0]


def busy_lines(data: bytes, *, days: tuple[str, str] | None = None) -> bytes:
    """The calendar with everything but the properties above left out (titles,
    places, attendees, descriptions, alarms, to-dos…), before it is parsed: what
    is never read cannot leak, and the parser has a fraction of the work. With
    ``days``, single events wholly outside them are left out too (an exported
    calendar holds years of past events)."""
    text = FOLD.sub("", data.decode("utf-8", "replace"))
    kept: list[str] = []
    stack: list[str] = []
    event: list[str] | None = None  # the lines of the event being read
    skipping = 0  # depth inside a component that is left out
    for line in text.splitlines():
        if not line:
            continue
        match = NAME_END.search(line)
        name = (line[: match.start()] if match else line).upper()
        if name == "BEGIN":
            component = line[6:].strip().upper()
            if skipping or component not in COMPONENTS:
                skipping += 1
                continue
            stack.append(component)
            if component == "VEVENT":
                event = [line]
            else:
                kept.append(line)
            continue
        if name == "END":
            if skipping:
                skipping -= 1
                continue
            if stack and stack.pop() == "VEVENT" and event is not None:
                event.append(line)
                if days is None or not _outside(event, days):
                    kept.extend(event)
                event = None
            else:
                kept.append(line)
            continue
        if skipping or not stack:
            continue
        where = stack[-1]
        if where == "VEVENT":
            if (
                name in EVENT_PROPERTIES
                and event is not None
                and line.upper() not in DEFAULTS
            ):
                event.append(line)
        elif (where == "VCALENDAR" and name in CALENDAR_PROPERTIES) or where in (
            "VTIMEZONE",
            "STANDARD",
            "DAYLIGHT",
        ):
            kept.append(line)
    return ("\r\n".join(kept) + "\r\n").encode()


def parse_calendar(
    data: bytes, *, days: tuple[str, str] | None = None
) -> icalendar.Calendar:
    """The VCALENDAR in ``data`` (only what busy time needs; with ``days``, only
    single events that may fall in them), or BusyReadError: an empty answer, an
    HTML page or anything else that is not a calendar is a failure, never an
    empty one."""
    text = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text[:15].upper().startswith(b"BEGIN:VCALENDAR"):
        raise BusyReadError("not_calendar", NOT_A_CALENDAR)
    try:
        calendar = icalendar.Calendar.from_ical(busy_lines(text, days=days))
    except (ValueError, IndexError, KeyError):
        raise BusyReadError("not_calendar", NOT_A_CALENDAR) from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise BusyReadError("not_calendar", NOT_A_CALENDAR)
    return calendar


def calendar_name(calendar: icalendar.Calendar) -> str:
    """The name the calendar gives itself (X-WR-CALNAME), "" when none."""
    name = calendar.get("X-WR-CALNAME")
    return " ".join(str(name).split())[:120] if name else ""


def _counts(event: icalendar.Event) -> bool:
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return False
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return False
    if str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper() == "FREE":
        return False
    return not is_tend_uid(str(event.get("UID", "")))


def _tentative(event: icalendar.Event) -> bool:
    return (
        str(event.get("STATUS", "")).upper() == "TENTATIVE"
        or str(event.get("X-MICROSOFT-CDO-BUSYSTATUS", "")).upper() == "TENTATIVE"
    )


def _moment(value: date | datetime, zone: tzinfo) -> datetime:
    """An aware datetime: a date is midnight in ``zone``, a floating time (or one
    whose zone is unknown) is read in ``zone``."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), zone)
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=zone)
    return value


def _end(event: icalendar.Event, start: date | datetime) -> date | datetime:
    end = event.DTEND
    if end is not None:
        return end
    duration = event.DURATION
    if duration is not None:
        return start + duration
    # RFC 5545 3.6.1: a day's event without an end lasts the day; a timed one
    # without an end or duration takes no time.
    return start if isinstance(start, datetime) else start + timedelta(days=1)


def _calendar_zone(calendar: icalendar.Calendar) -> zoneinfo.ZoneInfo | None:
    """The zone a calendar says its floating times are in (X-WR-TIMEZONE)."""
    name = str(calendar.get("X-WR-TIMEZONE", "")).strip()
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return None


def _split(
    calendar: icalendar.Calendar,
) -> tuple[list[icalendar.Event], icalendar.Calendar | None]:
    """The calendar's single events (no RRULE or RDATE, no other component with
    their UID), and a calendar of the rest (series and their changed
    occurrences, with the time zones) for recurring-ical-events; None when there
    is no series."""
    by_uid: dict[str, list[icalendar.Event]] = {}
    timezones = []
    for component in calendar.subcomponents:
        if isinstance(component, icalendar.Event):
            by_uid.setdefault(str(component.get("UID", "")), []).append(component)
        elif component.name == "VTIMEZONE":
            timezones.append(component)
    singles: list[icalendar.Event] = []
    recurring: list[icalendar.Event] = []
    for uid, events in by_uid.items():
        if (
            uid
            and len(events) == 1
            and not any(
                name in events[0] for name in ("RRULE", "RDATE", "RECURRENCE-ID")
            )
        ):
            singles.append(events[0])
        else:
            recurring.extend(events)
    if not recurring:
        return singles, None
    series = icalendar.Calendar()
    for name, value in calendar.items():
        series.add(name, value)
    series.subcomponents = [*timezones, *recurring]
    try:
        # A Google calendar's series written in UTC repeat in its X-WR-TIMEZONE,
        # so a weekly 9:00 stays at 9:00 across a clock change.
        series = x_wr_timezone.to_standard(series)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        pass
    return singles, series


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One time an event happens: its start and end as written, and the event
    it comes from (the series, or the changed occurrence that replaced it)."""

    start: date | datetime
    end: date | datetime
    event: icalendar.Event


class _EventAdapter(EventAdapter):
    @property
    def event(self) -> icalendar.Event:
        return self._component


class _Occurrence(recurring_ical_events.Occurrence):
    """An occurrence as start, end and its event, without the copy of the event
    recurring-ical-events makes for each one by default (most of its time on a
    calendar of thousands of occurrences)."""

    def as_component(self, keep_recurrence_attributes: bool) -> Occurrence:  # noqa: FBT001
        return Occurrence(self.start, self.end, self._adapter.event)


# recurring-ical-events' extension point for what its queries return.
OCCURRENCES = ComponentsWithName(
    "VEVENT", adapter=_EventAdapter, occurrence=_Occurrence
)


def _occurrences(
    calendar: icalendar.Calendar, *, first: date, last: date
) -> list[Occurrence]:
    """Every occurrence of the calendar's events from ``first`` to ``last``."""
    singles, series = _split(calendar)
    found = []
    for event in singles:
        start = event.DTSTART
        if start is not None:
            found.append(Occurrence(start, _end(event, start), event))
    if series is not None:
        found.extend(
            recurring_ical_events.of(
                series, components=[OCCURRENCES], skip_bad_series=True
            ).between(first, last)
        )
    return found


def busy_intervals(
    calendars: list[icalendar.Calendar],
    *,
    zone: zoneinfo.ZoneInfo,
    window: tuple[datetime, datetime],
) -> list[BusyInterval]:
    """The busy intervals of the calendars' events overlapping ``window`` (not yet
    merged; ``scheduling.busy_services`` merges and clips). Single events are read
    directly; series are expanded by recurring-ical-events."""
    window_start, window_end = window
    # A day either side, so floating and all-day events near the edges are seen
    # whatever zone the library compares them in; clipped exactly afterwards.
    first = window_start.astimezone(zone).date() - timedelta(days=1)
    last = window_end.astimezone(zone).date() + timedelta(days=1)
    found: list[BusyInterval] = []
    for calendar in calendars:
        # Floating times: in the calendar's own zone if it names one, else the
        # practice's.
        floating = _calendar_zone(calendar) or zone
        for occurrence in _occurrences(calendar, first=first, last=last):
            if not _counts(occurrence.event):
                continue
            try:
                start = _moment(occurrence.start, floating)
                end = _moment(occurrence.end, floating)
            except (TypeError, ValueError):
                continue  # an event whose times make no sense: not busy
            if end <= start or end <= window_start or start >= window_end:
                continue
            found.append(BusyInterval(start, end, _tentative(occurrence.event)))
    return found


def read_busy(
    bodies: list[bytes],
    *,
    zone: zoneinfo.ZoneInfo,
    window: tuple[datetime, datetime],
) -> ParsedCalendar:
    """Parse every body (each must be a calendar) and expand it into busy
    intervals; the name is the first body's X-WR-CALNAME."""
    # Two days' margin either side: no zone moves an event further.
    first = window[0].astimezone(zone).date() - timedelta(days=2)
    last = window[1].astimezone(zone).date() + timedelta(days=2)
    days = (f"{first:%Y%m%d}", f"{last:%Y%m%d}")
    calendars = [parse_calendar(body, days=days) for body in bodies]
    name = calendar_name(calendars[0]) if calendars else ""
    return ParsedCalendar(name, busy_intervals(calendars, zone=zone, window=window))
