"""Every read of the scheduling app, scoped to the acting user's practice and rights."""

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Prefetch, Q, QuerySet, prefetch_related_objects
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from practice.hooks import AuditPatient
from practice.models import Practice, User
from practice.selectors import clinician_list
from scheduling.busy import BusyBlock, busy_label, busy_stale_note, busy_times
from scheduling.models import (
    Appointment,
    AppointmentChange,
    Location,
    Patient,
    Service,
    Team,
)
from scheduling.names import search_fold
from scheduling.permissions import (
    can_schedule_for,
    can_see_busy_time,
    visible_appointments,
    visible_patients,
)

# -- patients -----------------------------------------------------------------------


def patient_list(
    *, user: User, query: str = "", include_inactive: bool = False
) -> QuerySet[Patient]:
    """Patients ``user`` may see whose names contain every word of ``query``
    (accents, case and apostrophes ignored), by last name."""
    patients = visible_patients(user).select_related("primary_clinician")
    if not include_inactive:
        patients = patients.filter(is_active=True)
    for word in search_fold(query).split()[:6]:
        patients = patients.filter(search_name__contains=word)
    return patients.order_by("last_name", "first_name", "pk")


def patient_appointments(*, user: User, patient: Patient) -> QuerySet[Appointment]:
    """The live appointments of ``patient`` that ``user`` may see, newest first."""
    return (
        visible_appointments(user)
        .filter(patients=patient)
        .select_related("clinician", "service", "location")
        .order_by("-start")
    )


def bookable_patients(*, user: User) -> QuerySet[Patient]:
    """Active patients ``user`` may put on an appointment."""
    return (
        visible_patients(user)
        .filter(is_active=True)
        .order_by("last_name", "first_name")
    )


def clinician_choices(*, user: User, include_inactive: bool = False) -> QuerySet[User]:
    """The clinicians ``user`` may book for: every clinician of the practice for
    administrators and schedulers, themselves for a clinician."""
    clinicians = clinician_list(
        practice=user.practice, include_inactive=include_inactive
    )
    if not user.can_manage_all_schedules:
        clinicians = clinicians.filter(pk=user.pk)
    return clinicians.order_by("-is_active", "display_name", "email")


def primary_clinician_choices(
    *, user: User, patient: Patient | None = None
) -> QuerySet[User]:
    """The clinicians ``user`` may name as ``patient``'s primary clinician: those
    they may book for, and always the patient's current one (even if deactivated),
    so that saving the form keeps it. A clinician editing a colleague's patient may
    only keep the colleague: handing a patient over is for administrators and
    schedulers."""
    current = patient.primary_clinician_id if patient is not None else None
    if current is not None and current != user.pk and not user.can_manage_all_schedules:
        # Whatever the colleague's roles are now: the form keeps them as they are.
        return User.objects.filter(pk=current, practice_id=user.practice_id)
    allowed = Q(is_active=True)
    if not user.can_manage_all_schedules:
        allowed &= Q(pk=user.pk)
    if current is not None:
        allowed |= Q(pk=current)
    return (
        User.objects.filter(practice_id=user.practice_id, is_clinician=True)
        .filter(allowed)
        .order_by("-is_active", "display_name", "email")
    )


def service_list(*, practice, include_inactive: bool = True) -> QuerySet[Service]:
    """The practice's services, active first."""
    services = Service.objects.filter(practice=practice)
    if not include_inactive:
        services = services.filter(is_active=True)
    return services.order_by("-is_active", "name")


def location_list(*, practice, include_inactive: bool = True) -> QuerySet[Location]:
    """The practice's locations, active first, Telehealth last."""
    locations = Location.objects.filter(practice=practice)
    if not include_inactive:
        locations = locations.filter(is_active=True)
    return locations.order_by("-is_active", "is_telehealth", "name")


def team_list(*, practice) -> QuerySet[Team]:
    """The practice's teams, by name, with how many clinicians each has."""
    return (
        Team.objects.filter(practice=practice)
        .annotate(member_count=Count("members"))
        .order_by("name")
    )


