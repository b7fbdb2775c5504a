"""The conformance harness itself: real parsers agree on good calendars, and every check
fails on the calendar that should fail it."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event

from tests.conformance.harness import (
    assert_all_parsers_agree,
    assert_byte_level_ok,
    assert_feed_structure_ok,
    byte_level_problems,
    disagreements,
    expected_event,
    parse_everywhere,
    parse_with_ical,
    parse_with_icalendar,
    parse_with_icaljs,
    parse_with_libical,
    parse_with_node_ical,
    parse_with_recurring_ical_events,
    parse_with_vdirsyncer_khal,
    structure_problems,
)
from tests.conformance.samples import (
    SampleEvent,
    calendar_bytes,
    feed_bytes,
    feed_expected,
    without_vtimezones,
    zone_events,
)

pytestmark = pytest.mark.conformance

NEW_YORK = ZoneInfo("America/New_York")
DRIVERS = {
    "icalendar": parse_with_icalendar,
    "ical": parse_with_ical,
    "ical.js": parse_with_icaljs,
    "libical": parse_with_libical,
    "vdirsyncer+khal": parse_with_vdirsyncer_khal,
    "node-ical": parse_with_node_ical,
    "recurring-ical-events": parse_with_recurring_ical_events,
}


def ny(*args):
    return datetime(*args, tzinfo=NEW_YORK)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


# Sessions around both 2026 changes in New York, with the UTC instants written out by
# hand so the test does not lean on the zone database it is checking.
NEW_YORK_SESSIONS = [
    (
        SampleEvent(
            "before-spring", "Before spring", ny(2026, 3, 7, 9), ny(2026, 3, 7, 9, 50)
        ),
        utc(2026, 3, 7, 14),
        utc(2026, 3, 7, 14, 50),
    ),
    (
        SampleEvent(
            "overnight-spring",
            "Overnight, clocks go forward",
            ny(2026, 3, 7, 22),
            ny(2026, 3, 8, 6),
        ),
        utc(2026, 3, 8, 3),
        utc(2026, 3, 8, 10),
    ),
    (
        SampleEvent(
            "after-spring", "After spring", ny(2026, 3, 9, 9), ny(2026, 3, 9, 9, 50)
        ),
        utc(2026, 3, 9, 13),
        utc(2026, 3, 9, 13, 50),
    ),
    (
        SampleEvent(
            "overnight-fall",
            "Overnight, clocks go back",
            ny(2026, 10, 31, 22),
            ny(2026, 11, 1, 6),
        ),
        utc(2026, 11, 1, 2),
        utc(2026, 11, 1, 11),
    ),
    (
        SampleEvent(
            "after-fall", "After fall", ny(2026, 11, 2, 9), ny(2026, 11, 2, 9, 50)
        ),
        utc(2026, 11, 2, 14),
        utc(2026, 11, 2, 14, 50),
    ),
    (
        SampleEvent(
            "cancelled",
            "Cancelled: R. K.",
            ny(2026, 7, 1, 15),
            ny(2026, 7, 1, 15, 50),
            status="CANCELLED",
        ),
        utc(2026, 7, 1, 19),
        utc(2026, 7, 1, 19, 50),
    ),
    (
        SampleEvent(
            "text",
            "Dr. O'Brien, LCSW; room 3 \\ back door ☕ שלום عربي 🧠" + " long" * 30,
            ny(2026, 5, 5, 10),
            ny(2026, 5, 5, 10, 50),
        ),
        utc(2026, 5, 5, 14),
        utc(2026, 5, 5, 14, 50),
    ),
]


def new_york_calendar(**options) -> bytes:
    return calendar_bytes([sample for sample, _, _ in NEW_YORK_SESSIONS], **options)


def new_york_expected():
    return [
        expected_event(
            uid=sample.uid,
            summary=sample.summary,
            status=sample.status,
            start=start,
            end=end,
        )
        for sample, start, end in NEW_YORK_SESSIONS
    ]


def test_new_york_across_both_changes_every_parser_agrees_with_hand_written_utc():
    ics = new_york_calendar()

    assert_byte_level_ok(ics)
    assert_feed_structure_ok(ics)
    results = assert_all_parsers_agree(ics, new_york_expected())

    assert set(results) == set(DRIVERS)
    for result in results.values():
        assert len(result.events) == len(NEW_YORK_SESSIONS)


# Spot checks written out by hand: (uid prefix, UTC start).
ODD_ZONE_SPOT_CHECKS = {
    "America/St_Johns": [
        ("january", utc(2026, 1, 15, 12, 30)),
        ("july", utc(2026, 7, 15, 11, 30)),
    ],
    "Asia/Kolkata": [
        ("january", utc(2026, 1, 15, 3, 30)),
        ("july", utc(2026, 7, 15, 3, 30)),
    ],
    "Australia/Lord_Howe": [
        ("january", utc(2026, 1, 14, 22)),
        ("july", utc(2026, 7, 14, 22, 30)),
    ],
    "Europe/Dublin": [("january", utc(2026, 1, 15, 9)), ("july", utc(2026, 7, 15, 8))],
}


@pytest.mark.parametrize("zone", sorted(ODD_ZONE_SPOT_CHECKS))
def test_zones_with_odd_rules_every_parser_agrees(zone):
    samples = zone_events(zone)
    expected = [sample.expected() for sample in samples]
    by_uid = {event.uid: event for event in expected}
    for prefix, start in ODD_ZONE_SPOT_CHECKS[zone]:
        assert by_uid[f"{prefix}-{zone}"].start_utc == start
    ics = calendar_bytes(samples)

    assert_byte_level_ok(ics)
    assert_feed_structure_ok(ics)
    assert_all_parsers_agree(ics, expected)


def test_empty_calendar_reads_as_no_events_everywhere():
    ics = calendar_bytes([])

    assert_byte_level_ok(ics)
    assert_feed_structure_ok(ics)
    results = assert_all_parsers_agree(ics, [])

    assert all(result.events == [] for result in results.values())


def test_all_day_events_read_as_dates_everywhere():
    calendar = Calendar.new(prodid="-//Tend//Conformance samples//EN")
    del calendar["UID"]
    for uid, start, end in [
        ("closed", date(2026, 12, 24), date(2026, 12, 26)),
        ("new-year", date(2026, 12, 31), date(2027, 1, 1)),
    ]:
        calendar.add_component(
            Event.new(uid=uid, summary=uid, start=start, end=end, stamp=utc(2026, 1, 1))
        )

    assert_all_parsers_agree(
        calendar.to_ical(),
        [
            expected_event(
                uid="closed",
                summary="closed",
                start=date(2026, 12, 24),
                end=date(2026, 12, 26),
            ),
            expected_event(
                uid="new-year",
                summary="new-year",
                start=date(2026, 12, 31),
                end=date(2027, 1, 1),
            ),
        ],
    )


def test_expected_mismatch_is_reported():
    expected = new_york_expected()
    expected[0] = expected_event(
        uid="before-spring",
        summary="Before spring",
        start=utc(2026, 3, 7, 15),
        end=utc(2026, 3, 7, 15, 50),
    )

    with pytest.raises(AssertionError, match="expected only: uid='before-spring'"):
        assert_all_parsers_agree(new_york_calendar(), expected)


def test_tzid_without_vtimezone_floats_in_icaljs_and_the_disagreement_is_caught():
    ics = without_vtimezones(new_york_calendar())

    icaljs = parse_with_icaljs(ics)
    floating = [event for event in icaljs.events if event.start_utc.tzinfo is None]
    assert len(floating) == len(NEW_YORK_SESSIONS)
    assert any("floats" in warning for warning in icaljs.warnings)
    assert any(
        "no VTIMEZONE" in warning for warning in parse_with_libical(ics).warnings
    )

    results = parse_everywhere(ics)
    assert any(line.startswith("ical.js differs") for line in disagreements(results))
    with pytest.raises(AssertionError, match="ical.js differs"):
        assert_all_parsers_agree(ics)


def test_windows_zone_name_without_vtimezone_is_rejected_by_ical():
    ics = without_vtimezones(new_york_calendar()).replace(
        b"America/New_York", b"Eastern Standard Time"
    )

    assert parse_with_ical(ics).errors
    with pytest.raises(AssertionError, match="ical: error"):
        assert_all_parsers_agree(ics)


def test_multi_valued_rdate_in_vtimezone_loses_dst_in_icaljs():
    # icalendar 7 writes every past transition into one RDATE; ical.js reads only the
    # first value, so it never applies summer time after 1971.
    ics = new_york_calendar(raw_rdates=True)

    summer = {event.uid: event for event in parse_with_icaljs(ics).events}["cancelled"]
    assert summer.start_utc == utc(2026, 7, 1, 20)  # an hour late
    with pytest.raises(AssertionError, match="ical.js differs"):
        assert_all_parsers_agree(ics, new_york_expected())


def test_icaljs_ignores_an_observance_dtstart_when_rdates_follow():
    # Timezone.from_tzid() for 2026-2027 writes DAYLIGHT DTSTART:20260308T030000 with
    # RDATE:20270314T030000; ical.js then misses the 2026 spring change entirely.
    summer = [sample for sample, _, _ in NEW_YORK_SESSIONS if sample.uid == "cancelled"]
    expected = [e for e in new_york_expected() if e.uid == "cancelled"]
    ics = calendar_bytes(summer, zone_years=(2026, 2027), dtstart_as_rdate=False)

    assert b"DTSTART:20260308T030000\r\nRDATE:20270314T030000" in ics
    assert parse_with_icaljs(ics).events[0].start_utc == utc(2026, 7, 1, 20)
    with pytest.raises(AssertionError, match="ical.js differs"):
        assert_all_parsers_agree(ics, expected)

    # Naming the first onset as an RDATE too is read the same way everywhere.
    assert_all_parsers_agree(calendar_bytes(summer, zone_years=(2026, 2027)), expected)


def test_calendar_level_uid_collapses_a_vdirsyncer_subscription_to_one_event():
    ics = new_york_calendar(calendar_uid=True)

    assert len(parse_with_vdirsyncer_khal(ics).events) == 1
    with pytest.raises(AssertionError, match="vdirsyncer\\+khal differs"):
        assert_all_parsers_agree(ics, new_york_expected())


def test_repeated_hour_after_fall_back_is_read_two_ways():
    # 01:30 happens twice on 2026-11-01 in New York; RFC 5545 says the first (EDT).
    ics = calendar_bytes(
        [
            SampleEvent(
                "ambiguous", "Ambiguous", ny(2026, 11, 1, 1, 30), ny(2026, 11, 1, 3)
            )
        ]
    )

    starts = {
        name: result.events[0].start_utc
        for name, result in parse_everywhere(ics).items()
    }
    assert starts["icalendar"] == utc(2026, 11, 1, 5, 30)
    assert len(set(starts.values())) == 2
    with pytest.raises(AssertionError, match="differs"):
        assert_all_parsers_agree(ics)


def with_x_wr_timezone(ics: bytes, zone: str) -> bytes:
    return ics.replace(
        b"X-WR-CALNAME:Samples\r\n",
        f"X-WR-CALNAME:Samples\r\nX-WR-TIMEZONE:{zone}\r\n".encode(),
    )


def test_utc_time_in_a_repeated_hour_is_read_early_after_x_wr_timezone():
    # x-wr-timezone moves a UTC time into the X-WR-TIMEZONE zone (06:30Z becomes the
    # second 01:30 in New York), and recurring-ical-events' datetime arithmetic then
    # forgets which 01:30 it was: an hour early. A TZID time is left alone, so the same
    # instant as TZID=Etc/GMT reads right (the feed writer's choice, see event_zone).
    session = SampleEvent(
        "second-0130", "Second 01:30", utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 7, 20)
    )
    ics = with_x_wr_timezone(calendar_bytes([session]), "America/New_York")
    assert b"DTSTART:20261101T063000Z" in ics

    (early,) = parse_with_recurring_ical_events(ics).events
    assert early.start_utc == utc(2026, 11, 1, 5, 30)
    assert parse_with_icalendar(ics).events[0].start_utc == utc(2026, 11, 1, 6, 30)
    with pytest.raises(AssertionError, match="recurring-ical-events differs"):
        assert_all_parsers_agree(ics, [session.expected()])

    fixed = feed_bytes([session], "America/New_York")
    assert b"X-WR-TIMEZONE:America/New_York" in fixed
    assert b"DTSTART;TZID=Etc/GMT:20261101T063000" in fixed
    assert_all_parsers_agree(fixed, feed_expected([session]))


def test_node_ical_reads_an_escaped_backslash_before_n_as_a_line_break():
    # RFC 5545 escaping of the typed text C:\new is C:\\new; node-ical replaces the
    # \n inside it before it unescapes the backslash (the feed writer publishes a
    # backslash as U+29F5 for that reason, see calendarsync.ical.clean_text).
    typed = "C:\\new folder"
    ics = calendar_bytes(
        [SampleEvent("path", typed, ny(2026, 5, 5, 9), ny(2026, 5, 5, 10))]
    )
    assert b"SUMMARY:C:\\\\new folder" in ics

    assert parse_with_icalendar(ics).events[0].summary == typed
    assert parse_with_node_ical(ics).events[0].summary == "C:\\" + "\n" + "ew folder"
    with pytest.raises(AssertionError, match="node-ical differs"):
        assert_all_parsers_agree(ics)


def test_node_ical_drops_double_quotes_around_a_whole_value():
    # Valid TEXT, read as typed everywhere else; the feed writer does not avoid it.
    ics = calendar_bytes(
        [SampleEvent("quoted", '"Quoted"', ny(2026, 5, 5, 9), ny(2026, 5, 5, 10))]
    )

    assert parse_with_icaljs(ics).events[0].summary == '"Quoted"'
    assert parse_with_node_ical(ics).events[0].summary == "Quoted"
    with pytest.raises(AssertionError, match="node-ical differs"):
        assert_all_parsers_agree(ics)


def test_trailing_whitespace_in_text_is_trimmed_by_libical():
    ics = calendar_bytes(
        [SampleEvent("space", "Trailing space ", ny(2026, 5, 5, 9), ny(2026, 5, 5, 10))]
    )

    assert parse_with_libical(ics).events[0].summary == "Trailing space"
    with pytest.raises(AssertionError, match="libical differs"):
        assert_all_parsers_agree(ics)


BROKEN = {
    "bad DTSTART": (
        b"DTSTART;TZID=America/New_York:20260307T090000",
        b"DTSTART;TZID=America/New_York:2026BAD",
    ),
    "line without a property name": (
        b"SUMMARY:Before spring\r\n",
        b"SUMMARY:Before spring\r\nNOT A PROPERTY\r\n",
    ),
}


# Breakages a parser passes over without a word, measured: it then reads the rest.
SILENT = {
    # node-ical's parseLines skips any line that is not NAME[;PARAMS]:VALUE.
    ("node-ical", "line without a property name"),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN))
@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_every_driver_reports_a_broken_calendar(driver, breakage):
    good = new_york_calendar()
    old, new = BROKEN[breakage]
    assert old in good
    broken = good.replace(old, new)

    reading = DRIVERS[driver](good)
    assert reading.problems == []
    if (driver, breakage) in SILENT:
        silent = DRIVERS[driver](broken)
        assert silent.problems == []
        assert silent.sorted_events() == reading.sorted_events()
    else:
        assert DRIVERS[driver](broken).problems != []


def test_subscriber_sees_create_reschedule_cancel_delete(ics_server, subscriber):
    phone = subscriber(ics_server.url)
    window = (datetime(2026, 6, 1).date(), datetime(2026, 6, 30).date())
    session = SampleEvent("appt-1", "R. K.", ny(2026, 6, 10, 9), ny(2026, 6, 10, 9, 50))
    other = SampleEvent("appt-2", "J. D.", ny(2026, 6, 11, 9), ny(2026, 6, 11, 9, 50))

    def seen(samples):
        ics_server.body = calendar_bytes(samples)
        result = phone.sync_and_list(*window)
        assert result.problems == []
        return [
            (event.summary, event.status, event.start_utc, event.end_utc)
            for event in result.sorted_events()
        ]

    assert seen([session, other]) == [
        ("R. K.", "", utc(2026, 6, 10, 13), utc(2026, 6, 10, 13, 50)),
        ("J. D.", "", utc(2026, 6, 11, 13), utc(2026, 6, 11, 13, 50)),
    ]
    moved = SampleEvent("appt-1", "R. K.", ny(2026, 6, 12, 11), ny(2026, 6, 12, 11, 50))
    assert seen([moved, other]) == [
        ("J. D.", "", utc(2026, 6, 11, 13), utc(2026, 6, 11, 13, 50)),
        ("R. K.", "", utc(2026, 6, 12, 15), utc(2026, 6, 12, 15, 50)),
    ]
    cancelled = SampleEvent(
        "appt-1", "Cancelled: R. K.", moved.start, moved.end, status="CANCELLED"
    )
    assert seen([cancelled, other]) == [
        ("J. D.", "", utc(2026, 6, 11, 13), utc(2026, 6, 11, 13, 50)),
        (
            "Cancelled: R. K.",
            "CANCELLED",
            utc(2026, 6, 12, 15),
            utc(2026, 6, 12, 15, 50),
        ),
    ]
    assert seen([other]) == [
        ("J. D.", "", utc(2026, 6, 11, 13), utc(2026, 6, 11, 13, 50))
    ]
    assert ics_server.requests >= 4

    # A feed that empties completely is refused, not applied: the phone keeps its copy.
    ics_server.body = calendar_bytes([])
    refused = phone.sync_and_list(*window)
    assert any("completely emptied" in error for error in refused.errors)
    assert len(refused.events) == 1


# -- byte level ---------------------------------------------------------------------


def test_icalendar_output_with_long_multibyte_text_passes_the_byte_check():
    ics = new_york_calendar()
    assert any(len(line) == 75 for line in ics.split(b"\r\n")) or b"\r\n " in ics

    assert byte_level_problems(ics) == []


def folded(*lines: bytes) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)


MINIMAL = [b"BEGIN:VCALENDAR", b"VERSION:2.0", b"PRODID:-//t//t//EN", b"END:VCALENDAR"]


@pytest.mark.parametrize(
    ("ics", "message"),
    [
        (folded(*MINIMAL[:3], b"X-LONG:" + b"a" * 73, MINIMAL[3]), "80 octets"),
        (b"\n".join(MINIMAL) + b"\n", "bare CR or LF"),
        (folded(*MINIMAL[:3], b"X-CR:one\rtwo", MINIMAL[3]), "bare CR or LF"),
        (
            folded(*MINIMAL[:3], b"X-A:caf\xc3", b" \xa9", MINIMAL[3]),
            "fold before line 5",
        ),
        (
            folded(*MINIMAL[:3], b"X-A:caf\xc3", b" \xa9", MINIMAL[3]),
            "ends inside a UTF-8",
        ),
        (folded(*MINIMAL[:3], b"X-NUL:a\x00b", MINIMAL[3]), "control character 0x00"),
        (folded(*MINIMAL[:3], b"X-ESC:a\x1bb", MINIMAL[3]), "control character 0x1B"),
        (folded(*MINIMAL[:3], b"X-BAD:\xff\xfe", MINIMAL[3]), "not valid UTF-8"),
        (b"\r\n".join(MINIMAL), "does not end with CRLF"),
    ],
    ids=[
        "80-octet line",
        "LF endings",
        "bare CR",
        "fold splits a character",
        "line ends mid-character",
        "NUL",
        "ESC",
        "invalid UTF-8",
        "no final CRLF",
    ],
)
def test_byte_level_check_fails(ics, message):
    problems = byte_level_problems(ics)
    assert any(message in problem for problem in problems), problems
    with pytest.raises(AssertionError, match="RFC 5545"):
        assert_byte_level_ok(ics)


def test_byte_level_check_accepts_75_octets_tabs_and_folds_between_characters():
    ics = folded(
        *MINIMAL[:3],
        b"X-EXACT:" + b"a" * 67,
        b"X-TAB:a\tb",
        "X-A:caf\u00e9".encode(),
        " \u00e9\u2615".encode(),
        MINIMAL[3],
    )

    assert byte_level_problems(ics) == []


# -- structure ----------------------------------------------------------------------


def _one_session(**options) -> bytes:
    return calendar_bytes(
        [SampleEvent("s", "R. K.", ny(2026, 7, 1, 9), ny(2026, 7, 1, 10))], **options
    )


def _replace(old: bytes, new: bytes):
    def change(ics: bytes) -> bytes:
        assert old in ics
        return ics.replace(old, new)

    return change


STRUCTURE_BREAKS = {
    "calendar UID": (
        lambda: _one_session(calendar_uid=True),
        None,
        "VCALENDAR has a UID",
    ),
    "multi-valued RDATE": (
        lambda: _one_session(raw_rdates=True, dtstart_as_rdate=False),
        None,
        "RDATE with several values",
    ),
    "DTSTART not an RDATE": (
        lambda: _one_session(zone_years=(2026, 2027), dtstart_as_rdate=False),
        None,
        "DTSTART is not repeated",
    ),
    "no VTIMEZONE": (_one_session, without_vtimezones, "has no VTIMEZONE"),
    "Windows zone": (
        _one_session,
        _replace(b"America/New_York", b"Eastern Standard Time"),
        "not an IANA zone name",
    ),
    "floating time": (
        _one_session,
        _replace(b"DTSTART;TZID=America/New_York:", b"DTSTART:"),
        "floating time",
    ),
    "trailing space": (
        _one_session,
        _replace(b"SUMMARY:R. K.", b"SUMMARY:R. K. "),
        "surrounding whitespace",
    ),
    "no DTSTAMP": (
        _one_session,
        _replace(b"DTSTAMP:20260101T000000Z\r\n", b""),
        "has no DTSTAMP",
    ),
    "UID twice": (
        _one_session,
        lambda ics: ics.replace(
            b"END:VCALENDAR",
            ics[ics.index(b"BEGIN:VEVENT") : ics.index(b"END:VEVENT") + 12]
            + b"END:VCALENDAR",
        ),
        "UID used twice",
    ),
}


def test_structure_check_accepts_the_clean_sample():
    assert structure_problems(_one_session()) == []


@pytest.mark.parametrize("case", sorted(STRUCTURE_BREAKS))
def test_structure_check_fails(case):
    build, change, message = STRUCTURE_BREAKS[case]
    ics = build()
    if change is not None:
        ics = change(ics)

    problems = structure_problems(ics)
    assert any(message in problem for problem in problems), problems
    with pytest.raises(AssertionError, match="misread"):
        assert_feed_structure_ok(ics)
