"""The two baselines the feed is measured against.

B0 returns the very bytes of a feed, rendered beforehand: no database, no rendering,
only Django's request and response path — the practical limit for a Python server.
N is what a typical implementation does on every request: load the appointments as
model objects and build the calendar with ``icalendar`` objects."""

import gzip
import os
from datetime import date, datetime, time, timedelta
from pathlib import Path

import icalendar
from django.http import Http404, HttpResponse

from calendarsync import tokens
from calendarsync.models import FeedScope
from calendarsync.permissions import access_feed_link
from calendarsync.selectors import feed_calendar_name, feed_link_for_poll
from calendarsync.views import _gzip_accepted
from scheduling.models import Appointment
from scheduling.names import initials
from scheduling.publication import calendar_days, shown

PRERENDERED: dict[str, tuple[bytes, bytes, str]] = {}


def prerendered_store(name: str, raw: bytes, etag: str) -> None:
    """Keep a feed's bytes for B0, in this process and on disk for gunicorn."""
    zipped = gzip.compress(raw, compresslevel=6, mtime=0)
    PRERENDERED[name] = (raw, zipped, etag)
    folder = os.environ.get("BENCH_DIR")
    if folder:
        Path(folder, f"b0-{name}.ics").write_bytes(raw)
        Path(folder, f"b0-{name}.etag").write_text(etag)


def _load(name: str) -> tuple[bytes, bytes, str]:
    if name not in PRERENDERED:
        folder = os.environ.get("BENCH_DIR")
        if not folder or not Path(folder, f"b0-{name}.ics").exists():
            raise Http404
        raw = Path(folder, f"b0-{name}.ics").read_bytes()
        etag = Path(folder, f"b0-{name}.etag").read_text()
        PRERENDERED[name] = (raw, gzip.compress(raw, compresslevel=6, mtime=0), etag)
    return PRERENDERED[name]


def prerendered(request, name: str) -> HttpResponse:
    """B0: the same feed as pre-rendered bytes."""
    raw, zipped, etag = _load(name)
    use_gzip = _gzip_accepted(request)
    body = zipped if use_gzip else raw
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    if use_gzip:
        response["Content-Encoding"] = "gzip"
    response["Content-Length"] = str(len(body))
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


def naive(request, token: str) -> HttpResponse:
    """N: the same events, loaded as objects and rendered with icalendar."""
    parts = tokens.split_token(token)
    if parts is None:
        raise Http404
    now = datetime.now().astimezone()
    link = access_feed_link(feed_link_for_poll(public_id=parts[0], now=now), parts[1])
    practice = link.access.practice
    first_day, after_last_day = calendar_days(
        scope=link.scope, zone=practice.zone, now=now
    )
    if request.GET.get("from"):
        first_day = date.fromisoformat(request.GET["from"])
    if request.GET.get("until"):
        after_last_day = date.fromisoformat(request.GET["until"]) + timedelta(days=1)
    zone = practice.zone
    appointments = (
        Appointment.objects.filter(
            shown(now),
            practice=practice,
            start__lt=datetime.combine(after_last_day, time(0), tzinfo=zone),
            end__gt=datetime.combine(first_day, time(0), tzinfo=zone),
        )
        .select_related("clinician", "location")
        .prefetch_related("patients")
        .order_by("start", "id")
    )
    if link.scope != FeedScope.PRACTICE:
        appointments = appointments.filter(clinician=link.clinician)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Tend//Naive//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", feed_calendar_name(link=link))
    for appointment in appointments:
        cancelled = appointment.deleted_at is not None or appointment.is_cancelled
        if appointment.kind == Appointment.Kind.EVENT:
            summary = appointment.title
        else:
            summary = " & ".join(
                initials(patient.first_name, patient.last_name)
                for patient in appointment.patients.all()
            )
        if link.scope == FeedScope.PRACTICE:
            summary = f"{appointment.clinician.label}: {summary}"
        event = icalendar.Event()
        event.add("uid", f"{appointment.uid}@tend")
        event.add("dtstamp", appointment.updated_at)
        event.add("dtstart", appointment.start.astimezone(zone))
        event.add("dtend", appointment.end.astimezone(zone))
        event.add("sequence", appointment.sequence)
        event.add("created", appointment.created_at)
        event.add("last-modified", appointment.updated_at)
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        event.add("summary", ("Cancelled: " if cancelled else "") + summary)
        if appointment.location:
            event.add("location", appointment.location.name)
        calendar.add_component(event)
    calendar.add_missing_timezones()
    body = calendar.to_ical()
    use_gzip = _gzip_accepted(request)
    if use_gzip:
        body = gzip.compress(body, compresslevel=6, mtime=0)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    if use_gzip:
        response["Content-Encoding"] = "gzip"
    return response
