"""Whatever people type, a busy-only feed says nothing of it: each current
appointment or event is a block with the same fixed properties, only its times
differ, and the calendar's only text is the clinician's label."""

import icalendar
from hypothesis import HealthCheck, example, given, settings

from calendarsync import ical
from calendarsync.busylinks import busy_link_enable
from calendarsync.tokens import busy_uid_stem
from tests.conformance.harness import assert_byte_level_ok
from tests.factories import feed_paths
from tests.feedprops.oracles import calendar_text, structure
from tests.feedprops.test_text import (
    NASTY_EXAMPLE,
    Typed,
    book,
    label,
    published_text,
    typed,
)
from tests.support import rolled_back

# Every property of a block; none of them carries anything typed.
BLOCK = [
    "UID",
    "DTSTAMP",
    "DTSTART",
    "DTEND",
    "SEQUENCE",
    "CREATED",
    "LAST-MODIFIED",
    "STATUS",
    "SUMMARY",
    "CLASS",
    "TRANSP",
]


def check_busy_feed(client, typed: Typed) -> None:
    _practice, user, _patients, appointments = book(typed)
    session, event, _cancelled = appointments
    busy_link_enable(user=user, client_ip=None)
    response = client.get(feed_paths(user)["busy"])
    assert response.status_code == 200
    body = response.content
    assert_byte_level_ok(body)
    blocks = [names for path, names in structure(body) if path.endswith("VEVENT")]
    assert blocks == [BLOCK, BLOCK]
    calendar = icalendar.Calendar.from_ical(body)
    # The cancelled one is left out; the others are opaque, private and "Busy".
    shown = {
        str(block["UID"]): (
            block.decoded("DTSTART"),
            block.decoded("DTEND"),
            str(block["SUMMARY"]),
            str(block["CLASS"]),
            str(block["TRANSP"]),
            str(block["STATUS"]),
        )
        for block in calendar.walk("VEVENT")
    }
    assert shown == {
        f"{busy_uid_stem(str(booked.uid))}@busy.tend": (
            booked.start,
            booked.end,
            "Busy",
            "PRIVATE",
            "OPAQUE",
            "CONFIRMED",
        )
        for booked in (session, event)
    }
    assert all(ical.is_tend_uid(uid) for uid in shown)
    name = published_text(
        f"Busy — {label(user.display_name, user.credentials, user.email)}"
    )
    assert calendar_text(calendar, "NAME") == name
    assert calendar_text(calendar, "X-WR-CALNAME") == name
    description = calendar_text(calendar, "DESCRIPTION")
    assert description.startswith("Busy times only, without any detail. Complete from")
    assert calendar_text(calendar, "X-WR-CALDESC") == description


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@example(NASTY_EXAMPLE)
@given(typed=typed)
def test_any_text_stays_out_of_a_busy_feed(db, client, typed):
    with rolled_back():
        check_busy_feed(client, typed)
