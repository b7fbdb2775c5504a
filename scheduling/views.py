from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from practice.forms import ActiveForm
from practice.models import Role
from practice.net import client_ip
from practice.permissions import practice_user_required, role_required
from scheduling.forms import (
    EVENT_TITLE_WARNING,
    AppointmentForm,
    CalendarQueryForm,
    DeleteForm,
    LocalDateTimeField,
    LocationForm,
    PatientForm,
    PatientSearchForm,
    ServiceForm,
    StatusForm,
    TeamDeleteForm,
    TeamForm,
    appointment_initial,
    patient_initial,
)
from scheduling.models import Appointment
from scheduling.permissions import (
    access_appointment,
    access_location,
    access_patient,
    access_patient_for_deactivation,
    access_service,
    access_team,
    can_deactivate_patients,
    can_manage_patients,
    can_schedule_anyone,
    can_schedule_for,
)
from scheduling.selectors import (
    AGENDA,
    DAY,
    MONTH,
    WEEK,
    appointment_history,
    calendar_page,
    location_list,
    patient_appointments,
    patient_list,
    series_overview,
    service_list,
    team_list,
)
from scheduling.services import (
    SCOPE_THIS,
    DuplicatePatient,
    SchedulingConflict,
    StaleAppointment,
    appointment_create,
    appointment_delete,
    appointment_set_status,
    appointment_update,
    appointment_view_record,
    calendar_view_record,
    location_create,
    location_update,
    patient_create,
    patient_list_view_record,
    patient_set_active,
    patient_update,
    patient_view_record,
    service_create,
    service_update,
    team_create,
    team_delete,
    team_update,
)

# Days a week view shows by default on each screen size class.
SCREEN_SPANS = {"phone": 1, "tablet": 3, "wide": 7}


def _calendar_url(appointment: Appointment) -> str:
    day = timezone.localtime(appointment.start, appointment.practice.zone).date()
    query = {"date": day.isoformat(), "clinician": appointment.clinician_id}
    return f"{reverse('scheduling:calendar')}?{urlencode(query)}"


# -- calendar -----------------------------------------------------------------------


@practice_user_required
def calendar(request):
    query = CalendarQueryForm(request.GET)
    if query.is_valid():
        params = query.cleaned_data
    else:
        params = {}
        messages.error(
            request,
            "Part of that calendar address could not be read ("
            + "; ".join(
                f"{name}: {' '.join(errs)}" for name, errs in query.errors.items()
            )
            + "). Showing this week instead.",
        )
    clinician = params.get("clinician")
    # The screen's size class, from a cookie static/js/calendar-view.js keeps:
    # phones open the agenda, and a week there shows one day (three on tablets).
    screen = request.COOKIES.get("tend_screen", "wide")
    screen = screen if screen in SCREEN_SPANS else "wide"
    view = params.get("view") or (AGENDA if screen == "phone" else WEEK)
    page = calendar_page(
        user=request.user,
        view=view,
        anchor=params.get("date"),
        clinician_id=clinician if isinstance(clinician, int) else None,
        all_clinicians=clinician == "all",
        show_cancelled=params.get("cancelled") != "hide",
        span=params.get("days") or SCREEN_SPANS[screen],
        team_id=params.get("team"),
        location_id=params.get("location"),
        page_number=params.get("page") or 1,
    )
    calendar_view_record(
        user=request.user,
        view=page.view,
        first_day=page.first_day,
        last_day=page.last_day,
        clinician=page.selected,
        client_ip=client_ip(request),
    )
    keep = {"view": view, "cancelled": params.get("cancelled") or ""}
    if view == WEEK and params.get("days"):
        keep["days"] = page.span
    if request.user.can_manage_all_schedules:
        keep["clinician"] = page.selected.pk if page.selected else "all"
        if page.selected is None:
            keep["team"] = page.team.pk if page.team else ""
            keep["location"] = page.location.pk if page.location else ""

    def link(**changes):
        merged = {**keep, **changes}
        merged = {
            key: value for key, value in merged.items() if value not in ("", None)
        }
        return f"{request.path}?{urlencode(merged)}"

    links = {
        "previous": link(date=page.previous.isoformat()),
        "next": link(date=page.next.isoformat()),
        "today": link(date=""),
        "views": [
            (name, label, link(view=name, date=page.anchor.isoformat(), days=""))
            for name, label in (
                (AGENDA, "Agenda"),
                (DAY, "Day"),
                (WEEK, "Week"),
                (MONTH, "Month"),
            )
        ],
        "toggle_cancelled": link(
            cancelled="show" if not page.show_cancelled else "hide",
            date=page.anchor.isoformat(),
        ),
    }
    if page.clinician_page is not None:
        number = page.clinician_page.number
        links["clinicians_previous"] = link(
            date=page.anchor.isoformat(), page=number - 1
        )
        links["clinicians_next"] = link(date=page.anchor.isoformat(), page=number + 1)
        keep["page"] = number if number > 1 else ""
    # Appended to per-day links built in the template (view and date vary).
    base_query = urlencode(
        {
            key: value
            for key, value in keep.items()
            if key not in ("view", "days") and value
        }
    )
    return render(
        request,
        "scheduling/calendar.html",
        {"page": page, "links": links, "base_query": base_query, "screen": screen},
    )