def appointment_history(*, appointment: Appointment) -> QuerySet[AppointmentChange]:
    """Who changed what on ``appointment``, newest first."""
    return AppointmentChange.objects.filter(appointment=appointment).select_related(
        "actor"
    )


def series_overview(*, appointment: Appointment) -> dict | None:
    """Position of ``appointment`` in its series and how many live occurrences the
    series has, or None for a single appointment."""
    if appointment.series_id is None:
        return None
    counts = Appointment.objects.filter(
        series_id=appointment.series_id, deleted_at__isnull=True
    ).aggregate(
        count=Count("pk"),
        following=Count("pk", filter=Q(series_index__gt=appointment.series_index or 0)),
    )
    return {"series": appointment.series, **counts}


# -- calendar -----------------------------------------------------------------------

WEEK, DAY, MONTH, AGENDA = "week", "day", "month", "agenda"
ROW_MINUTES = 15
SLOT_MINUTES = 30
DEFAULT_FIRST_HOUR, DEFAULT_LAST_HOUR = 7, 21
# Side-by-side lanes in a day column; overlapping appointments beyond that are
# counted in a "+N more" marker in a lane of its own.
MAX_LANES = 6
MONTH_CELL_LIMIT = 4
AGENDA_DAYS = 7
# The week view may show fewer days (phones ask for one or three).
WEEK_SPANS = (1, 3, 7)
CALENDAR_FIELDS = (
    "id",
    "practice_id",
    "clinician_id",
    "kind",
    "title",
    "start",
    "end",
    "status",
    "service_id",
    "location_id",
)
RELATED_CALENDAR_FIELDS = (
    "service__id",
    "service__name",
    "location__id",
    "location__name",
)
# All-clinicians views page through the clinicians.
CLINICIANS_PER_PAGE = 25


def _calendar_patients(appointment: Appointment) -> list[Patient]:
    """The patients ``_patients_prefetch`` put on ``appointment``."""
    return getattr(appointment, "calendar_patients")  # noqa: B009 - set by Prefetch


@dataclass
class CalendarEntry:
    """One appointment as drawn in one day column (clipped to that day)."""

    appointment: Appointment
    start: datetime
    end: datetime
    row: int = 1
    span: int = 1
    lane: int = 0
    width: int = 1
    may_change: bool = False

    is_busy = False

    @property
    def is_cancelled(self) -> bool:
        return self.appointment.is_cancelled

    @property
    def title(self) -> str:
        """Patient names or the event's title (``Appointment.display_title``)."""
        appointment = self.appointment
        return appointment.display_title_with(_calendar_patients(appointment))

    @property
    def short_title(self) -> str:
        """Initials or the event's title (``Appointment.summary_text``)."""
        appointment = self.appointment
        return appointment.summary_text_with(_calendar_patients(appointment))


@dataclass
class CalendarBusy:
    """A stretch of a clinician's personal busy time as drawn in one day column
    (clipped to that day): laid out like an overlapping appointment, but only its
    time and the words of ``scheduling.busy`` are ever shown."""

    block: BusyBlock
    clinician: User
    start: datetime
    end: datetime
    row: int = 1
    span: int = 1
    lane: int = 0
    width: int = 1

    is_busy = True

    @property
    def label(self) -> str:
        return busy_label(self.block)

    @property
    def stale_note(self) -> str:
        return busy_stale_note(self.block, self.start.tzinfo)


# What a week or day column lays out in lanes.
Drawn = CalendarEntry | CalendarBusy


@dataclass
class CalendarMore:
    """Overlapping appointments that found no lane: one "+N more" marker."""

    row: int
    span: int
    count: int
    start: datetime
    end: datetime


@dataclass
class CalendarSlot:
    row: int
    start: datetime

    @property
    def param(self) -> str:
        """The ``start`` query parameter of the booking form."""
        return self.start.strftime("%Y-%m-%dT%H:%M")


