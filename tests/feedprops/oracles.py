"""What the feed property tests check a feed against, independently of the code
that writes it: which properties may appear where, how a typed text should look on a
calendar, and a line-by-line reading of a feed's structure."""

import re
import unicodedata

import icalendar
from django.db import connection

# What a feed may contain, per component. Anything else is something nobody put there.
ALLOWED_PROPERTIES = {
    "VCALENDAR": {
        "VERSION",
        "PRODID",
        "CALSCALE",
        "METHOD",
        "NAME",
        "X-WR-CALNAME",
        "DESCRIPTION",
        "X-WR-CALDESC",
        "X-WR-TIMEZONE",
        "REFRESH-INTERVAL",
        "X-PUBLISHED-TTL",
    },
    "VTIMEZONE": {"TZID"},
    "STANDARD": {"DTSTART", "TZOFFSETFROM", "TZOFFSETTO", "TZNAME"},
    "DAYLIGHT": {"DTSTART", "TZOFFSETFROM", "TZOFFSETTO", "TZNAME"},
    "VEVENT": {
        "UID",
        "DTSTAMP",
        "DTSTART",
        "DTEND",
        "SEQUENCE",
        "CREATED",
        "LAST-MODIFIED",
        "STATUS",
        "SUMMARY",
        "LOCATION",
        "TRANSP",
    },
}
# Where each component may appear.
ALLOWED_PARENTS = {
    "VCALENDAR": None,
    "VTIMEZONE": "VCALENDAR",
    "VEVENT": "VCALENDAR",
    "STANDARD": "VTIMEZONE",
    "DAYLIGHT": "VTIMEZONE",
}
NAME = re.compile(r"[A-Za-z0-9-]+")


def storable(text: str) -> str:
    """PostgreSQL cannot store NUL in text at all; everything else goes in as is."""
    if connection.vendor == "postgresql":
        return text.replace("\x00", "")
    return text


# Removed wherever they appear: bidirectional controls can disguise text.
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def visible_text(value: str) -> str:
    """What a person typed, as a calendar should show it: on one line (line
    breaks, tabs and other white space as single spaces, none at either end),
    every other control character (C0, DEL, C1), bidirectional control, BOM and
    the non-characters U+FFFE/U+FFFF dropped, and a backslash shown as U+29F5
    REVERSE SOLIDUS OPERATOR (node-ical misreads an escaped backslash)."""
    kept = []
    for char in value:
        if char in BIDI or char in "\ufeff\ufffe\uffff":
            continue
        if char == "\\":
            kept.append("\u29f5")
        elif char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cs"):
            continue
        else:
            kept.append(char)
    text = " ".join("".join(kept).split())
    # node-ical drops double quotes around a whole value: typographic ones instead.
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        text = "\u201c" + text[1:-1] + "\u201d"
    return text


def structure(body: bytes) -> list[tuple[str, list[str]]]:
    """Read the feed line by line, independently of any iCalendar library:
    [(component path, [property names])] in order. Raises on anything malformed
    (unbalanced BEGIN/END, a component where it may not be, an unnamed line)."""
    text = body.decode("utf-8")
    assert text.endswith("\r\n")
    unfolded = re.sub(r"\r\n[ \t]", "", text)
    stack: list[str] = []
    found: list[tuple[str, list[str]]] = []
    current: dict[tuple, list[str]] = {}
    for line in unfolded.split("\r\n")[:-1]:
        match = NAME.match(line)
        assert match and line[match.end() : match.end() + 1] in (":", ";"), line
        name = match.group().upper()
        if name in ("BEGIN", "END"):
            component = line.split(":", 1)[1].upper()
            if name == "BEGIN":
                parent = stack[-1] if stack else None
                assert component in ALLOWED_PARENTS, f"unknown component {component}"
                assert ALLOWED_PARENTS[component] == parent, (
                    f"{component} inside {parent}"
                )
                stack.append(component)
                current[tuple(stack)] = []
            else:
                assert stack and stack[-1] == component, f"END:{component} unmatched"
                found.append(("/".join(stack), current.pop(tuple(stack))))
                stack.pop()
            continue
        assert stack, f"property outside any component: {line[:60]!r}"
        current[tuple(stack)].append(name)
    assert not stack, f"unclosed {stack}"
    assert [path for path, _ in found].count("VCALENDAR") == 1
    return found


def assert_only_expected_properties(body: bytes, *, events: int) -> None:
    """One VCALENDAR, the practice zone's VTIMEZONE with observances (and Etc/GMT's,
    for events in a repeated hour), ``events`` VEVENTs, each with only the properties
    we write, none of them twice."""
    components = structure(body)
    counts: dict[str, int] = {}
    for path, names in components:
        kind = path.rsplit("/", 1)[-1]
        counts[kind] = counts.get(kind, 0) + 1
        extra = set(names) - ALLOWED_PROPERTIES[kind]
        assert not extra, f"{path} gained {sorted(extra)}"
        repeated = {name for name in names if names.count(name) > 1}
        assert not repeated, f"{path} repeats {sorted(repeated)}"
        if kind == "VEVENT":
            required = ALLOWED_PROPERTIES["VEVENT"] - {"LOCATION"}
            assert required <= set(names), f"VEVENT lacks {required - set(names)}"
    assert counts.get("VTIMEZONE") in (1, 2), counts
    if counts["VTIMEZONE"] == 2:
        assert b"\r\nTZID:Etc/GMT\r\n" in body
    assert counts.get("STANDARD", 0) + counts.get("DAYLIGHT", 0) >= 1
    assert counts.get("VEVENT", 0) == events, counts


def unescape(raw: str) -> str:
    """A TEXT value that icalendar leaves escaped (NAME and X-WR-*)."""
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], raw)


def calendar_text(calendar: icalendar.Calendar, name: str) -> str:
    value = calendar[name]
    raw = value.to_ical().decode() if hasattr(value, "to_ical") else str(value)
    return unescape(raw)