# -- appointments -------------------------------------------------------------------


def _new_appointment_initial(request) -> dict:
    initial = {"kind": request.GET.get("kind") or Appointment.Kind.SESSION}
    try:
        start = LocalDateTimeField().to_python(request.GET.get("start", ""))
    except ValidationError:
        start = None
    if start is not None:
        initial["start"] = start
    clinician = request.GET.get("clinician", "")
    if clinician.isdigit():
        initial["clinician"] = int(clinician)
    elif request.user.is_clinician:
        initial["clinician"] = request.user.pk
    patient = request.GET.get("patient", "")
    if patient.isdigit():
        initial["patients"] = [int(patient)]
    return initial


@practice_user_required
def appointment_new(request):
    if not can_schedule_anyone(request.user):
        raise PermissionDenied
    form = AppointmentForm(
        request.POST or None,
        user=request.user,
        initial=_new_appointment_initial(request),
    )
    conflicts, conflict_heading = [], ""
    if request.method == "POST" and form.is_valid():
        try:
            appointment = appointment_create(
                practice=request.user.practice,
                actor=request.user,
                allow_conflicts=form.cleaned_data["book_anyway"],
                **form.service_arguments(),
            )
        except SchedulingConflict as conflict:
            conflicts = conflict.conflicts
            conflict_heading = conflict.heading
        except ValidationError as error:
            form.add_error(None, error)
        else:
            what = "Series" if appointment.series_id else "Appointment"
            messages.success(request, f"{what} booked.")
            return redirect(_calendar_url(appointment))
    return render(
        request,
        "scheduling/appointment_form.html",
        {
            "form": form,
            "conflicts": conflicts,
            "conflict_heading": conflict_heading,
            "is_event": form.appointment_kind == Appointment.Kind.EVENT,
            "event_warning": EVENT_TITLE_WARNING,
        },
    )


@practice_user_required
def appointment_detail(request, appointment_id: int):
    appointment = access_appointment(request.user, appointment_id)
    appointment_view_record(
        user=request.user, appointment=appointment, client_ip=client_ip(request)
    )
    may_change = can_schedule_for(request.user, appointment.clinician)
    now = timezone.now()
    statuses = appointment.allowed_statuses(now=now)
    return render(
        request,
        "scheduling/appointment_detail.html",
        {
            "appointment": appointment,
            "history": appointment_history(appointment=appointment),
            "series": series_overview(appointment=appointment),
            "may_change": may_change,
            "statuses": [Appointment.Status(status) for status in statuses],
            "outcomes_later": len(appointment.allowed_statuses()) > len(statuses),
            "calendar_url": _calendar_url(appointment),
        },
    )


@practice_user_required
def appointment_edit(request, appointment_id: int):
    appointment = access_appointment(request.user, appointment_id, for_change=True)
    form = AppointmentForm(
        request.POST or None,
        user=request.user,
        appointment=appointment,
        initial=appointment_initial(appointment),
    )
    if request.method != "POST":
        appointment_view_record(
            user=request.user,
            appointment=appointment,
            client_ip=client_ip(request),
            page="edit form",
        )
    conflicts, conflict_heading, stale = [], "", False
    if request.method == "POST" and form.is_valid():
        try:
            appointment_update(
                appointment=appointment,
                actor=request.user,
                expected_revision=form.cleaned_data["revision"],
                scope=form.cleaned_data.get("scope") or SCOPE_THIS,
                allow_conflicts=form.cleaned_data["book_anyway"],
                **form.service_arguments(),
            )
        except SchedulingConflict as conflict:
            conflicts = conflict.conflicts
            conflict_heading = conflict.heading
        except StaleAppointment as error:
            stale = True
            form.add_error(None, error)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Appointment saved.")
            return redirect(_calendar_url(appointment))
    return render(
        request,
        "scheduling/appointment_form.html",
        {
            "form": form,
            "appointment": appointment,
            "conflicts": conflicts,
            "conflict_heading": conflict_heading,
            "stale": stale,
            "is_event": appointment.kind == Appointment.Kind.EVENT,
            "event_warning": EVENT_TITLE_WARNING,
        },
    )


