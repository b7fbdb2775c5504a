"""Forms of the scheduling app. They validate input and shape it for one service
call; they never write."""

from datetime import datetime, timedelta
from typing import cast

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q

from practice.dates import format_date, format_time
from practice.models import User
from scheduling.models import Appointment, Location, Patient, Series, Service
from scheduling.recurrence import NonexistentLocalTime, Recurrence, local_to_utc
from scheduling.selectors import (
    AGENDA,
    DAY,
    MONTH,
    WEEK,
    WEEK_SPANS,
    bookable_patients,
    clinician_choices,
    location_list,
    primary_clinician_choices,
    service_list,
)
from scheduling.services import SCOPE_FOLLOWING, SCOPE_THIS

LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
SCOPE_CHOICES = [
    (SCOPE_THIS, "Only this appointment"),
    (SCOPE_FOLLOWING, "This and all following appointments of the series"),
]
MISSING_REVISION = (
    "This form arrived without the version of the appointment it was opened on, so "
    "Tend cannot tell whether someone changed the appointment meanwhile. Nothing was "
    "saved: reload the appointment and make your change again."
)
EVENT_TITLE_WARNING = (
    "Titles are visible in synced calendars (phones, Google Calendar, Outlook). "
    "Do not put patient names or other private details in them."
)


class LocalDateTimeField(forms.Field):
    """A wall-clock date and time (``datetime-local`` input), kept naive: the form
    converts it with the practice's zone so that a skipped time gets a clear
    message."""

    widget = forms.DateTimeInput(
        attrs={"type": "datetime-local"}, format=LOCAL_FORMATS[0]
    )
    default_error_messages = {
        "invalid": "Enter a date and time, e.g. 2026-03-09 09:00."
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=None)
        for fmt in LOCAL_FORMATS:
            try:
                return datetime.strptime(value.strip(), fmt)
            except ValueError:
                continue
        raise ValidationError(self.error_messages["invalid"], code="invalid")


class ClinicianChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, clinician):
        return (
            clinician.label
            if clinician.is_active
            else f"{clinician.label} (deactivated)"
        )


class ClinicianMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, clinician):
        return clinician.label


class PatientChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, patient):
        extra = f" ({patient.preferred_name})" if patient.preferred_name else ""
        born = f", born {patient.date_of_birth:%Y}" if patient.date_of_birth else ""
        return f"{patient.last_name}, {patient.first_name}{extra}{born}".strip(", ")