@dataclass
class CalendarColumn:
    day: date
    clinician: User | None
    entries: list[CalendarEntry] = field(default_factory=list)
    busy: list[CalendarBusy] = field(default_factory=list)
    slots: list[CalendarSlot] = field(default_factory=list)
    more: list[CalendarMore] = field(default_factory=list)
    lanes: int = 1
    is_today: bool = False
    may_book: bool = False

    @property
    def agenda_items(self) -> list[Drawn]:
        """The day's appointments and busy time, by start (appointments first)."""
        return sorted([*self.entries, *self.busy], key=lambda item: item.start)

    @property
    def grid_lanes(self) -> int:
        """Lanes of the column's grid: the entries' and, if needed, the marker's."""
        return self.lanes + (1 if self.more else 0)


@dataclass
class ClinicianPage:
    """Which clinicians an all-clinicians page shows, after the team and location
    filters, and where that page sits among them."""

    number: int
    count: int
    pages: int

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first_index(self) -> int:
        return 0 if not self.count else (self.number - 1) * CLINICIANS_PER_PAGE + 1

    @property
    def last_index(self) -> int:
        return min(self.count, self.number * CLINICIANS_PER_PAGE)


@dataclass
class CalendarPage:
    view: str
    anchor: date
    first_day: date
    last_day: date
    previous: date
    next: date
    today: date
    clinicians: list[User]
    selected: User | None
    show_cancelled: bool
    span: int = 7
    columns: list[CalendarColumn] = field(default_factory=list)
    hours: list[tuple[int, str]] = field(default_factory=list)
    rows: int = 0
    weeks: list[list[CalendarColumn]] = field(default_factory=list)
    days: list[CalendarColumn] = field(default_factory=list)
    may_book: bool = False
    teams: list[Team] = field(default_factory=list)
    locations: list[Location] = field(default_factory=list)
    team: Team | None = None
    location: Location | None = None
    clinician_page: ClinicianPage | None = None

    @property
    def all_clinicians(self) -> bool:
        """Whether several clinicians' appointments share the page: each entry then
        says whose it is."""
        return self.selected is None

    @property
    def first_entry(self) -> CalendarEntry | None:
        """The earliest appointment drawn in a week or day view: the skip link's
        target."""
        entries = [entry for column in self.columns for entry in column.entries]
        return min(entries, key=lambda e: (e.start, e.appointment.pk), default=None)

    @property
    def title(self) -> str:
        if self.view == DAY or self.first_day == self.last_day:
            return f"{self.first_day:%A %-d %B %Y}"
        if self.view == MONTH:
            return f"{self.anchor:%B %Y}"
        if self.first_day.year != self.last_day.year:
            return f"{self.first_day:%-d %b %Y} – {self.last_day:%-d %b %Y}"
        if self.first_day.month != self.last_day.month:
            return f"{self.first_day:%-d %b} – {self.last_day:%-d %b %Y}"
        return f"{self.first_day:%-d} – {self.last_day:%-d %B %Y}"


def _range(view: str, anchor: date, span: int) -> tuple[date, date, date, date]:
    """First and last day shown, and the anchors of the previous and next pages."""
    if view == DAY:
        return anchor, anchor, anchor - timedelta(days=1), anchor + timedelta(days=1)
    if view == AGENDA:
        step = timedelta(days=AGENDA_DAYS)
        return anchor, anchor + step - timedelta(days=1), anchor - step, anchor + step
    if view == MONTH:
        first_of_month = anchor.replace(day=1)
        first = first_of_month - timedelta(days=first_of_month.weekday())
        next_month = (first_of_month + timedelta(days=32)).replace(day=1)
        last_of_month = next_month - timedelta(days=1)
        last = last_of_month + timedelta(days=6 - last_of_month.weekday())
        previous = (first_of_month - timedelta(days=1)).replace(day=1)
        return first, last, previous, next_month
    if span < 7:
        # A phone's week: one or three days from the anchor on.
        step = timedelta(days=span)
        return anchor, anchor + step - timedelta(days=1), anchor - step, anchor + step
    first = anchor - timedelta(days=anchor.weekday())
    return (
        first,
        first + timedelta(days=6),
        anchor - timedelta(7),
        anchor + timedelta(7),
    )


