"""Our own RFC 5545 writer for the feeds.

Why not build ``icalendar`` objects per request: a feed is re-read by every
subscribed device every few minutes, so each event is rendered once into bytes
(``render_event``, memoised on everything that can change its text) and a feed is
a concatenation of fragments. The ``VTIMEZONE`` comes from the tz database through
``zoneinfo`` (see ``render_timezone``); a feed with an event in a repeated hour has a
second one, for Etc/GMT (see ``event_zone``).

What the text says is ``scheduling.publication``'s; this module only escapes it.
Every line ends in CRLF and is folded at 75 octets without splitting a UTF-8
character; TEXT values are stripped of control characters and escaped.
"""

import functools
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from calendarsync.tokens import BUSY_UID_HEX
from scheduling.publication import PublishedAppointment

CRLF = b"\r\n"
MAX_LINE_OCTETS = 75
PRODID = "-//Tend//Calendar sync 1.0//EN"
REFRESH = "PT1H"
# Every UID Tend writes ends in one of these. An appointment's own UID (personal,
# clinician and practice-wide feeds, and pushed events) is its uuid with
# ``TEND_UID_SUFFIX``; a busy-only block's is ``BUSY_UID_HEX`` hex digits of an
# HMAC of that uuid under the feed key (``tokens.busy_uid_stem``) with
# ``BUSY_UID_SUFFIX``, so nothing links it to the appointment's own UID.
TEND_UID_SUFFIX = "@tend"
BUSY_UID_SUFFIX = "@busy.tend"
TEND_UID = re.compile(
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}@tend"
    rf"|[0-9a-f]{{{BUSY_UID_HEX}}}@busy\.tend)",
    re.IGNORECASE,
)


def is_tend_uid(uid: str) -> bool:
    """Whether ``uid`` is one Tend writes: an appointment's in a feed or a pushed
    event (``<uuid>@tend``), or a busy-only block's (``<32 hex>@busy.tend``).
    Surrounding white space and letter case are ignored, as some servers change
    them."""
    return bool(TEND_UID.fullmatch((uid or "").strip()))


def event_uid(event: PublishedAppointment) -> str:
    """The UID an event is written with (see ``TEND_UID_SUFFIX``)."""
    return event.uid + (BUSY_UID_SUFFIX if event.busy else TEND_UID_SUFFIX)


