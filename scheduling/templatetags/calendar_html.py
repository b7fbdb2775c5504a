"""The calendar's repeated pieces (appointment blocks, bookable slots, month
chips, agenda lines) written in Python: a week of 25 clinicians draws about a
thousand of them, and the template engine's per-node cost would be most of the
page's time. The markup is the same the template would write; every value is
escaped."""

from functools import lru_cache

from django import template
from django.urls import get_script_prefix, reverse
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_PLACEHOLDER = "999999999"


@lru_cache(maxsize=8)
def _paths(script_prefix: str) -> tuple[str, str]:
    """The appointment page (with ``{}`` for its id) and the booking form."""
    appointment = reverse("scheduling:appointment", args=[int(_PLACEHOLDER)])
    return appointment.replace(_PLACEHOLDER, "{}"), reverse(
        "scheduling:appointment_new"
    )


def _appointment_url(appointment_id: int) -> str:
    return _paths(get_script_prefix())[0].format(appointment_id)


def _classes(entry) -> str:
    appointment = entry.appointment
    classes = f"status-{appointment.status} kind-{appointment.kind}"
    return classes + (" is-cancelled" if appointment.is_cancelled else "")


@register.simple_tag
def cal_entry(entry, page, first=None) -> SafeString:
    """One appointment block of a week or day column."""
    appointment = entry.appointment
    start, end = f"{entry.start:%H:%M}", f"{entry.end:%H:%M}"
    lines = [
        format_html('<span class="cal-time">{}–{}</span>', start, end),
        format_html('<span class="cal-time cal-start">{}</span>', start),
        format_html('<span class="cal-what">{}</span>', entry.title),
        format_html('<span class="cal-short">{}</span>', entry.short_title),
    ]
    if page.all_clinicians and page.view != "day":
        lines.append(
            format_html(
                '<span class="cal-who">{}</span>', appointment.clinician.display_name
            )
        )
    if appointment.location is not None:
        lines.append(
            format_html('<span class="cal-where">{}</span>', appointment.location.name)
        )
    if appointment.status != "scheduled":
        lines.append(
            format_html(
                '<span class="cal-flag">{}</span>', appointment.get_status_display()
            )
        )
    anchor = format_html(' id="{}"', "first-appointment") if entry is first else ""
    return format_html(
        '<a class="cal-entry r-{} s-{} lane-{} w-{} {}" href="{}"{}>{}</a>',
        entry.row,
        entry.span,
        entry.lane,
        entry.width,
        _classes(entry),
        _appointment_url(appointment.pk),
        anchor,
        format_html_join("", "{}", ((line,) for line in lines)),
    )


@register.simple_tag
def cal_slots(column) -> SafeString:
    """The bookable half hours of a week or day column."""
    new = _paths(get_script_prefix())[1]
    clinician = column.clinician
    query = f"&amp;clinician={clinician.pk}" if clinician else ""
    with_whom = conditional_escape(f" with {clinician.label}") if clinician else ""
    day = f"{column.day:%a %-d %b}"
    # Escaped once for the column; the rest is digits and Tend's own path. A
    # day of 25 clinicians has 700 of these: escaping each part of each one was
    # a third of the page's time.
    return mark_safe(  # noqa: S308 - every interpolated value is escaped above
        "".join(
            f'<a class="cal-slot r-{slot.row}" href="{new}?start={slot.param}'
            f'{query}"><span class="visually-hidden">Book {day} at '
            f"{slot.start:%H:%M}{with_whom}</span></a>"
            for slot in column.slots
        )
    )


@register.simple_tag
def month_chip(entry, page) -> SafeString:
    """One appointment of a month cell: its start and who it is with (and, when
    several clinicians share the page, whose it is)."""
    appointment = entry.appointment
    owner = (
        format_html(" — {}", appointment.clinician.display_name)
        if page.all_clinicians
        else ""
    )
    flag = (
        format_html(
            ' <span class="cal-flag">({})</span>',
            appointment.get_status_display().lower(),
        )
        if appointment.is_cancelled
        else ""
    )
    return format_html(
        '<a class="cal-chip {}" href="{}"><span class="cal-time">{}</span> {}{}{}</a>',
        _classes(entry),
        _appointment_url(appointment.pk),
        f"{entry.start:%H:%M}",
        entry.title,
        owner,
        flag,
    )


@register.simple_tag
def agenda_item(entry, page) -> SafeString:
    """One line of the agenda: time, who, whose (when several clinicians share
    the page) and status."""
    appointment = entry.appointment
    who = (
        format_html(
            '<span class="agenda-who">{}</span> ', appointment.clinician.display_name
        )
        if page.all_clinicians
        else ""
    )
    return format_html(
        '<a class="agenda-item {}" href="{}"><span class="agenda-time">{}–{}</span> '
        '<span class="agenda-what">{}</span> <span class="agenda-meta">{}'
        '<span class="agenda-status">{}</span></span></a>',
        _classes(entry),
        _appointment_url(appointment.pk),
        f"{entry.start:%H:%M}",
        f"{entry.end:%H:%M}",
        entry.title,
        who,
        appointment.get_status_display(),
    )


def _busy_classes(busy) -> str:
    """Extra classes (each with its leading space): a line of busy time is short,
    and the agenda of 25 clinicians carries hundreds."""
    tentative = " is-tentative" if busy.block.tentative else ""
    return tentative + (" is-stale" if busy.block.stale else "")


def _busy_owner(busy, page, css: str) -> str:
    """Whose busy time it is, where several clinicians share a column."""
    if page.all_clinicians and page.view != "day":
        return format_html(
            '<span class="{}">{}</span>', css, busy.clinician.display_name
        )
    return ""


@register.simple_tag
def cal_busy(busy, page) -> SafeString:
    """One stretch of personal busy time in a week or day column: its time and
    "Busy (personal)" (whose, where clinicians share the column; "not updated
    since …" when its calendar is stale). Not a link: there is nothing to open."""
    start, end = f"{busy.start:%H:%M}", f"{busy.end:%H:%M}"
    stale = (
        format_html('<span class="cal-flag">{}</span>', busy.stale_note)
        if busy.stale_note
        else ""
    )
    return format_html(
        '<div class="cal-entry cal-busy r-{} s-{} lane-{} w-{}{}">'
        '<span class="cal-time">{}–{}</span>'
        '<span class="cal-time cal-start">{}</span>'
        '<span class="cal-what">{}</span>'
        '<span class="cal-short">Busy<span class="visually-hidden"> {}</span></span>'
        "{}{}</div>",
        busy.row,
        busy.span,
        busy.lane,
        busy.width,
        _busy_classes(busy),
        start,
        end,
        start,
        busy.label,
        busy.label.removeprefix("Busy "),
        _busy_owner(busy, page, "cal-who"),
        stale,
    )


@register.simple_tag
def agenda_busy(busy, page) -> SafeString:
    """One line of personal busy time in the agenda, among the appointments."""
    stale = (
        format_html('<span class="agenda-status">{}</span>', busy.stale_note)
        if busy.stale_note
        else ""
    )
    return format_html(
        '<div class="agenda-item agenda-busy{}"><span class="agenda-time">{}–{}'
        '</span> <span class="agenda-what">{}</span> <span class="agenda-meta">{}{}'
        "</span></div>",
        _busy_classes(busy),
        f"{busy.start:%H:%M}",
        f"{busy.end:%H:%M}",
        busy.label,
        _busy_owner(busy, page, "agenda-who"),
        stale,
    )