class AppointmentForm(forms.Form):
    """Book or change an appointment (``kind`` session) or an event (``kind`` event).
    Recurrence fields only appear when booking; the scope field only when changing an
    occurrence of a series."""

    kind = forms.ChoiceField(choices=Appointment.Kind.choices, widget=forms.HiddenInput)
    clinician = ClinicianChoiceField(
        queryset=User.objects.none(),
        error_messages={"invalid_choice": "Choose a clinician of this practice."},
    )
    patients = PatientChoiceField(
        queryset=None,
        required=False,
        widget=forms.SelectMultiple(
            attrs={
                "size": 8,
                "data-patient-select": "",
                "data-picker-help": (
                    "Type part of a name, then choose with the arrow keys and Enter, "
                    "or tap it. Choose several for a couples, family or group session."
                ),
            }
        ),
        help_text="Several patients for a couples, family or group session: hold "
        "Ctrl (⌘ on a Mac) while clicking to choose more than one; on a phone, tap "
        "each name.",
        error_messages={
            "invalid_choice": "Choose patients from this practice's patient list.",
            "invalid_pk_value": "Choose patients from this practice's patient list.",
        },
    )
    title = forms.CharField(
        max_length=200,
        required=False,
        help_text="e.g. Staff meeting, Supervision, Out of office. "
        + EVENT_TITLE_WARNING,
    )
    service: "forms.ModelChoiceField[Service]" = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="(none)",
        error_messages={"invalid_choice": "Choose a service of this practice."},
    )
    location: "forms.ModelChoiceField[Location]" = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="(none)",
        error_messages={"invalid_choice": "Choose a location of this practice."},
    )
    start = LocalDateTimeField(label="Starts")
    end = LocalDateTimeField(
        label="Ends",
        required=False,
        help_text="Leave empty to use the service's usual length.",
    )
    notes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Internal notes. Never shown in synced calendars.",
    )
    repeat = forms.ChoiceField(
        choices=[("", "Does not repeat"), *Series.Frequency.choices],
        required=False,
        label="Repeats",
    )
    interval = forms.IntegerField(
        min_value=1,
        max_value=52,
        initial=1,
        required=False,
        label="Every",
        help_text="weeks or months (1 = every week or month)",
    )
    ends = forms.ChoiceField(
        choices=[("count", "After a number of appointments"), ("until", "On a date")],
        initial="count",
        required=False,
        widget=forms.RadioSelect,
        label="Series ends",
    )
    count = forms.IntegerField(
        min_value=1, required=False, label="Number of appointments"
    )
    until = forms.DateField(
        required=False,
        label="Last date",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    scope = forms.ChoiceField(
        choices=SCOPE_CHOICES,
        initial=SCOPE_THIS,
        widget=forms.RadioSelect,
        label="Apply to",
    )
    book_anyway = forms.BooleanField(required=False)
    # The version the edit page was opened on (optimistic locking). Required on
    # edits, checked in ``clean``: a hidden field's own error would not be shown.
    revision = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, user: User, appointment: Appointment | None = None, **kw):
        super().__init__(*args, **kw)
        self.user = user
        self.practice = user.practice
        self.appointment = appointment
        clinicians = clinician_choices(user=user, include_inactive=True)
        patients = bookable_patients(user=user)
        services = service_list(practice=self.practice, include_inactive=False)
        locations = location_list(practice=self.practice, include_inactive=False)
        if appointment is not None:
            # Keep what the appointment already has, even if since retired.
            patients = Patient.objects.filter(
                Q(pk__in=patients.values("pk"))
                | Q(pk__in=appointment.patients.values("pk")),
                practice=self.practice,
            )
            services = service_list(practice=self.practice).filter(
                Q(is_active=True) | Q(pk=appointment.service_id)
            )
            locations = location_list(practice=self.practice).filter(
                Q(is_active=True) | Q(pk=appointment.location_id)
            )
            for name in ("repeat", "interval", "ends", "count", "until"):
                del self.fields[name]
            if appointment.series_id is None:
                del self.fields["scope"]
        else:
            del self.fields["scope"]
        self.fields["clinician"].queryset = clinicians
        if (
            appointment is None
            and len(only := clinicians.filter(is_active=True)[:2]) == 1
        ):
            # The only clinician this user may book for: nothing to choose.
            clinician_field = cast(ClinicianChoiceField, self.fields["clinician"])
            clinician_field.empty_label = None
            self.initial["clinician"] = only[0].pk
        self.fields["patients"].queryset = patients.order_by("last_name", "first_name")
        self.fields["service"].queryset = services.order_by("name")
        self.fields["location"].queryset = locations.order_by("is_telehealth", "name")
        if "count" in self.fields:
            limit = settings.SERIES_MAX_OCCURRENCES
            self.fields["count"].help_text = f"At most {limit} in one series."
        if self.appointment_kind == Appointment.Kind.EVENT:
            del self.fields["patients"]
            self.fields["title"].required = True
            self.fields["title"].label = "Title"
        else:
            del self.fields["title"]

    @property
    def appointment_kind(self) -> str:
        if self.appointment is not None:
            return self.appointment.kind
        value = self.data.get("kind") if self.is_bound else self.initial.get("kind")
        return (
            Appointment.Kind.EVENT
            if value == Appointment.Kind.EVENT
            else Appointment.Kind.SESSION
        )

    def _to_utc(self, name: str, naive: datetime | None):
        if naive is None:
            return None
        try:
            return local_to_utc(naive, self.practice.zone)
        except NonexistentLocalTime:
            self.add_error(
                name,
                f"{format_time(naive)} does not exist on {format_date(naive)} in "
                f"{self.practice.time_zone}: the clocks skip it. Choose another time.",
            )
            return None

    def clean(self):
        cleaned = super().clean()
        if self.appointment is None:
            cleaned["kind"] = self.appointment_kind
        elif self.cleaned_data.get("revision") is None:
            # Without it the edit would overwrite whatever changed meanwhile.
            self.errors.pop("revision", None)
            self.add_error(None, ValidationError(MISSING_REVISION, code="no_revision"))
        start = self._to_utc("start", cleaned.get("start"))
        end = self._to_utc("end", cleaned.get("end"))
        if start is not None and end is None and "end" not in self.errors:
            service = cleaned.get("service")
            if service is None:
                self.add_error("end", "Give an end time, or choose a service.")
            else:
                end = start + timedelta(minutes=service.default_minutes)
        cleaned["start_at"], cleaned["end_at"] = start, end
        if self.appointment is None and cleaned.get("repeat"):
            if cleaned.get("ends") == "until":
                if not cleaned.get("until"):
                    self.add_error("until", "Choose the date of the last appointment.")
                cleaned["count"] = None
            else:
                if not cleaned.get("count"):
                    self.add_error("count", "Say how many appointments in all.")
                cleaned["until"] = None
        return cleaned

    def service_arguments(self) -> dict:
        """Keyword arguments for appointment_create / appointment_update."""
        data = self.cleaned_data
        arguments = {
            "clinician": data["clinician"],
            "service": data.get("service"),
            "location": data.get("location"),
            "start": data["start_at"],
            "end": data["end_at"],
            "notes": data.get("notes", ""),
        }
        if self.appointment_kind == Appointment.Kind.EVENT:
            arguments["title"] = data["title"]
        else:
            arguments["patients"] = list(data.get("patients") or [])
        if self.appointment is None:
            arguments["kind"] = self.appointment_kind
            if data.get("repeat"):
                arguments["recurrence"] = Recurrence(
                    frequency=data["repeat"],
                    interval=data.get("interval") or 1,
                    count=data.get("count"),
                    until=data.get("until"),
                )
        return arguments