def _assign_lanes(entries: list[Drawn]) -> tuple[int, list[Drawn]]:
    """Give overlapping entries side-by-side lanes, at most MAX_LANES. Returns how
    many lanes the column needs and the entries that found none (drawn as "+N
    more"), which are taken out of ``entries``."""
    lane_ends: list[datetime] = []
    hidden: list[Drawn] = []
    for entry in sorted(entries, key=lambda e: (e.start, e.end)):
        for lane, lane_end in enumerate(lane_ends):
            if lane_end <= entry.start:
                entry.lane = lane
                lane_ends[lane] = entry.end
                break
        else:
            if len(lane_ends) < MAX_LANES:
                entry.lane = len(lane_ends)
                lane_ends.append(entry.end)
            else:
                hidden.append(entry)
    if hidden:
        gone = {id(entry) for entry in hidden}
        entries[:] = [entry for entry in entries if id(entry) not in gone]
    lanes = max(1, len(lane_ends))
    # An entry widens into the lanes to its right that nothing overlapping it uses.
    # A lane's entries never overlap each other, so by start they are also by end:
    # the first one ending after this entry starts is the only one to check.
    by_lane: list[list[Drawn]] = [[] for _ in range(lanes)]
    for entry in sorted(entries, key=lambda e: e.start):
        by_lane[entry.lane].append(entry)
    ends = [[other.end for other in lane] for lane in by_lane]
    for entry in entries:
        entry.width = 1
        for lane in range(entry.lane + 1, lanes):
            index = bisect_right(ends[lane], entry.start)
            if index < len(by_lane[lane]) and by_lane[lane][index].start < entry.end:
                break
            entry.width += 1
    return lanes, hidden


def _more_markers(hidden: list[Drawn]) -> list[CalendarMore]:
    """One marker per run of overlapping hidden entries, spanning their rows."""
    markers: list[CalendarMore] = []
    for entry in sorted(hidden, key=lambda e: (e.start, e.end)):
        last = markers[-1] if markers else None
        if last is not None and entry.start < last.end:
            last.count += 1
            if entry.end > last.end:
                last.end = entry.end
                last.span = max(last.span, entry.row + entry.span - last.row)
            continue
        markers.append(
            CalendarMore(
                row=entry.row,
                span=max(entry.span, 2),
                count=1,
                start=entry.start,
                end=entry.end,
            )
        )
    return markers


def _patients_prefetch() -> Prefetch:
    """Each appointment's patients as a plain list, ``calendar_patients``."""
    return Prefetch(
        "patients",
        queryset=Patient.objects.only(
            "id", "first_name", "last_name", "preferred_name"
        ),
        to_attr="calendar_patients",
    )


def _clinicians_shown(
    *,
    practice,
    clinicians: list[User],
    team: Team | None,
    location: Location | None,
    range_start: datetime,
    range_end: datetime,
    page_number: int,
) -> tuple[list[User], ClinicianPage]:
    """The clinicians of one page of an all-clinicians view: those in ``team``,
    and with an appointment at ``location`` in the range, 25 a page. One query per
    filter, none without."""
    chosen = clinicians
    if team is not None:
        members = set(
            Team.members.through.objects.filter(team=team).values_list(
                "user_id", flat=True
            )
        )
        chosen = [clinician for clinician in chosen if clinician.pk in members]
    if location is not None:
        busy = set(
            Appointment.objects.filter(
                practice=practice,
                location=location,
                deleted_at__isnull=True,
                start__lt=range_end,
                end__gt=range_start,
            )
            .values_list("clinician_id", flat=True)
            .distinct()
        )
        chosen = [clinician for clinician in chosen if clinician.pk in busy]
    pages = max(1, math.ceil(len(chosen) / CLINICIANS_PER_PAGE))
    number = min(max(1, page_number), pages)
    first = (number - 1) * CLINICIANS_PER_PAGE
    return chosen[first : first + CLINICIANS_PER_PAGE], ClinicianPage(
        number=number, count=len(chosen), pages=pages
    )


