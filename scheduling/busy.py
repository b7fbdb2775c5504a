"""A clinician's personal busy time as SCHEDULING reads it: the intervals of their
personal calendars (``BusyTime``), merged across calendars, for the calendar views
and the booking check.

What a busy block may say is fixed here: its time, whether it is tentative, and
whether the calendar behind it is out of date. Tend keeps nothing else of a
personal calendar, so nothing else can leak; the wording is in ``busy_label``."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from practice.dates import format_day_month
from practice.models import Practice
from scheduling.models import BusyTime

BUSY = "Busy (personal)"
TENTATIVE = "Busy (personal, tentative)"


@dataclass(frozen=True)
class BusyBlock:
    """One stretch of a clinician's personal busy time: overlapping intervals of
    their calendars merged (tentative and confirmed time apart). ``stale`` when a
    calendar behind it has not been read for a day; ``read_at`` is then that
    calendar's last good read (None if it never had one)."""

    clinician_id: int
    start: datetime
    end: datetime
    tentative: bool
    stale: bool = False
    read_at: datetime | None = None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and self.end > start


def busy_times(
    *,
    practice: Practice | None,
    clinician_ids: Iterable[int],
    start: datetime,
    end: datetime,
    now: datetime | None = None,
) -> list[BusyBlock]:
    """The busy time of these clinicians of ``practice`` that overlaps
    [``start``, ``end``), merged per clinician, by clinician and start. One query
    (on the ``busytime_lookup`` index); another practice's rows are never read,
    and a user of no practice has none."""
    clinician_ids = sorted(set(clinician_ids))
    if practice is None or not clinician_ids or end <= start:
        return []
    now = now or timezone.now()
    rows = _busy_rows(
        practice=practice, clinician_ids=clinician_ids, start=start, end=end
    )
    blocks: list[BusyBlock] = []
    for row in rows:
        stale = row.calendar.is_stale(now)
        read_at = row.calendar.read_at if stale else None
        last = blocks[-1] if blocks else None
        if (
            last is not None
            and last.clinician_id == row.clinician_id
            and last.tentative == row.tentative
            and row.start <= last.end
        ):
            blocks[-1] = BusyBlock(
                clinician_id=last.clinician_id,
                start=last.start,
                end=max(last.end, row.end),
                tentative=last.tentative,
                stale=last.stale or stale,
                read_at=_oldest(last, stale=stale, read_at=read_at),
            )
            continue
        blocks.append(
            BusyBlock(
                clinician_id=row.clinician_id,
                start=row.start,
                end=row.end,
                tentative=row.tentative,
                stale=stale,
                read_at=read_at,
            )
        )
    blocks.sort(key=lambda block: (block.clinician_id, block.start, block.tentative))
    return blocks


def _busy_rows(
    *, practice: Practice, clinician_ids: list[int], start: datetime, end: datetime
) -> QuerySet[BusyTime]:
    """The rows behind ``busy_times``, in the order it merges them."""
    return (
        BusyTime.objects.filter(
            practice=practice,
            clinician_id__in=clinician_ids,
            start__lt=end,
            end__gt=start,
        )
        .select_related("calendar")
        .only("clinician_id", "start", "end", "tentative", "calendar__read_at")
        .order_by("clinician_id", "tentative", "start")
    )


def _oldest(
    block: BusyBlock, *, stale: bool, read_at: datetime | None
) -> datetime | None:
    """The last good read to name for a merged stale block: the oldest one, and
    None (never read) before any date."""
    if not block.stale:
        return read_at
    if not stale:
        return block.read_at
    if block.read_at is None or read_at is None:
        return None
    return min(block.read_at, read_at)


def busy_label(block: BusyBlock) -> str:
    """ "Busy (personal)" or "Busy (personal, tentative)"."""
    return TENTATIVE if block.tentative else BUSY


def busy_stale_note(block: BusyBlock, zone) -> str:
    """Why the block may be out of date ("not updated since 28 Nov"), or ""."""
    if not block.stale:
        return ""
    if block.read_at is None:
        return "not updated yet"
    return f"not updated since {format_day_month(block.read_at, zone)}"