def appointment_initial(appointment: Appointment) -> dict:
    zone = appointment.practice.zone
    return {
        "kind": appointment.kind,
        "clinician": appointment.clinician_id,
        "patients": [patient.pk for patient in appointment.patients.all()],
        "title": appointment.title,
        "service": appointment.service_id,
        "location": appointment.location_id,
        "start": appointment.start.astimezone(zone).replace(tzinfo=None),
        "end": appointment.end.astimezone(zone).replace(tzinfo=None),
        "notes": appointment.notes,
        "revision": appointment.revision,
        "scope": SCOPE_THIS,
    }


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Appointment.Status.choices)
    scope = forms.ChoiceField(choices=SCOPE_CHOICES, initial=SCOPE_THIS, required=False)
    revision = forms.IntegerField(widget=forms.HiddenInput)


class DeleteForm(forms.Form):
    scope = forms.ChoiceField(choices=SCOPE_CHOICES, initial=SCOPE_THIS, required=False)
    revision = forms.IntegerField(widget=forms.HiddenInput)


class CalendarQueryForm(forms.Form):
    """The calendar's address: which view, around which date, whose calendar."""

    view = forms.ChoiceField(
        choices=[(AGENDA, "Agenda"), (WEEK, "Week"), (DAY, "Day"), (MONTH, "Month")],
        required=False,
    )
    date = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Go to"
    )
    clinician = forms.CharField(required=False, max_length=20)
    cancelled = forms.ChoiceField(
        choices=[("show", "Show cancelled"), ("hide", "Hide cancelled")],
        required=False,
    )

    # How many days a week view shows (phones ask for one or three).
    days = forms.TypedChoiceField(
        choices=[(span, str(span)) for span in WEEK_SPANS],
        coerce=int,
        required=False,
        empty_value=None,
    )
    team = forms.IntegerField(required=False, min_value=1)
    location = forms.IntegerField(required=False, min_value=1)
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000)

    def clean_clinician(self):
        value = self.cleaned_data["clinician"].strip()
        if value in ("", "all"):
            return value
        if not value.isdigit():
            raise ValidationError("Choose a clinician from the list.")
        return int(value)


