"""Occurrence dates of a recurring series, computed in local wall-clock time.

Occurrences repeat the first one's local time of day, so a weekly 9:00 appointment
stays at 9:00 when daylight saving time begins or ends; its UTC instant moves instead.
"""

import calendar
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

WEEKLY = "weekly"
MONTHLY = "monthly"


class NonexistentLocalTime(ValueError):
    """A wall-clock time skipped by a daylight-saving change (e.g. 2:30 in March)."""


@dataclass(frozen=True)
class Recurrence:
    """How a series repeats: every ``interval`` weeks or months, ``count`` times or
    until ``until`` (inclusive, a local date)."""

    frequency: str
    interval: int = 1
    count: int | None = None
    until: date | None = None


def local_to_utc(naive: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time in ``zone``; raises NonexistentLocalTime
    for a time that the clocks skip. An ambiguous time (clocks going back) is taken as
    its first occurrence."""
    aware = naive.replace(tzinfo=zone, fold=0)
    instant = aware.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != naive:
        raise NonexistentLocalTime(naive.isoformat(timespec="minutes"))
    return instant


def local_to_utc_or_later(naive: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """``local_to_utc``, except that a time the clocks skip that day moves forward
    by the length of the gap (a weekly 2:30 lands at 3:30 on the spring-forward
    day), as recurring occurrences do."""
    try:
        return local_to_utc(naive, zone)
    except NonexistentLocalTime:
        return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _weekday_position(day: date) -> int:
    """1 for the first such weekday of the month ... 4; -1 for a fifth (the last)."""
    position = (day.day - 1) // 7 + 1
    return -1 if position == 5 else position


def _nth_weekday(year: int, month: int, weekday: int, position: int) -> date:
    days_in_month = calendar.monthrange(year, month)[1]
    if position == -1:
        last = date(year, month, days_in_month)
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (position - 1))


def occurrence_dates(first: date, recurrence: Recurrence, *, limit: int) -> list[date]:
    """The local dates of the series, the first included, stopping after ``limit + 1``
    dates so that a caller can tell "too many" without generating them all."""
    if recurrence.count is None and recurrence.until is None:
        raise ValueError("A series needs a count or an end date.")
    interval = max(1, recurrence.interval)
    wanted = recurrence.count if recurrence.count is not None else limit + 1
    wanted = min(wanted, limit + 1)
    dates: list[date] = []
    index = 0
    while len(dates) < wanted:
        if recurrence.frequency == WEEKLY:
            day = first + timedelta(weeks=interval * index)
        elif recurrence.frequency == MONTHLY:
            months = first.month - 1 + interval * index
            day = _nth_weekday(
                first.year + months // 12,
                months % 12 + 1,
                first.weekday(),
                _weekday_position(first),
            )
        else:
            raise ValueError(f"Unknown frequency {recurrence.frequency!r}")
        if recurrence.until is not None and day > recurrence.until:
            break
        dates.append(day)
        index += 1
    return dates


def occurrence_starts(
    first_local: datetime,
    recurrence: Recurrence,
    *,
    zone: zoneinfo.ZoneInfo,
    limit: int,
) -> list[datetime]:
    """UTC start instants of every occurrence, each at ``first_local``'s wall-clock
    time in ``zone``. An occurrence whose local time does not exist that day (clocks
    spring forward over it) moves forward by the length of the gap."""
    starts = []
    for day in occurrence_dates(first_local.date(), recurrence, limit=limit):
        starts.append(
            local_to_utc_or_later(datetime.combine(day, first_local.time()), zone)
        )
    return starts
