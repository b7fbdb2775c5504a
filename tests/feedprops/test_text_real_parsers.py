"""The same arbitrary text, read by every real client parser (ical.js, libical,
ical, icalendar, vdirsyncer+khal): a few examples through the view, and strings of
thousands of characters straight through the renderer (no column is that long,
but nothing in the writer may depend on that)."""

import uuid
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from calendarsync.ical import render_calendar, render_event
from scheduling.publication import (
    PublishedAppointment,
    calendar_name,
    event_location,
    event_summary,
)
from tests.conformance.harness import (
    assert_all_parsers_agree,
    assert_byte_level_ok,
    assert_feed_structure_ok,
    expected_event,
)
from tests.feedprops.oracles import assert_only_expected_properties, visible_text
from tests.feedprops.test_text import (
    NASTY,
    NASTY_EXAMPLE,
    check_feeds,
    typed,
)
from tests.support import rolled_back

SLOW = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def expected_readings(want: dict) -> list:
    return [
        expected_event(uid=uid, summary=summary, status=status, start=start, end=end)
        for uid, (summary, status, _location, start, end) in want.items()
    ]


@settings(max_examples=3, **SLOW)
@example(NASTY_EXAMPLE)
@given(typed=typed)
def test_every_real_parser_reads_any_text_the_same(db, client, typed):
    with rolled_back():
        # check_feeds reads each feed with icalendar against the database first.
        for body, want in check_feeds(client, typed).values():
            assert_feed_structure_ok(body)
            assert_all_parsers_agree(body, expected_readings(want))


# Thousands of characters: a short run of awkward characters, repeated.
long_text = st.builds(
    lambda run, times: "".join(run) * times,
    st.lists(st.sampled_from([*NASTY, "a", "ab c", "é"]), min_size=1, max_size=20),
    st.integers(min_value=300, max_value=600),
)


@settings(max_examples=3, **SLOW)
@example(summary="é" * 3000, location="👩\u200d⚕️" * 700)
@example(summary=";,\\:\r\n" * 700, location="\x00\x1f\x85" * 1000 + "x")
@given(summary=long_text, location=long_text)
def test_thousands_of_characters_fold_and_read_back_everywhere(summary, location):
    title = summary
    start = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)  # the morning clocks go forward
    summary = event_summary(
        is_event=True, title=summary, initials=(), clinician_label=None, cancelled=False
    )
    event = PublishedAppointment(
        uid=str(uuid.uuid4()),
        sequence=3,
        created_at=start - timedelta(days=3),
        changed_at=start - timedelta(days=1),
        start=start,
        end=start + timedelta(hours=1),
        cancelled=False,
        summary=summary,
        location=event_location(name=location, is_telehealth=False),
    )
    body = render_calendar(
        name=calendar_name(
            scope="clinician", practice_name="", clinician=summary[:500]
        ),
        zone_key="America/New_York",
        fragments=[render_event(event, "America/New_York")],
        years=(2026, 2026),
        complete=(date(2026, 1, 1), date(2026, 12, 30)),
        truncated=False,
    )
    assert_byte_level_ok(body)
    assert_only_expected_properties(body, events=1)
    assert_feed_structure_ok(body)
    shown = visible_text(title) or "Event"
    assert_all_parsers_agree(
        body,
        [
            expected_event(
                uid=f"{event.uid}@tend",
                summary=shown,
                status="CONFIRMED",
                start=event.start,
                end=event.end,
            )
        ],
    )