@require_POST
@practice_user_required
def appointment_status(request, appointment_id: int):
    appointment = access_appointment(request.user, appointment_id, for_change=True)
    form = StatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a status.")
        return redirect("scheduling:appointment", appointment_id=appointment.pk)
    try:
        appointment_set_status(
            appointment=appointment,
            actor=request.user,
            status=form.cleaned_data["status"],
            expected_revision=form.cleaned_data["revision"],
            scope=form.cleaned_data["scope"] or SCOPE_THIS,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        label = Appointment.Status(form.cleaned_data["status"]).label
        messages.success(request, f"Marked {label.lower()}.")
    return redirect("scheduling:appointment", appointment_id=appointment.pk)


@require_POST
@practice_user_required
def appointment_delete_view(request, appointment_id: int):
    appointment = access_appointment(request.user, appointment_id, for_change=True)
    form = DeleteForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "The delete request was incomplete; nothing was deleted."
        )
        return redirect("scheduling:appointment", appointment_id=appointment.pk)
    try:
        deleted = appointment_delete(
            appointment=appointment,
            actor=request.user,
            expected_revision=form.cleaned_data["revision"],
            scope=form.cleaned_data["scope"] or SCOPE_THIS,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("scheduling:appointment", appointment_id=appointment.pk)
    count = len(deleted)
    messages.success(
        request,
        "Appointment deleted." if count == 1 else f"{count} appointments deleted.",
    )
    return redirect(_calendar_url(appointment))


# -- patients -----------------------------------------------------------------------


@practice_user_required
def patients(request):
    search = PatientSearchForm(request.GET)
    search.is_valid()
    query = search.cleaned_data.get("q", "")
    page = Paginator(
        patient_list(
            user=request.user,
            query=query,
            include_inactive=search.cleaned_data.get("inactive", False),
        ),
        50,
    ).get_page(request.GET.get("page"))
    patient_list_view_record(
        user=request.user,
        patients=list(page),
        searched=bool(query),
        page_number=page.number,
        client_ip=client_ip(request),
    )
    return render(
        request,
        "scheduling/patients.html",
        {
            "search": search,
            "page": page,
            "query": query,
            "may_add": can_manage_patients(request.user),
        },
    )


@practice_user_required
def patient_add(request):
    if not can_manage_patients(request.user):
        raise PermissionDenied
    initial = {}
    if request.user.is_clinician:
        initial["primary_clinician"] = request.user.pk
    form = PatientForm(request.POST or None, user=request.user, initial=initial)
    duplicates = []
    if request.method == "POST" and form.is_valid():
        fields = dict(form.cleaned_data)
        allow_duplicate = fields.pop("save_anyway")
        try:
            patient = patient_create(
                practice=request.user.practice,
                actor=request.user,
                client_ip=client_ip(request),
                allow_duplicate=allow_duplicate,
                **fields,
            )
        except DuplicatePatient as warning:
            duplicates = warning.duplicates
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"{patient.full_name} was added.")
            return redirect("scheduling:patient", patient_id=patient.pk)
    return render(
        request,
        "scheduling/patient_form.html",
        {"form": form, "duplicates": duplicates},
    )


@practice_user_required
def patient_detail(request, patient_id: int):
    patient = access_patient(request.user, patient_id)
    patient_view_record(
        user=request.user, patient=patient, client_ip=client_ip(request)
    )
    return render(
        request,
        "scheduling/patient_detail.html",
        {
            "patient": patient,
            "appointments": patient_appointments(user=request.user, patient=patient)[
                :50
            ],
            "may_edit": can_manage_patients(request.user),
            "may_deactivate": can_deactivate_patients(request.user),
            "may_book": can_schedule_anyone(request.user) and patient.is_active,
        },
    )


@practice_user_required
def patient_edit(request, patient_id: int):
    patient = access_patient(request.user, patient_id, for_change=True)
    form = PatientForm(
        request.POST or None,
        user=request.user,
        patient=patient,
        initial=patient_initial(patient),
    )
    if request.method != "POST":
        patient_view_record(
            user=request.user,
            patient=patient,
            client_ip=client_ip(request),
            page="edit form",
        )
    duplicates = []
    if request.method == "POST" and form.is_valid():
        fields = dict(form.cleaned_data)
        allow_duplicate = fields.pop("save_anyway")
        try:
            patient_update(
                patient=patient,
                actor=request.user,
                client_ip=client_ip(request),
                allow_duplicate=allow_duplicate,
                **fields,
            )
        except DuplicatePatient as warning:
            duplicates = warning.duplicates
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"{patient.full_name} was saved.")
            return redirect("scheduling:patient", patient_id=patient.pk)
    return render(
        request,
        "scheduling/patient_form.html",
        {"form": form, "patient": patient, "duplicates": duplicates},
    )