def clean_text(value: str) -> str:
    """Text as it may appear in a feed: line breaks become newlines, tabs and other
    separators become spaces, every other control character is dropped."""
    value = (value or "").replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for char in value:
        if char == "\n":
            out.append(char)
            continue
        category = unicodedata.category(char)
        if char == "\t" or category in ("Zl", "Zp"):
            out.append(" ")
        elif category in ("Cc", "Cs") or char in "\ufeff\ufffe\uffff":
            continue
        else:
            out.append(char)
    return "".join(out)


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): cleaned, then \\ ; , and newline escaped."""
    return (
        clean_text(value)
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\n", "\\n")
    )


def fold(line: str) -> bytes:
    """One content line, CRLF-terminated, folded at 75 octets between characters."""
    encoded = line.encode("utf-8")
    if len(encoded) <= MAX_LINE_OCTETS:
        return encoded + CRLF
    parts = []
    current = bytearray()
    limit = MAX_LINE_OCTETS
    for char in line:
        char_bytes = char.encode("utf-8")
        if len(current) + len(char_bytes) > limit:
            parts.append(bytes(current))
            current = bytearray()
            limit = MAX_LINE_OCTETS - 1  # continuation lines start with a space
        current += char_bytes
    parts.append(bytes(current))
    return (CRLF + b" ").join(parts) + CRLF


def utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# The zone of an event that starts or ends in a repeated hour (see event_zone).
REPEATED_HOUR_ZONE = "Etc/GMT"
# How a rendered event shows it uses that zone (a DTSTART line, never text).
REPEATED_HOUR_MARK = f"\r\nDTSTART;TZID={REPEATED_HOUR_ZONE}:".encode()


def occurs_twice(moment: datetime, zone: zoneinfo.ZoneInfo) -> bool:
    """Whether the wall time of ``moment`` in ``zone`` happens twice (the hour, or
    half hour, repeated when summer time ends)."""
    local = moment.astimezone(zone)
    return bool(local.fold) or local.replace(fold=1).utcoffset() != local.utcoffset()


def event_zone(start: datetime, end: datetime, zone_key: str) -> str:
    """The zone an event's DTSTART and DTEND are both written in: the practice's,
    unless either wall time occurs twice there. A TZID time in the repeated hour is
    read as its first occurrence, and a UTC time is no better: readers that apply
    X-WR-TIMEZONE to UTC times as Google Calendar does (x-wr-timezone) move it into
    the practice's zone and then lose which occurrence it was, since Python's datetime
    arithmetic drops it (recurring-ical-events read such times an hour early, 30
    minutes early in Lord Howe). Such an event is written in Etc/GMT instead, with
    its own VTIMEZONE: no wall time repeats there, X-WR-TIMEZONE leaves TZID times
    alone, and with both ends in one fixed zone the length is exact too."""
    zone = zoneinfo.ZoneInfo(zone_key)
    if occurs_twice(start, zone) or occurs_twice(end, zone):
        return REPEATED_HOUR_ZONE
    return zone_key


def zoned_property(name: str, moment: datetime, zone: zoneinfo.ZoneInfo) -> str:
    """DTSTART/DTEND as a wall time in ``zone`` (see ``event_zone`` for which)."""
    local = moment.astimezone(zone)
    return f"{name};TZID={zone.key}:{local.strftime('%Y%m%dT%H%M%S')}"


@functools.lru_cache(maxsize=200_000)
def render_event(event: PublishedAppointment, zone_key: str) -> bytes:
    """The VEVENT of one appointment. Memoised on the whole event, so a change to
    any published field renders afresh and an unchanged one is never re-rendered.
    A busy-only block is marked private as well (CLASS:PRIVATE), so a calendar it
    is shared on from there shows no more than that time is taken."""
    zone = zoneinfo.ZoneInfo(event_zone(event.start, event.end, zone_key))
    lines = [
        "BEGIN:VEVENT",
        f"UID:{event_uid(event)}",
        f"DTSTAMP:{utc_stamp(event.changed_at)}",
        zoned_property("DTSTART", event.start, zone),
        zoned_property("DTEND", event.end, zone),
        f"SEQUENCE:{event.sequence}",
        f"CREATED:{utc_stamp(event.created_at)}",
        f"LAST-MODIFIED:{utc_stamp(event.changed_at)}",
        f"STATUS:{'CANCELLED' if event.cancelled else 'CONFIRMED'}",
        f"SUMMARY:{escape_text(event.summary)}",
    ]
    if event.location:
        lines.append(f"LOCATION:{escape_text(event.location)}")
    if event.busy:
        lines.append("CLASS:PRIVATE")
    lines.append(f"TRANSP:{'TRANSPARENT' if event.cancelled else 'OPAQUE'}")
    lines.append("END:VEVENT")
    return b"".join(fold(line) for line in lines)


def _offset(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{seconds:02d}" if seconds else "")


def _state(zone: zoneinfo.ZoneInfo, moment: datetime) -> tuple:
    local = moment.astimezone(zone)
    return local.utcoffset(), local.dst(), local.tzname()


def zone_transitions(
    zone: zoneinfo.ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """Every instant in [start, end) at which the zone's offset or name changes."""
    found = []
    day = timedelta(days=1)
    moment = start
    while moment < end:
        following = min(moment + day, end)
        if _state(zone, moment) != _state(zone, following):
            low, high = moment, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if _state(zone, middle) == _state(zone, low):
                    low = middle
                else:
                    high = middle
            found.append(high.replace(microsecond=0))
        moment = following
    return found