def calendar_page(
    *,
    user: User,
    view: str = WEEK,
    anchor: date | None = None,
    clinician_id: int | None = None,
    all_clinicians: bool = False,
    show_cancelled: bool = True,
    span: int = 7,
    team_id: int | None = None,
    location_id: int | None = None,
    page_number: int = 1,
) -> CalendarPage:
    """Everything a calendar page draws, in the practice's time zone, in a fixed
    number of queries whatever the number of clinicians or appointments. A clinician
    without practice-wide rights sees only their own calendar. Views of every
    clinician can be narrowed to a team and a location and show 25 clinicians a
    page; an unknown team or location is a 404."""
    practice = user.practice
    zone = practice.zone
    today = timezone.localdate(timezone=zone)
    anchor = anchor or today
    span = span if view == WEEK and span in WEEK_SPANS else 7
    first, last, previous, following = _range(view, anchor, span)
    range_start = datetime.combine(first, time.min, tzinfo=zone)
    range_end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone)

    teams: list[Team] = []
    locations: list[Location] = []
    team = location = None
    clinician_page = None
    if not user.can_manage_all_schedules:
        if clinician_id not in (None, user.pk):
            raise Http404
        selected = user
        clinicians = [user] if user.is_clinician else []
        shown = clinicians
    else:
        # Only those who may see every schedule need the list of clinicians.
        clinicians = list(
            clinician_list(practice=practice).only(
                "id", "display_name", "credentials", "email", "practice_id", "is_active"
            )
        )
        selected = None
        if clinician_id is not None:
            selected = next((c for c in clinicians if c.pk == clinician_id), None)
            if selected is None:
                raise Http404
        elif not all_clinicians and user.is_clinician and user.is_active:
            selected = user
        if selected is not None:
            shown = [selected]
        else:
            teams = list(Team.objects.filter(practice=practice).order_by("name"))
            locations = list(location_list(practice=practice))
            if team_id is not None:
                team = next((t for t in teams if t.pk == team_id), None)
                if team is None:
                    raise Http404
            if location_id is not None:
                location = next((p for p in locations if p.pk == location_id), None)
                if location is None:
                    raise Http404
            shown, clinician_page = _clinicians_shown(
                practice=practice,
                clinicians=clinicians,
                team=team,
                location=location,
                range_start=range_start,
                range_end=range_end,
                page_number=page_number,
            )

    appointments = (
        visible_appointments(user)
        .filter(
            start__lt=range_end,
            end__gt=range_start,
            clinician_id__in=[clinician.pk for clinician in shown],
        )
        # What a calendar page draws, and no more: hundreds of rows at a time.
        .only(*CALENDAR_FIELDS)
        .order_by("start", "id")
    )
    if view != MONTH:
        # The clinicians are loaded already, and so are the locations on a page of
        # every clinician: each row is given its own below. A month draws a few
        # appointments a day and loads the rest of these for those only.
        related = ("service",) if locations else ("service", "location")
        appointments = (
            appointments.select_related(*related)
            .only(
                *CALENDAR_FIELDS,
                *(
                    name
                    for name in RELATED_CALENDAR_FIELDS
                    if name.split("__")[0] in related
                ),
            )
            .prefetch_related(_patients_prefetch())
        )
    if not show_cancelled:
        appointments = appointments.exclude(status__in=Appointment.CANCELLED_STATUSES)
    if location is not None:
        appointments = appointments.filter(location=location)
    appointments = list(appointments) if shown else []
    by_id = {clinician.pk: clinician for clinician in shown}
    places = {place.pk: place for place in locations}
    for appointment in appointments:
        appointment.clinician = by_id[appointment.clinician_id]
        if places and view != MONTH:
            location_id = appointment.location_id
            appointment.location = places.get(location_id) if location_id else None

    page = CalendarPage(
        view=view,
        anchor=anchor,
        first_day=first,
        last_day=last,
        previous=previous,
        next=following,
        today=today,
        clinicians=clinicians,
        selected=selected,
        show_cancelled=show_cancelled,
        span=span,
        teams=teams,
        locations=locations,
        team=team,
        location=location,
        clinician_page=clinician_page,
    )
    may_book_for = {c.pk: can_schedule_for(user, c) for c in shown}
    page.may_book = any(may_book_for.values())

    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    by_day: dict[date, list[CalendarEntry]] = {day: [] for day in days}
    for appointment in appointments:
        for day, start, end in _days_of(appointment, first=first, last=last, zone=zone):
            by_day[day].append(
                CalendarEntry(
                    appointment=appointment,
                    start=start,
                    end=end,
                    may_change=may_book_for.get(appointment.clinician_id, False),
                )
            )
    busy_by_day: dict[date, list[CalendarBusy]] = {day: [] for day in days}
    if view != MONTH:
        blocks = busy_times(
            practice=practice,
            clinician_ids=[c.pk for c in shown if can_see_busy_time(user, c)],
            start=range_start,
            end=range_end,
        )
        for block in blocks:
            for day, start, end in _days_of(block, first=first, last=last, zone=zone):
                busy_by_day[day].append(
                    CalendarBusy(
                        block=block,
                        clinician=by_id[block.clinician_id],
                        start=start,
                        end=end,
                    )
                )

    if view in (MONTH, AGENDA):
        cells = [
            CalendarColumn(
                day=day,
                clinician=selected,
                entries=by_day[day],
                busy=busy_by_day[day],
                is_today=day == today,
                may_book=page.may_book,
            )
            for day in days
        ]
        if view == AGENDA:
            page.days = cells
        else:
            page.weeks = [cells[n : n + 7] for n in range(0, len(cells), 7)]
            drawn = {
                entry.appointment
                for cell in cells
                for entry in cell.entries[:MONTH_CELL_LIMIT]
            }
            prefetch_related_objects(list(drawn), "service", _patients_prefetch())
        return page

    _lay_out_columns(
        page,
        view=view,
        by_day=by_day,
        busy_by_day=busy_by_day,
        shown=shown,
        may_book_for=may_book_for,
    )
    return page


