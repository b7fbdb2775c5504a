"""Hand-built calendars for testing the harness, written with icalendar 7, and the
same sample events written by the feed writer (`feed_bytes`).

`calendar_bytes` writes what every parser here reads identically: VTIMEZONEs from
`add_missing_timezones()` with one RDATE per line and each observance's DTSTART
repeated as an RDATE, and no UID on the VCALENDAR. Its switches reproduce icalendar's
defaults, which real clients misread (see test_harness.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone

from calendarsync.ical import render_calendar, render_event
from scheduling.publication import PublishedAppointment, event_summary
from tests.conformance.harness import ParsedEvent, expected_event

STAMP = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SampleEvent:
    uid: str
    summary: str
    start: datetime
    end: datetime
    status: str = ""

    def expected(self) -> ParsedEvent:
        return expected_event(
            uid=self.uid,
            summary=self.summary,
            start=self.start,
            end=self.end,
            status=self.status,
        )


def one_rdate_per_line(calendar: Calendar) -> None:
    """Rewrite multi-valued RDATEs in VTIMEZONEs: ical.js reads only the first value."""
    for zone in calendar.walk("VTIMEZONE"):
        for observance in zone.subcomponents:
            rdates = observance.pop("RDATE", None)
            if rdates is None:
                continue
            for rdate in rdates if isinstance(rdates, list) else [rdates]:
                for value in rdate.dts:
                    observance.add("RDATE", value.dt)


def calendar_bytes(
    events: list[SampleEvent],
    *,
    raw_rdates: bool = False,
    calendar_uid: bool = False,
    timezones: bool = True,
    zone_years: tuple[int, int] | None = None,
    dtstart_as_rdate: bool = True,
) -> bytes:
    """An icalendar-built calendar of `events`. `zone_years` writes each VTIMEZONE for
    just those years (as ``Timezone.from_tzid`` does), `dtstart_as_rdate` repeats each
    observance's DTSTART among its RDATEs."""
    calendar = Calendar.new(prodid="-//Tend//Conformance samples//EN")
    if not calendar_uid:
        del calendar["UID"]
    calendar.add("X-WR-CALNAME", "Samples")
    for sample in events:
        event = Event.new(
            uid=sample.uid,
            summary=sample.summary,
            start=sample.start,
            end=sample.end,
            stamp=STAMP,
        )
        if sample.status:
            event.add("STATUS", sample.status)
        calendar.add_component(event)
    if timezones and zone_years is not None:
        first, last = zone_years
        for key in sorted({sample.start.tzinfo.key for sample in events}):
            calendar.add_component(
                Timezone.from_tzid(
                    key, first_date=date(first, 1, 1), last_date=date(last, 12, 31)
                )
            )
    elif timezones:
        calendar.add_missing_timezones()
    if timezones and not raw_rdates:
        one_rdate_per_line(calendar)
    if timezones and dtstart_as_rdate:
        repeat_dtstart_as_rdate(calendar)
    return calendar.to_ical()


def repeat_dtstart_as_rdate(calendar: Calendar) -> None:
    """Make each observance's first onset explicit: ical.js ignores DTSTART as an onset
    when RDATEs follow it."""
    for zone in calendar.walk("VTIMEZONE"):
        for observance in zone.subcomponents:
            if "RDATE" in observance:
                observance.add("RDATE", observance.DTSTART)


def without_vtimezones(ics: bytes) -> bytes:
    return re.sub(rb"BEGIN:VTIMEZONE\r\n.*?END:VTIMEZONE\r\n", b"", ics, flags=re.S)


def transitions(zone: str, year: int) -> list[date]:
    """Local dates on which `zone` changes its UTC offset during `year`."""
    tz = ZoneInfo(zone)
    found = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    previous = moment.astimezone(tz).utcoffset()
    while moment.year == year:
        moment += timedelta(hours=1)
        offset = moment.astimezone(tz).utcoffset()
        if offset != previous:
            found.append(moment.astimezone(tz).date())
            previous = offset
    return found


def zone_events(zone: str, year: int = 2026) -> list[SampleEvent]:
    """Mid-winter and mid-summer sessions, plus an overnight one across each change."""
    tz = ZoneInfo(zone)
    events = [
        SampleEvent(
            f"january-{zone}",
            "January session",
            datetime(year, 1, 15, 9, tzinfo=tz),
            datetime(year, 1, 15, 9, 50, tzinfo=tz),
        ),
        SampleEvent(
            f"july-{zone}",
            "July session",
            datetime(year, 7, 15, 9, tzinfo=tz),
            datetime(year, 7, 15, 9, 50, tzinfo=tz),
        ),
    ]
    for day in transitions(zone, year):
        before = day - timedelta(days=1)
        events.append(
            SampleEvent(
                f"overnight-{day.isoformat()}-{zone}",
                f"Overnight into {day.isoformat()}",
                datetime(before.year, before.month, before.day, 22, tzinfo=tz),
                datetime(day.year, day.month, day.day, 6, tzinfo=tz),
            )
        )
        events.append(
            SampleEvent(
                f"after-{day.isoformat()}-{zone}",
                f"Day after {day.isoformat()}",
                datetime(day.year, day.month, day.day, 9, tzinfo=tz)
                + timedelta(days=1),
                datetime(day.year, day.month, day.day, 10, tzinfo=tz)
                + timedelta(days=1),
            )
        )
    return events


def feed_bytes(events: list[SampleEvent], zone_key: str) -> bytes:
    """`events` as the feed writer publishes them for a practice in `zone_key`: each
    summary is an event title, its UID gains "@tend" (see `feed_expected`)."""
    feed_events = [
        PublishedAppointment(
            uid=sample.uid,
            sequence=0,
            created_at=STAMP,
            changed_at=STAMP,
            start=sample.start,
            end=sample.end,
            cancelled=False,
            summary=event_summary(
                is_event=True,
                title=sample.summary,
                initials=(),
                clinician_label=None,
                cancelled=False,
            ),
            location="",
        )
        for sample in sorted(events, key=lambda sample: sample.start)
    ]
    years = [sample.start.year for sample in events] or [STAMP.year]
    return render_calendar(
        name="Samples",
        zone_key=zone_key,
        fragments=[render_event(event, zone_key) for event in feed_events],
        years=(min(years), max(years)),
        complete=(date(min(years), 1, 1), date(max(years), 12, 31)),
        truncated=False,
    )


def feed_expected(events: list[SampleEvent], summary=None) -> list[ParsedEvent]:
    """What every parser should read from `feed_bytes(events, ...)`; `summary` maps a
    title to the text the feed publishes for it (by default the title itself)."""
    return [
        expected_event(
            uid=f"{sample.uid}@tend",
            summary=sample.summary if summary is None else summary(sample.summary),
            status="CONFIRMED",
            start=sample.start,
            end=sample.end,
        )
        for sample in events
    ]
