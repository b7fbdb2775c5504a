"""Writes for busy time: a clinician's personal calendars, kept as the start and
end of each busy interval only (``BusyCalendar``, ``BusyTime``).

Whoever reads a personal calendar (``calendarsync``) hands its intervals here; this
module alone merges, clips and stores them. A read that failed never calls it, so
the last good intervals stay until a good read replaces them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from practice.models import Practice
from scheduling.models import BusyCalendar, BusyTime

# Busy time is kept from the start of today (in the practice's zone) this far ahead.
DAYS_AHEAD = 90


@dataclass(frozen=True, slots=True)
class BusyInterval:
    """One busy stretch: aware start and end, and whether it is only tentative."""

    start: datetime
    end: datetime
    tentative: bool = False


def busy_window(*, practice: Practice, now: datetime) -> tuple[datetime, datetime]:
    """From the start of today to the start of the day 90 days ahead, in the
    practice's zone (aware datetimes)."""
    zone = practice.zone
    today: date = timezone.localtime(now, zone).date()
    start = datetime.combine(today, time(0), zone)
    end = datetime.combine(today + timedelta(days=DAYS_AHEAD), time(0), zone)
    return start, end


def busy_intervals_merge(
    intervals: Iterable[BusyInterval], *, window: tuple[datetime, datetime]
) -> list[BusyInterval]:
    """The intervals clipped to ``window``, overlapping or touching ones merged, in
    order. A merged interval is tentative only if every interval in it was."""
    window_start, window_end = window
    clipped = sorted(
        (
            BusyInterval(
                max(interval.start, window_start),
                min(interval.end, window_end),
                interval.tentative,
            )
            for interval in intervals
            if interval.end > window_start and interval.start < window_end
        ),
        key=lambda interval: interval.start,
    )
    merged: list[BusyInterval] = []
    for interval in clipped:
        if interval.end <= interval.start:
            continue
        if merged and interval.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = BusyInterval(
                last.start,
                max(last.end, interval.end),
                last.tentative and interval.tentative,
            )
        else:
            merged.append(interval)
    return merged


def busy_times_replace(
    *,
    calendar: BusyCalendar,
    intervals: Iterable[BusyInterval],
    read_at: datetime,
    now: datetime | None = None,
) -> int:
    """Replace the calendar's busy time with ``intervals`` (merged and clipped to
    today..90 days ahead) and mark it read at ``read_at``, in one transaction.
    Returns how many intervals are kept."""
    now = now or timezone.now()
    merged = busy_intervals_merge(
        intervals, window=busy_window(practice=calendar.practice, now=now)
    )
    with transaction.atomic():
        BusyTime.objects.filter(calendar=calendar).delete()
        BusyTime.objects.bulk_create(
            BusyTime(
                calendar=calendar,
                practice_id=calendar.practice_id,
                clinician_id=calendar.clinician_id,
                start=interval.start,
                end=interval.end,
                tentative=interval.tentative,
            )
            for interval in merged
        )
        BusyCalendar.objects.filter(pk=calendar.pk).update(read_at=read_at)
    calendar.read_at = read_at
    return len(merged)


def busy_read_confirm(*, calendar: BusyCalendar, read_at: datetime) -> None:
    """A read found the calendar unchanged (HTTP 304, the same CalDAV ctag): the
    kept intervals are current as of ``read_at``."""
    BusyCalendar.objects.filter(pk=calendar.pk).update(read_at=read_at)
    calendar.read_at = read_at


def busy_times_clear(*, clinician_ids: Iterable[int]) -> int:
    """Forget the busy time of these clinicians' calendars (a clinician who was
    deactivated or lost the role): their calendars are no longer read, so their
    intervals are no longer known. Returns how many intervals went."""
    ids = list(clinician_ids)
    with transaction.atomic():
        deleted, _ = BusyTime.objects.filter(clinician_id__in=ids).delete()
        BusyCalendar.objects.filter(clinician_id__in=ids).update(read_at=None)
    return deleted