def _days_of(
    timed: Appointment | BusyBlock, *, first: date, last: date, zone
) -> list[tuple[date, datetime, datetime]]:
    """The days from ``first`` to ``last`` that ``timed`` touches, each with the
    local start and end of its part of that day."""
    local_start = timezone.localtime(timed.start, zone)
    local_end = timezone.localtime(timed.end, zone)
    parts = []
    day = max(local_start.date(), first)
    while day <= last and datetime.combine(day, time.min, tzinfo=zone) < local_end:
        day_start = datetime.combine(day, time.min, tzinfo=zone)
        day_end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
        parts.append((day, max(local_start, day_start), min(local_end, day_end)))
        day += timedelta(days=1)
    return parts


def _lay_out_columns(
    page: CalendarPage,
    *,
    view: str,
    by_day: dict[date, list[CalendarEntry]],
    busy_by_day: dict[date, list[CalendarBusy]],
    shown: list[User],
    may_book_for: dict[int, bool],
) -> None:
    """The week and day views' columns: hours, rows, lanes and bookable slots.
    Busy time takes lanes beside the appointments it overlaps and its half hours
    get no slot, as an appointment's do; but it never adds hours to the grid (a
    personal calendar's all-day or evening time would stretch every week to 24
    hours), so it is cut to the hours the appointments need."""
    entries = [entry for day_entries in by_day.values() for entry in day_entries]
    first_hour, last_hour = DEFAULT_FIRST_HOUR, DEFAULT_LAST_HOUR
    for entry in entries:
        first_hour = min(first_hour, entry.start.hour)
        end_hour = entry.end.hour + (1 if entry.end.minute else 0)
        if entry.end.date() > entry.start.date():
            end_hour = 24
        last_hour = max(last_hour, end_hour)
    page.rows = (last_hour - first_hour) * 60 // ROW_MINUTES
    page.hours = [
        (1 + (hour - first_hour) * 60 // ROW_MINUTES, f"{hour:02d}:00")
        for hour in range(first_hour, last_hour)
    ]

    def place(entry: CalendarEntry) -> CalendarEntry:
        minutes = (entry.start.hour - first_hour) * 60 + entry.start.minute
        length = (entry.end - entry.start).total_seconds() / 60
        entry.row = 1 + minutes // ROW_MINUTES
        entry.span = max(1, min(page.rows - entry.row + 1, math.ceil(length / 15)))
        return entry

    def place_busy(busy: CalendarBusy) -> CalendarBusy | None:
        """``busy`` placed on the grid's hours, or None if it lies outside them."""
        start = busy.start.hour * 60 + busy.start.minute
        end = 24 * 60 if busy.end.date() > busy.start.date() else 0
        end = end or busy.end.hour * 60 + busy.end.minute
        start, end = max(start, first_hour * 60), min(end, last_hour * 60)
        if end <= start:
            return None
        busy.row = 1 + (start - first_hour * 60) // ROW_MINUTES
        busy.span = max(
            1, min(page.rows - busy.row + 1, math.ceil((end - start) / ROW_MINUTES))
        )
        return busy

    keys: list[tuple[date, User | None]]
    if view == DAY:
        keys = [(page.anchor, clinician) for clinician in shown]
    else:
        keys = [(day, page.selected) for day in by_day]
    for day, clinician in keys:
        column_entries = [
            place(entry)
            for entry in by_day[day]
            if clinician is None or entry.appointment.clinician_id == clinician.pk
        ]
        column_busy = [
            placed
            for busy in busy_by_day[day]
            if clinician is None or busy.clinician.pk == clinician.pk
            if (placed := place_busy(busy)) is not None
        ]
        may_book = may_book_for.get(clinician.pk, False) if clinician else page.may_book
        # Appointments first: at the same start they take the left-hand lane.
        drawn: list[Drawn] = [*column_entries, *column_busy]
        lanes, hidden = _assign_lanes(drawn)
        column = CalendarColumn(
            day=day,
            clinician=clinician,
            entries=[item for item in drawn if isinstance(item, CalendarEntry)],
            busy=[item for item in drawn if isinstance(item, CalendarBusy)],
            more=_more_markers(hidden),
            lanes=lanes,
            is_today=day == page.today,
            may_book=may_book,
        )
        if may_book:
            # A half hour an appointment (or busy time) covers even in part gets
            # no slot: the block would hide all but a sliver of it, a target too
            # small to hit (WCAG 2.5.8), and the booking would be a conflict
            # anyway.
            covered = {
                row
                for entry in drawn
                for row in range(entry.row, entry.row + entry.span)
            }
            rows_per_slot = SLOT_MINUTES // ROW_MINUTES
            for row in range(1, page.rows + 1, rows_per_slot):
                if not covered.isdisjoint(range(row, row + rows_per_slot)):
                    continue
                minutes = first_hour * 60 + (row - 1) * ROW_MINUTES
                naive = datetime.combine(day, time(minutes // 60, minutes % 60))
                column.slots.append(CalendarSlot(row=row, start=naive))
        page.columns.append(column)


# -- the audit log's view of patients (see practice.hooks) -------------------------


def audit_patients_described(
    *, practice: Practice, patient_ids: list[int]
) -> dict[int, AuditPatient]:
    """Names and pages of these patients of ``practice`` for its audit log (one
    query); ids of other practices' patients are left out."""
    patients = Patient.objects.filter(practice=practice, pk__in=patient_ids).only(
        "pk", "first_name", "last_name"
    )
    return {
        patient.pk: AuditPatient(
            name=patient.full_name,
            url=reverse("scheduling:patient", kwargs={"patient_id": patient.pk}),
        )
        for patient in patients
    }


def audit_patients_matching(*, practice: Practice, text: str, limit: int) -> list[int]:
    """Ids of at most ``limit`` + 1 of ``practice``'s patients, deactivated ones
    too, whose names contain every word of ``text`` (as the Patients search)."""
    patients = Patient.objects.filter(practice=practice)
    words = search_fold(text).split()[:6]
    if not words:
        return []
    for word in words:
        patients = patients.filter(search_name__contains=word)
    return list(patients.order_by("pk").values_list("pk", flat=True)[: limit + 1])
