"""The feed writer (calendarsync.ical) on the cases real parsers disagree about most:
wall times that happen twice or never on a clock-change day, and text with
backslashes. Every parser must read each one cleanly and identically, and the instants
are written out by hand in UTC so the test does not lean on the zone database."""

from datetime import UTC, datetime

import pytest

from tests.conformance.harness import (
    assert_all_parsers_agree,
    assert_byte_level_ok,
    assert_feed_structure_ok,
)
from tests.conformance.samples import SampleEvent, feed_bytes, feed_expected

pytestmark = pytest.mark.conformance


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def session(uid: str, start: datetime, end: datetime) -> SampleEvent:
    return SampleEvent(uid, uid.replace("-", " ").capitalize(), start, end)


# New York 2026: 02:00 EST becomes 03:00 EDT at 07:00Z on 8 March (02:00-02:59 never
# happens); 02:00 EDT becomes 01:00 EST at 06:00Z on 1 November (01:00-01:59 happens
# twice: 05:00Z-06:00Z, then 06:00Z-07:00Z).
NEW_YORK_CLOCK_CHANGES = [
    # The repeated hour.
    session("second-0130-to-0220", utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 7, 20)),
    session(
        "first-0130-to-second-0130", utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)
    ),
    session(
        "first-0110-to-first-0150", utc(2026, 11, 1, 5, 10), utc(2026, 11, 1, 5, 50)
    ),
    session("first-0140-to-0210", utc(2026, 11, 1, 5, 40), utc(2026, 11, 1, 7, 10)),
    session("0030-to-second-0115", utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 6, 15)),
    session("0030-to-first-0115", utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 5, 15)),
    session("second-0100-to-0150", utc(2026, 11, 1, 6), utc(2026, 11, 1, 6, 50)),
    session("second-0145-to-0300", utc(2026, 11, 1, 6, 45), utc(2026, 11, 1, 8)),
    session("overnight-to-second-0130", utc(2026, 11, 1, 2), utc(2026, 11, 1, 6, 30)),
    # The skipped hour.
    session("0130-across-to-0330", utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 30)),
    session("0115-to-0300", utc(2026, 3, 8, 6, 15), utc(2026, 3, 8, 7)),
    session("0300-to-0350", utc(2026, 3, 8, 7), utc(2026, 3, 8, 7, 50)),
    session("0159-to-0301", utc(2026, 3, 8, 6, 59), utc(2026, 3, 8, 7, 1)),
    session("overnight-across-spring", utc(2026, 3, 8, 3), utc(2026, 3, 8, 10)),
]

# Lord Howe 2026: 02:00 (+11:00) becomes 01:30 (+10:30) at 15:00Z on 4 April, local
# 5 April (01:30-01:59 twice: 14:30Z-15:00Z, then 15:00Z-15:30Z); 02:00 (+10:30)
# becomes 02:30 (+11:00) at 15:30Z on 3 October, local 4 October (02:00-02:29 never).
LORD_HOWE_CLOCK_CHANGES = [
    # The repeated half hour.
    session("second-0140-to-0210", utc(2026, 4, 4, 15, 10), utc(2026, 4, 4, 15, 40)),
    session(
        "first-0140-to-second-0140", utc(2026, 4, 4, 14, 40), utc(2026, 4, 4, 15, 10)
    ),
    session(
        "first-0135-to-first-0155", utc(2026, 4, 4, 14, 35), utc(2026, 4, 4, 14, 55)
    ),
    session("0100-to-second-0145", utc(2026, 4, 4, 14), utc(2026, 4, 4, 15, 15)),
    session("second-0130-to-0220", utc(2026, 4, 4, 15), utc(2026, 4, 4, 15, 50)),
    session("first-0150-to-0300", utc(2026, 4, 4, 14, 50), utc(2026, 4, 4, 16, 30)),
    # The skipped half hour.
    session("0145-across-to-0245", utc(2026, 10, 3, 15, 15), utc(2026, 10, 3, 15, 45)),
    session("0100-to-0230", utc(2026, 10, 3, 14, 30), utc(2026, 10, 3, 15, 30)),
    session("0230-to-0320", utc(2026, 10, 3, 15, 30), utc(2026, 10, 3, 16, 20)),
    session("overnight-across-spring", utc(2026, 10, 3, 11), utc(2026, 10, 3, 20)),
]


@pytest.mark.parametrize(
    ("zone_key", "sessions"),
    [
        ("America/New_York", NEW_YORK_CLOCK_CHANGES),
        ("Australia/Lord_Howe", LORD_HOWE_CLOCK_CHANGES),
    ],
)
def test_repeated_and_skipped_wall_times_read_identically_everywhere(
    zone_key, sessions
):
    ics = feed_bytes(sessions, zone_key)

    assert_byte_level_ok(ics)
    assert_feed_structure_ok(ics)
    assert_all_parsers_agree(ics, feed_expected(sessions))
    # Never a UTC DTSTART/DTEND: readers that apply X-WR-TIMEZONE move those.
    assert b"DTSTART:" not in ics.split(b"END:VTIMEZONE")[-1]
    assert b"DTEND:" not in ics


# Backslashes in what people type, and how the feed publishes them: as U+29F5 REVERSE
# SOLIDUS OPERATOR, since node-ical reads an escaped backslash before "n" as a line
# break (see test_harness.py).
BACKSLASH_TITLES = [
    "C:\\new folder",
    "a\\nb",
    "trailing\\",
    "comma \\, then",
    "semicolon \\; then",
    "\\N",
    "two \\\\ in a row, \\\\n",
    "\\",
    'tab \\t and quote \\"',
]


def published(title: str) -> str:
    return title.replace("\\", "\u29f5")


def test_backslashes_read_identically_everywhere():
    sessions = [
        session(
            f"backslash-{index}",
            utc(2026, 5, 4, 13 + index),
            utc(2026, 5, 4, 14 + index),
        )
        for index in range(len(BACKSLASH_TITLES))
    ]
    sessions = [
        SampleEvent(sample.uid, title, sample.start, sample.end)
        for sample, title in zip(sessions, BACKSLASH_TITLES, strict=True)
    ]
    ics = feed_bytes(sessions, "America/New_York")

    assert b"\\\\" not in ics
    assert_byte_level_ok(ics)
    assert_feed_structure_ok(ics)
    results = assert_all_parsers_agree(ics, feed_expected(sessions, published))
    assert {event.summary for event in results["node-ical"].events} == {
        published(title) for title in BACKSLASH_TITLES
    }


# node-ical drops a pair of double quotes around a whole value; the feed publishes
# such a value with typographic quotes, and keeps quotes anywhere else as typed.
QUOTED_TITLES = {
    '"Quoted"': "\u201cQuoted\u201d",
    '""': "\u201c\u201d",
    'The "inner" group': 'The "inner" group',
    '"Half': '"Half',
}


def test_a_value_wholly_in_quotes_reads_identically_everywhere():
    sessions = [
        SampleEvent(
            f"quoted-{index}",
            title,
            utc(2026, 5, 5, 13 + index),
            utc(2026, 5, 5, 14 + index),
        )
        for index, title in enumerate(QUOTED_TITLES)
    ]
    ics = feed_bytes(sessions, "America/New_York")
    assert_feed_structure_ok(ics)
    results = assert_all_parsers_agree(ics, feed_expected(sessions, QUOTED_TITLES.get))
    assert {event.summary for event in results["node-ical"].events} == set(
        QUOTED_TITLES.values()
    )