@require_POST
@practice_user_required
def patient_active(request, patient_id: int):
    patient = access_patient_for_deactivation(request.user, patient_id)
    form = ActiveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose Deactivate or Reactivate.")
        return redirect("scheduling:patient", patient_id=patient.pk)
    active = form.cleaned_data["active"]
    patient_set_active(
        patient=patient, actor=request.user, active=active, client_ip=client_ip(request)
    )
    verb = "reactivated" if active else "deactivated"
    messages.success(request, f"{patient.full_name} was {verb}.")
    return redirect("scheduling:patient", patient_id=patient.pk)


# -- services and locations (administrators) ---------------------------------------


@role_required(Role.ADMINISTRATOR)
def setup(request):
    practice = request.user.practice
    return render(
        request,
        "scheduling/setup.html",
        {
            "services": service_list(practice=practice),
            "locations": location_list(practice=practice),
        },
    )


def _list_item_form(request, *, form_class, item, save, heading):
    """Add (``item`` None) or edit a service or location: the form's fields are
    the item's own, so an edit starts from its current values."""
    initial = {}
    if item is not None:
        initial = {name: getattr(item, name) for name in form_class.base_fields}
    form = form_class(request.POST or None, initial=initial)
    if item is None:
        del form.fields["is_active"]  # new entries are always in use
    if request.method == "POST" and form.is_valid():
        try:
            saved = save(form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"“{saved.name}” was saved.")
            return redirect("scheduling:setup")
    return render(
        request, "scheduling/setup_form.html", {"form": form, "heading": heading}
    )


@role_required(Role.ADMINISTRATOR)
def service_add(request):
    practice = request.user.practice
    return _list_item_form(
        request,
        form_class=ServiceForm,
        item=None,
        save=lambda data: service_create(practice=practice, **data),
        heading="Add a service",
    )


@role_required(Role.ADMINISTRATOR)
def service_edit(request, service_id: int):
    service = access_service(request.user, service_id)
    return _list_item_form(
        request,
        form_class=ServiceForm,
        item=service,
        save=lambda data: service_update(service=service, **data),
        heading=service.name,
    )


@role_required(Role.ADMINISTRATOR)
def location_add(request):
    practice = request.user.practice
    return _list_item_form(
        request,
        form_class=LocationForm,
        item=None,
        save=lambda data: location_create(practice=practice, **data),
        heading="Add a location",
    )


@role_required(Role.ADMINISTRATOR)
def location_edit(request, location_id: int):
    location = access_location(request.user, location_id)
    return _list_item_form(
        request,
        form_class=LocationForm,
        item=location,
        save=lambda data: location_update(location=location, **data),
        heading=location.name,
    )


# -- teams (administrators, in Settings) -------------------------------------------


@role_required(Role.ADMINISTRATOR)
def settings_teams(request):
    return render(
        request,
        "scheduling/settings_teams.html",
        {"teams": team_list(practice=request.user.practice), "section": "teams"},
    )


def _team_form(request, *, team, heading):
    """Add (``team`` None) or edit a team: its name and its clinicians."""
    initial = {}
    if team is not None:
        initial = {"name": team.name, "members": list(team.members.all())}
    form = TeamForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            if team is None:
                team = team_create(practice=request.user.practice, **form.cleaned_data)
            else:
                team_update(team=team, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"“{team.name}” was saved.")
            return redirect("scheduling:settings_teams")
    return render(
        request,
        "scheduling/settings_team_form.html",
        {"form": form, "heading": heading, "team": team, "section": "teams"},
    )


@role_required(Role.ADMINISTRATOR)
def settings_team_add(request):
    return _team_form(request, team=None, heading="Add a team")


@role_required(Role.ADMINISTRATOR)
def settings_team_edit(request, team_id: int):
    team = access_team(request.user, team_id)
    return _team_form(request, team=team, heading=team.name)


@require_POST
@role_required(Role.ADMINISTRATOR)
def settings_team_delete(request, team_id: int):
    team = access_team(request.user, team_id)
    form = TeamDeleteForm(request.POST)
    if not form.is_valid() or form.cleaned_data["team"] != team.pk:
        messages.error(request, "The request was incomplete; no team was removed.")
        return redirect("scheduling:settings_team_edit", team_id=team.pk)
    team_delete(team=team)
    messages.success(request, f"“{team.name}” was removed.")
    return redirect("scheduling:settings_teams")
