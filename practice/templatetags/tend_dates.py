"""Dates and times in templates, all through ``practice.dates`` (one format
everywhere, in the practice's time zone): ``{% load tend_dates %}`` then
``{{ value|tend_date }}``, ``|tend_datetime``, ``|tend_time`` and the rest. An
empty value renders as nothing, so ``|default:"—"`` still works."""

from django import template

from practice import dates

register = template.Library()


def _filter(format_value):
    def render(value):
        if value in (None, ""):
            return ""
        return format_value(value)

    render.__name__ = format_value.__name__
    render.__doc__ = format_value.__doc__
    return render


for _name, _function in {
    "tend_date": dates.format_date,
    "tend_datetime": dates.format_datetime,
    "tend_time": dates.format_time,
    "tend_day": dates.format_day,
    "tend_day_month": dates.format_day_month,
    "tend_weekday": dates.format_weekday,
    "tend_month": dates.format_month,
    "iso_date": dates.iso_date,
    "iso_datetime": dates.iso_datetime,
}.items():
    register.filter(_name, _filter(_function))
