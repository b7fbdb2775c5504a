"""Whatever people type, a feed reads back as exactly the events we booked, with
exactly the text we expect, and nothing else.

Arbitrary text (controls, delimiters, emoji, right-to-left scripts, combining marks,
field-filling lengths) goes into every field that reaches a feed: the practice's name,
the clinician's display name and credentials, patient names (published as initials),
event titles and location names. The feed is fetched through the real view with a
link issued by calendarsync."""

from dataclasses import dataclass
from datetime import timedelta

import icalendar
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from practice.models import Practice, Role
from practice.services import user_create
from scheduling.models import Appointment, Location, Patient
from scheduling.names import initials
from scheduling.publication import URL_PATTERN
from tests.conformance.harness import assert_byte_level_ok
from tests.factories import feed_paths
from tests.feedprops.oracles import (
    assert_only_expected_properties,
    calendar_text,
    storable,
    visible_text,
)
from tests.support import rolled_back

# Characters that have broken calendar feeds somewhere: line breaks, TEXT delimiters,
# C0/C1 controls, separators Python splits lines on, BOM, bidi and joiners,
# combining marks, emoji (4-byte UTF-8 and ZWJ sequences), RTL letters.
NASTY = list(
    "\r\n;,\\:\"'\x00\x01\x07\x08\x0b\x0c\x1b\x1c\x1d\x1e\x1f\x7f\x80\x85\x9f\t "
    "\u2028\u2029\ufeff\u200b\u200d\u200e\u200f\u202e\u2066\u0301\u0308\u20dd"
    "😀👩\u200d⚕️🏳️\u200d🌈שלוםمرحباÉé漢字ß"
) + ["\r\n", "BEGIN:VEVENT", "END:VCALENDAR", "\nX-EVIL:1", "https://x.test/a"]


