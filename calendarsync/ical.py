"""Our own RFC 5545 writer for the feeds.

Why not build ``icalendar`` objects per request: a feed is re-read by every
subscribed device every few minutes, so each event is rendered once into bytes
(``render_event``, memoised on everything that can change its text) and a feed is
a concatenation of fragments. The ``VTIMEZONE`` comes from the tz database through
``zoneinfo`` (see ``render_timezone``); a feed with an event in a repeated hour has a
second one, for Etc/GMT (see ``event_zone``).

Every line ends in CRLF and is folded at 75 octets without splitting a UTF-8
character; TEXT values are stripped of control characters and escaped.
"""

import functools
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

CRLF = b"\r\n"
MAX_LINE_OCTETS = 75
PRODID = "-//Tend//Calendar sync 1.0//EN"
REFRESH = "PT1H"
CANCELLED_PREFIX = "Cancelled: "
TELEHEALTH = "Telehealth"
# A location name is published as is, except anything that looks like an address
# a meeting could be joined at.
URL_PATTERN = re.compile(r"\S*(?:://|www\.)\S*", re.IGNORECASE)
# Characters published as a look-alike, because some parsers misread them however they
# are escaped: node-ical reads the escaped backslash before an "n" (``C:\\new``) as a
# line break. A backslash is published as U+29F5 REVERSE SOLIDUS OPERATOR, which every
# parser reads back unchanged and which (unlike U+FF3C FULLWIDTH REVERSE SOLIDUS) no
# Unicode normalisation turns back into a backslash.
PUBLISHED_LOOKALIKES = str.maketrans({"\\": "\u29f5"})


def clean_text(value: str) -> str:
    """Text as it may appear in a feed: line breaks become newlines, tabs and other
    separators become spaces, every other control character is dropped, and the
    characters in ``PUBLISHED_LOOKALIKES`` (the backslash) become their look-alikes."""
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
    return "".join(out).translate(PUBLISHED_LOOKALIKES)


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


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """Everything a feed may say about one appointment, and nothing more."""

    uid: str
    sequence: int
    created_at: datetime
    updated_at: datetime
    start: datetime
    end: datetime
    cancelled: bool
    summary: str
    location: str


def event_summary(
    *, is_event: bool, title: str, initials: list[str], clinician_label: str | None
) -> str:
    """Initials of every patient (or an event's title), after the clinician's name
    in the practice-wide calendar."""
    if is_event:
        text = clean_text(title).strip() or "Event"
    else:
        text = " & ".join(initials) if initials else "Appointment"
    if clinician_label:
        text = f"{clinician_label}: {text}"
    # Trimmed as a whole: some parsers (libical) trim a value, others keep it.
    return clean_text(text).strip()


def event_location(*, name: str | None, is_telehealth: bool) -> str:
    if not name and not is_telehealth:
        return ""
    if is_telehealth:
        return TELEHEALTH
    return " ".join(URL_PATTERN.sub("", clean_text(name)).split())


@functools.lru_cache(maxsize=200_000)
def render_event(event: FeedEvent, zone_key: str) -> bytes:
    """The VEVENT of one appointment. Memoised on the whole event, so a change to
    any published field renders afresh and an unchanged one is never re-rendered."""
    zone = zoneinfo.ZoneInfo(event_zone(event.start, event.end, zone_key))
    summary = event.summary
    if event.cancelled:
        summary = CANCELLED_PREFIX + summary
    lines = [
        "BEGIN:VEVENT",
        f"UID:{event.uid}@tend",
        f"DTSTAMP:{utc_stamp(event.updated_at)}",
        zoned_property("DTSTART", event.start, zone),
        zoned_property("DTEND", event.end, zone),
        f"SEQUENCE:{event.sequence}",
        f"CREATED:{utc_stamp(event.created_at)}",
        f"LAST-MODIFIED:{utc_stamp(event.updated_at)}",
        f"STATUS:{'CANCELLED' if event.cancelled else 'CONFIRMED'}",
        f"SUMMARY:{escape_text(summary)}",
    ]
    if event.location:
        lines.append(f"LOCATION:{escape_text(event.location)}")
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


@dataclass(frozen=True, slots=True)
class RenderedCalendar:
    body: bytes
    event_count: int
    complete_until: date  # last local date for which the feed lists everything
    truncated: bool


def render_calendar(
    *,
    name: str,
    zone_key: str,
    events: list[FeedEvent],
    window_start: date,
    window_end: date,
    max_bytes: int,
) -> RenderedCalendar:
    """The whole feed. ``events`` must be ordered by start. When the feed would
    exceed ``max_bytes`` the farthest-future days are left out first, whole days at
    a time, and the description says up to which date the calendar is complete."""
    zone = zoneinfo.ZoneInfo(zone_key)
    last_day = window_end - timedelta(days=1)
    first_year = min(
        [window_start.year] + [e.start.astimezone(zone).year for e in events[:1]]
    )
    last_year = max(
        [last_day.year] + [e.end.astimezone(zone).year for e in events[-1:]]
    )
    timezone_bytes = render_timezone(zone_key, first_year, last_year)
    fragments = [render_event(event, zone_key) for event in events]
    if any(REPEATED_HOUR_MARK in fragment for fragment in fragments):
        timezone_bytes += render_timezone(REPEATED_HOUR_ZONE, first_year, last_year)

    def header_for(until: date, truncated: bool) -> bytes:
        description = (
            "Read-only copy of a Tend schedule; patient initials only. "
            f"Complete from {window_start.isoformat()} to {until.isoformat()}."
        )
        if truncated:
            description += (
                " Later appointments are left out to keep this calendar small enough"
                " for every calendar application; see Tend for them."
            )
        return render_header(CalendarHeader(name, zone_key, description))

    header = header_for(last_day, False)
    total = len(header) + len(timezone_bytes) + sum(map(len, fragments)) + len(FOOTER)
    if total <= max_bytes:
        body = b"".join([header, timezone_bytes, *fragments, FOOTER])
        return RenderedCalendar(body, len(fragments), last_day, False)

    # Too large: keep whole days from the start of the window while they fit.
    header = header_for(last_day, True)  # same length as any truncated header
    budget = max_bytes - len(header) - len(timezone_bytes) - len(FOOTER)
    kept = 0
    used = 0
    for index, fragment in enumerate(fragments):
        if used + len(fragment) > budget:
            break
        used += len(fragment)
        kept = index + 1
    # Drop the partly kept day, so every listed day is complete.
    if kept < len(events):
        first_dropped_day = events[kept].start.astimezone(zone).date()
        while (
            kept and events[kept - 1].start.astimezone(zone).date() >= first_dropped_day
        ):
            kept -= 1
        until = first_dropped_day - timedelta(days=1)
    else:
        until = last_day
    header = header_for(until, True)
    body = b"".join([header, timezone_bytes, *fragments[:kept], FOOTER])
    return RenderedCalendar(body, kept, until, True)
