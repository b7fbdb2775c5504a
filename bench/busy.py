"""S7: reading a personal calendar as busy time (``calendarsync.busy_read``,
``busy_sources``): a calendar of ``busy_events`` events, ``busy_series`` of them
recurring, served over loopback by a plain HTTP server, fetched through the
outbound rules, parsed, expanded over today..90 days and stored as merged
intervals.

Figures: the whole read (fetch, parse, expand, merge, replace the rows) with the
calendar changed each time, in wall time and in this process's CPU time; fetch,
parse and expand alone; an unchanged read (a 304); peak memory of a whole read
(tracemalloc); bytes, occurrences and intervals kept."""

from __future__ import annotations

import random
import threading
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.test import override_settings
from django.utils import timezone

from bench.seed import Seeded, Size

ZONES = ["America/New_York", "W. Europe Standard Time", "Europe/London", None]
RULES = [
    "FREQ=WEEKLY;BYDAY=MO,WE",
    "FREQ=WEEKLY;INTERVAL=2",
    "FREQ=DAILY;COUNT=400",
    "FREQ=MONTHLY;BYMONTHDAY=15",
    "FREQ=WEEKLY;UNTIL=20271231T000000Z",
]
TEXT = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod. "


def _moment(name: str, when: datetime, zone: str | None) -> str:
    if zone is None:
        return f"{name}:{when.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return f"{name};TZID={zone}:{when:%Y%m%dT%H%M%S}"


def personal_calendar(*, events: int, series: int, today: datetime) -> bytes:
    """A realistic exported calendar: single events from a month back to four
    months ahead (some all-day, some free, some cancelled), and ``series``
    recurring ones begun up to a year back, with exclusions and moved
    occurrences; titles, places and descriptions of ordinary length."""
    rng = random.Random(6)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
        "X-WR-CALNAME:Bench personal",
        "X-WR-TIMEZONE:America/New_York",
    ]
    for number in range(events):
        recurring = number < series
        days = rng.randint(-365, 0) if recurring else rng.randint(-30, 120)
        start = (today + timedelta(days=days)).replace(
            hour=rng.randint(7, 19), minute=rng.choice([0, 15, 30, 45])
        )
        end = start + timedelta(minutes=rng.choice([30, 45, 60, 90, 120]))
        zone = rng.choice(ZONES)
        uid = f"{number:06d}-{rng.getrandbits(48):012x}@google.com"
        event = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T120000Z"]
        if not recurring and number % 40 == 0:
            event += [
                f"DTSTART;VALUE=DATE:{start:%Y%m%d}",
                f"DTEND;VALUE=DATE:{start + timedelta(days=1):%Y%m%d}",
            ]
        else:
            event += [_moment("DTSTART", start, zone), _moment("DTEND", end, zone)]
        if recurring:
            event.append(f"RRULE:{RULES[number % len(RULES)]}")
            for skip in range(1, 3):
                excluded = start + timedelta(weeks=skip * 20)
                event.append(_moment("EXDATE", excluded, zone))
        event += [
            f"SUMMARY:Event {number} {TEXT[: rng.randint(10, 40)]}",
            f"LOCATION:{rng.randint(1, 999)} Main Street",
            f"DESCRIPTION:{TEXT * rng.randint(1, 3)}",
            "TRANSP:TRANSPARENT" if number % 17 == 0 else "TRANSP:OPAQUE",
            "STATUS:CANCELLED" if number % 29 == 0 else "STATUS:CONFIRMED",
            "END:VEVENT",
        ]
        lines += event
        if recurring and number % 3 == 0:
            moved = start + timedelta(weeks=30)
            lines += [
                "BEGIN:VEVENT",
                f"UID:{uid}",
                "DTSTAMP:20261101T120000Z",
                _moment("RECURRENCE-ID", moved, zone),
                _moment("DTSTART", moved + timedelta(hours=2), zone),
                _moment("DTEND", moved + timedelta(hours=3), zone),
                f"SUMMARY:Event {number} (moved)",
                "END:VEVENT",
            ]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    body = b""
    etag = ""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.headers.get("If-None-Match") == self.server.etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar; charset=utf-8")
        self.send_header("ETag", self.server.etag)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)


def _median(samples: list[float]) -> float:
    ordered = sorted(samples)
    return round(ordered[len(ordered) // 2] * 1000, 1)


def s7(seeded: Seeded, size: Size) -> dict:
    from calendarsync.busy_read import ics_fetch, read_busy
    from calendarsync.busy_sources import busy_source_add_ics, busy_source_read
    from calendarsync.models import BusySource
    from scheduling.busy_services import busy_window
    from scheduling.models import BusyTime

    clinician = seeded.clinicians[0]
    practice = clinician.practice
    now = timezone.now()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.body = personal_calendar(
        events=size.busy_events, series=size.busy_series, today=now
    )
    server.etag = '"0"'
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/basic.ics"
    repeats = max(3, size.repeats // 8)
    try:
        with override_settings(OUTBOUND_ALLOWED_NETWORKS=["127.0.0.0/8"]):
            source = busy_source_add_ics(user=clinician, url=url, name="Bench")
            source = BusySource.objects.select_related(
                "calendar", "practice", "owner"
            ).get(pk=source.pk)
            window = busy_window(practice=practice, now=now)

            parse_times = []
            occurrences = 0
            for _ in range(repeats):
                started = time.perf_counter()
                fetched = ics_fetch(url)
                parsed = read_busy(fetched.bodies, zone=practice.zone, window=window)
                parse_times.append(time.perf_counter() - started)
                occurrences = len(parsed.intervals)

            read_times = []
            read_cpu = []
            for number in range(repeats):
                server.etag = f'"{number + 1}"'  # changed: read in full
                started = time.perf_counter()
                cpu = time.process_time()
                outcome = busy_source_read(source=source)
                read_cpu.append(time.process_time() - cpu)
                read_times.append(time.perf_counter() - started)
                assert outcome.result == "read", outcome

            unchanged_times = []
            for _ in range(repeats):
                source.refresh_from_db()
                started = time.perf_counter()
                outcome = busy_source_read(source=source)
                unchanged_times.append(time.perf_counter() - started)
                assert outcome.result == "unchanged", outcome

            server.etag = '"peak"'
            source.refresh_from_db()
            tracemalloc.start()
            busy_source_read(source=source)
            _current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            kept = BusyTime.objects.filter(calendar=source.calendar).count()
    finally:
        server.shutdown()
        server.server_close()
    return {
        "events": size.busy_events,
        "series": size.busy_series,
        "calendar_bytes": len(server.body),
        "occurrences_in_window": occurrences,
        "intervals_kept": kept,
        "read_ms": _median(read_times),
        # CPU time of this process (the loopback server's thread included): the
        # wall time's floor on an otherwise idle machine.
        "read_cpu_ms": _median(read_cpu),
        "fetch_parse_expand_ms": _median(parse_times),
        "unchanged_304_ms": _median(unchanged_times),
        "read_peak_bytes": peak,
        "read_peak_ratio": round(peak / len(server.body), 2),
    }