@functools.lru_cache(maxsize=256)
def render_timezone(zone_key: str, first_year: int, last_year: int) -> bytes:
    """The VTIMEZONE for the zone from 1 January of ``first_year`` to the end of
    ``last_year``: one observance per actual change, each with a plain DTSTART.

    Why not RRULE/RDATE observances (as generic generators write them): parsers
    disagree about them (ical.js read an RDATE-based zone an hour off for whole
    months), while a list of dated changes reads the same everywhere. Depends only
    on its arguments, so it is byte-identical on every fetch."""
    zone = zoneinfo.ZoneInfo(zone_key)
    start = datetime(first_year, 1, 1, tzinfo=zone).astimezone(UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=zone).astimezone(UTC)
    offset, dst, name = _state(zone, start)
    lines = ["BEGIN:VTIMEZONE", f"TZID:{zone_key}"]

    def observance(moment: datetime, before: timedelta) -> None:
        after, after_dst, after_name = _state(zone, moment)
        kind = "DAYLIGHT" if after_dst and after_dst > timedelta(0) else "STANDARD"
        wall = (moment + before).replace(tzinfo=None)
        lines.extend(
            [
                f"BEGIN:{kind}",
                f"DTSTART:{wall.strftime('%Y%m%dT%H%M%S')}",
                f"TZOFFSETFROM:{_offset(before)}",
                f"TZOFFSETTO:{_offset(after)}",
                *([f"TZNAME:{escape_text(after_name)}"] if after_name else []),
                f"END:{kind}",
            ]
        )

    observance(start, offset)
    previous = offset
    for moment in zone_transitions(zone, start, end):
        observance(moment, previous)
        previous = _state(zone, moment)[0]
    lines.append("END:VTIMEZONE")
    return b"".join(fold(line) for line in lines)


@dataclass(frozen=True, slots=True)
class CalendarHeader:
    name: str
    zone_key: str
    description: str


def render_header(header: CalendarHeader) -> bytes:
    name = escape_text(clean_text(header.name).strip())
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"NAME:{name}",
        f"X-WR-CALNAME:{name}",
        f"DESCRIPTION:{escape_text(header.description)}",
        f"X-WR-CALDESC:{escape_text(header.description)}",
        f"X-WR-TIMEZONE:{header.zone_key}",
        f"REFRESH-INTERVAL;VALUE=DURATION:{REFRESH}",
        f"X-PUBLISHED-TTL:{REFRESH}",
    ]
    return b"".join(fold(line) for line in lines)


FOOTER = fold("END:VCALENDAR")


def render_calendar(
    *,
    name: str,
    zone_key: str,
    fragments: list[bytes],
    years: tuple[int, int],
    complete: tuple[date, date],
    truncated: bool,
    busy: bool = False,
) -> bytes:
    """The whole feed: its header, the zone for ``years`` (and Etc/GMT when an event
    needs it, see ``event_zone``), the rendered events and the footer. The
    description says between which dates it lists everything (and, ``busy``, that
    it shows busy times only)."""
    zones = [render_timezone(zone_key, *years)]
    if any(REPEATED_HOUR_MARK in fragment for fragment in fragments):
        zones.append(render_timezone(REPEATED_HOUR_ZONE, *years))
    return b"".join(
        [
            calendar_header(name, zone_key, complete, truncated, busy=busy),
            *zones,
            *fragments,
            FOOTER,
        ]
    )


BUSY_DESCRIPTION = "Busy times only, without any detail."
SCHEDULE_DESCRIPTION = "Read-only copy of a Tend schedule; patient initials only."


def calendar_header(
    name: str,
    zone_key: str,
    complete: tuple[date, date],
    truncated: bool,
    *,
    busy: bool = False,
) -> bytes:
    """The calendar's header (its length does not depend on the dates)."""
    first, last = complete
    description = (
        f"{BUSY_DESCRIPTION if busy else SCHEDULE_DESCRIPTION} "
        f"Complete from {first.isoformat()} to {last.isoformat()}."
    )
    if truncated:
        description += (
            " Days further from today are left out to keep this calendar"
            " small enough for every calendar application."
            if busy
            else " Appointments further from today are left out to keep this"
            " calendar small enough for every calendar application; see Tend for"
            " them."
        )
    return render_header(CalendarHeader(name, zone_key, description))


def render_resource(event: PublishedAppointment, zone_key: str) -> bytes:
    """One appointment as a CalDAV calendar object resource (RFC 4791 4.1): a
    VCALENDAR with the one VEVENT the feeds carry for it (``render_event``) and
    the zones it names, and no METHOD (not allowed in a stored resource)."""
    fragment = render_event(event, zone_key)
    years = (event.start.year - 1, max(event.end.year, event.start.year))
    zones = [render_timezone(zone_key, *years)]
    if REPEATED_HOUR_MARK in fragment:
        zones.append(render_timezone(REPEATED_HOUR_ZONE, *years))
    header = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
    ]
    return b"".join([*(fold(line) for line in header), *zones, fragment, FOOTER])