class PatientForm(forms.Form):
    first_name = forms.CharField(max_length=100)
    last_name = forms.CharField(max_length=100, required=False)
    preferred_name = forms.CharField(max_length=100, required=False)
    date_of_birth = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    email = forms.EmailField(required=False)
    phone = forms.CharField(max_length=40, required=False)
    primary_clinician = ClinicianChoiceField(
        queryset=User.objects.none(),
        required=False,
        empty_label="(none)",
        error_messages={"invalid_choice": "Choose a clinician of this practice."},
    )

    # Set by "Save anyway" after a possible-duplicate warning.
    save_anyway = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user: User, patient: Patient | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["primary_clinician"]
        field.queryset = primary_clinician_choices(user=user, patient=patient)
        current = patient.primary_clinician_id if patient is not None else None
        if user.can_manage_all_schedules:
            return
        if current is not None and current != user.pk:
            # A colleague's patient: kept as it is, whatever is posted.
            field.disabled = True
            field.help_text = (
                "Only an administrator or a scheduler can give this patient another "
                "primary clinician."
            )
        elif current is not None or patient is None:
            # Their own patient, or a new one: it stays, or becomes, theirs. A
            # patient with no primary clinician may stay so, or become theirs.
            field.required = True
            field.empty_label = None

    def clean(self):
        cleaned = super().clean()
        if self.fields["primary_clinician"].disabled:
            # Unchanged: leave it out, so the save does not touch it.
            self.cleaned_data.pop("primary_clinician", None)
        return cleaned


def patient_initial(patient) -> dict:
    return {
        "first_name": patient.first_name,
        "last_name": patient.last_name,
        "preferred_name": patient.preferred_name,
        "date_of_birth": patient.date_of_birth,
        "email": patient.email,
        "phone": patient.phone,
        "primary_clinician": patient.primary_clinician_id,
    }


class PatientSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search by name")
    inactive = forms.BooleanField(required=False, label="Include deactivated")


class ServiceForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="e.g. Psychotherapy")
    default_minutes = forms.IntegerField(
        min_value=5, max_value=720, initial=53, label="Usual length (minutes)"
    )
    is_active = forms.BooleanField(
        required=False,
        initial=True,
        label="Offered (can be chosen for new appointments)",
    )


class LocationForm(forms.Form):
    name = forms.CharField(
        max_length=120,
        help_text="Shown in synced calendars. Never put a meeting link here.",
    )
    is_telehealth = forms.BooleanField(
        required=False, label="Telehealth (not an office)"
    )
    is_active = forms.BooleanField(
        required=False,
        initial=True,
        label="In use (can be chosen for new appointments)",
    )


class TeamForm(forms.Form):
    """A team's name and its clinicians (administrators, in Settings)."""

    name = forms.CharField(max_length=120)
    members = ClinicianMultipleChoiceField(
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Clinicians",
        error_messages={"invalid_choice": "Choose clinicians of this practice."},
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        members = self.fields["members"]
        assert isinstance(members, ClinicianMultipleChoiceField)
        members.queryset = clinician_choices(user=user)


class TeamDeleteForm(forms.Form):
    """Names the team to remove, so that a bare POST removes nothing."""

    team = forms.IntegerField(widget=forms.HiddenInput)