def text(max_size: int) -> st.SearchStrategy[str]:
    piece = st.one_of(
        st.sampled_from(NASTY), st.characters(codec="utf-8"), st.just("a")
    )
    short = st.lists(piece, max_size=12).map("".join)
    full = st.lists(piece, min_size=max_size // 2, max_size=max_size).map("".join)
    return st.one_of(short, short, full).map(lambda value: value[:max_size])


@dataclass
class Typed:
    practice_name: str
    display_name: str
    credentials: str
    patients: list[tuple[str, str]]
    title: str
    location: str


typed = st.builds(
    Typed,
    practice_name=text(200),
    display_name=text(150),
    credentials=text(60),
    patients=st.lists(st.tuples(text(100), text(100)), min_size=1, max_size=3),
    title=text(200),
    location=text(120),
)

NASTY_EXAMPLE = Typed(
    practice_name="Río ; Clinic, \\ \r\nBEGIN:VEVENT\x00\x85",
    display_name=" \u202eDana\x1b Rivera\t",
    credentials="LCSW,\x7f PhD;",
    patients=[("\x00Élodie", "O'Brien\r\n"), ("👩\u200d⚕️", "שלום"), ("\x07", "")],
    title="\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nSUMMARY:x\x9f; a,b\\c " + "é" * 150,
    location="Suite 4; 2nd floor, \\ \x0b" + "\u0301" * 60,
)


def published_text(value: str) -> str:
    return visible_text(value).strip()


def expected_location(name: str) -> str:
    return " ".join(URL_PATTERN.sub("", visible_text(name)).split())


def label(display_name: str, credentials: str, email: str) -> str:
    name = display_name or email
    return f"{name}, {credentials}" if credentials else name


def book(typed: Typed):
    """The practice, its one clinician (an administrator too, so it has the
    practice-wide feed) and three appointments, with the typed text stored as is.

    Straight to the table on purpose: the services clean text on input (and refuse
    empty titles), and the feed must clean it even when that was bypassed."""
    practice = Practice.objects.create(
        name=storable(typed.practice_name), time_zone="America/New_York"
    )
    user = user_create(
        practice=practice,
        email="props@feed.test",
        display_name="Placeholder",
        roles=[Role.ADMINISTRATOR, Role.CLINICIAN],
        password="a-long-enough-password-1",
    )
    user.display_name = storable(typed.display_name)
    user.credentials = storable(typed.credentials)
    user.save(update_fields=["display_name", "credentials"])
    location = Location.objects.create(practice=practice, name=storable(typed.location))
    patients = [
        Patient.objects.create(
            practice=practice, first_name=storable(first), last_name=storable(last)
        )
        for first, last in typed.patients
    ]
    start = timezone.now().replace(microsecond=0) + timedelta(days=1)
    session = Appointment.objects.create(
        practice=practice,
        clinician=user,
        location=location,
        start=start,
        end=start + timedelta(minutes=50),
    )
    session.patients.set(patients)
    event = Appointment.objects.create(
        practice=practice,
        clinician=user,
        kind=Appointment.Kind.EVENT,
        title=storable(typed.title),
        start=start + timedelta(hours=2),
        end=start + timedelta(hours=3),
    )
    cancelled = Appointment.objects.create(
        practice=practice,
        clinician=user,
        location=location,
        kind=Appointment.Kind.EVENT,
        title=storable(typed.title),
        status=Appointment.Status.CANCELLED,
        cancelled_at=timezone.now(),
        start=start + timedelta(days=1),
        end=start + timedelta(days=1, hours=1),
    )
    return practice, user, patients, [session, event, cancelled]


def expectations(typed: Typed, user, patients, appointments, *, practice_wide: bool):
    """{uid: (summary, status, location or None, start, end)}, as shown."""
    session, event, cancelled = appointments
    patient_initials = " & ".join(
        initials(p.first_name, p.last_name)
        for p in sorted(patients, key=lambda p: p.pk)
    )
    title = published_text(event.title) or "Event"
    prefix = ""
    if practice_wide:
        prefix = label(user.display_name, user.credentials, user.email) + ": "
    place = expected_location(session.location.name) or None
    return {
        f"{session.uid}@tend": (
            published_text(prefix + patient_initials),
            "CONFIRMED",
            place,
            session.start,
            session.end,
        ),
        f"{event.uid}@tend": (
            published_text(prefix + title),
            "CONFIRMED",
            None,
            event.start,
            event.end,
        ),
        f"{cancelled.uid}@tend": (
            "Cancelled: " + published_text(prefix + title),
            "CANCELLED",
            place,
            cancelled.start,
            cancelled.end,
        ),
    }


def read_events(body: bytes) -> dict:
    calendar = icalendar.Calendar.from_ical(body)
    for component in calendar.walk():
        assert not component.errors, component.errors
    return calendar, {
        str(e["UID"]): (
            str(e["SUMMARY"]),
            str(e["STATUS"]),
            str(e["LOCATION"]) if "LOCATION" in e else None,
            e.decoded("DTSTART"),
            e.decoded("DTEND"),
        )
        for e in calendar.walk("VEVENT")
    }


def check_feeds(client, typed: Typed) -> dict[str, tuple[bytes, dict]]:
    """Both feeds of the booked practice, each checked; {scope: (body, expected)}."""
    practice, user, patients, appointments = book(typed)
    paths = feed_paths(user)
    bodies = {}
    for scope in ("personal", "practice"):
        response = client.get(paths[scope])
        assert response.status_code == 200
        body = response.content
        assert_byte_level_ok(body)
        assert_only_expected_properties(body, events=3)
        calendar, events = read_events(body)
        want = expectations(
            typed, user, patients, appointments, practice_wide=scope == "practice"
        )
        assert events == want
        name = (
            f"{practice.name} — all clinicians"
            if scope == "practice"
            else f"{label(user.display_name, user.credentials, user.email)} — Tend"
        )
        assert calendar_text(calendar, "NAME") == published_text(name)
        assert calendar_text(calendar, "X-WR-CALNAME") == published_text(name)
        assert str(calendar["X-WR-TIMEZONE"]) == "America/New_York"
        bodies[scope] = (body, want)
    return bodies


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@example(NASTY_EXAMPLE)
@given(typed=typed)
def test_any_text_reads_back_as_exactly_the_booked_events(db, client, typed):
    with rolled_back():
        check_feeds(client, typed)
