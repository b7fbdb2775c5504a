"""Tend's one way of writing dates and times for people: "29 Nov 2026",
"29 Nov 2026, 09:51", "09:51", in the practice's time zone (the zone the
request activated, or the one given). Templates use it through the ``tend_dates``
filters; machine values (URLs, form inputs, ``<time datetime>``) use the ISO ones
here too, so that no template writes a format of its own."""

from datetime import date, datetime, tzinfo

from django.utils import timezone

DATE = "%-d %b %Y"
TIME = "%H:%M"


def _local(value: datetime, zone: tzinfo | None = None) -> datetime:
    if timezone.is_naive(value):
        return value
    return timezone.localtime(value, zone)


def _day(value: date | datetime, zone: tzinfo | None = None) -> date:
    return _local(value, zone).date() if isinstance(value, datetime) else value


def format_date(value: date | datetime, zone: tzinfo | None = None) -> str:
    """ "29 Nov 2026"."""
    return f"{_day(value, zone):{DATE}}"


def format_datetime(value: datetime, zone: tzinfo | None = None) -> str:
    """ "29 Nov 2026, 09:51"."""
    return f"{_local(value, zone):{DATE}, {TIME}}"


def format_time(value: datetime, zone: tzinfo | None = None) -> str:
    """ "09:51"."""
    return f"{_local(value, zone):{TIME}}"


def format_moment(value: datetime, zone: tzinfo | None = None, *, now: datetime) -> str:
    """ "09:51" on the day of ``now``, "29 Nov 2026, 09:51" another day: when
    something happened, said as briefly as is still clear."""
    if _day(value, zone) == _day(now, zone):
        return format_time(value, zone)
    return format_datetime(value, zone)


def format_weekday_date(value: date | datetime, zone: tzinfo | None = None) -> str:
    """ "Sun 29 Nov 2026"."""
    return f"{format_weekday(value, zone)} {format_date(value, zone)}"


def format_weekday_datetime(value: datetime, zone: tzinfo | None = None) -> str:
    """ "Sun 29 Nov 2026, 09:51"."""
    return f"{format_weekday(value, zone)} {format_datetime(value, zone)}"


def format_day(value: date | datetime, zone: tzinfo | None = None) -> str:
    """A day heading where the year goes without saying: "Sunday 29 November"."""
    return f"{_day(value, zone):%A %-d %B}"


def format_day_month(value: date | datetime, zone: tzinfo | None = None) -> str:
    """ "29 Nov"."""
    return f"{_day(value, zone):%-d %b}"


def format_weekday(value: date | datetime, zone: tzinfo | None = None) -> str:
    """ "Sun"."""
    return f"{_day(value, zone):%a}"


def format_month(value: date | datetime, zone: tzinfo | None = None) -> str:
    """ "November"."""
    return f"{_day(value, zone):%B}"


def iso_date(value: date | datetime, zone: tzinfo | None = None) -> str:
    """ "2026-11-29", for URLs and date inputs."""
    return _day(value, zone).isoformat()


def iso_datetime(value: datetime, zone: tzinfo | None = None) -> str:
    """ "2026-11-29T09:51:00-05:00", for ``<time datetime>``."""
    return _local(value, zone).isoformat()
