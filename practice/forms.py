from typing import cast

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import (
    MinimumLengthValidator,
    get_default_password_validators,
)

from practice.models import (
    AuditEvent,
    Practice,
    Role,
    User,
    known_time_zones,
    validate_cidr,
)
from practice.selectors import (
    AuditFilter,
    audit_patient_ids_matching,
    audit_user_choices,
)


class LoginForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email",
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )
    error_messages = {
        # One message whatever went wrong, so the form never tells whether an
        # address has an account.
        "invalid_login": "That email and password do not match an active account.",
        "inactive": "That email and password do not match an active account.",
    }


def password_rule() -> str:
    """The password rule in one sentence, as the configured validators apply it."""
    lengths = [
        validator.min_length
        for validator in get_default_password_validators()
        if isinstance(validator, MinimumLengthValidator)
    ]
    length = f"At least {max(lengths)} characters. " if lengths else ""
    return (
        f"{length}Any characters you like, spaces included: a few unrelated words "
        "make a password that is strong and easy to remember. Very common passwords "
        "and ones too close to your name or email are refused."
    )


class SetPasswordForm(auth_forms.SetPasswordForm):
    """Choosing a password from an invitation or a reset link."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = password_rule()


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = password_rule()


def time_zone_choices():
    return [(name, name) for name in known_time_zones()]


class PracticeForm(forms.Form):
    name = forms.CharField(max_length=200)
    time_zone = forms.ChoiceField(
        choices=time_zone_choices,
        help_text="Times in Tend and in calendar links are shown in this zone.",
        error_messages={
            "invalid_choice": "%(value)s is not a known time zone. Choose one from "
            "the list, such as America/New_York.",
        },
    )
    clinicians_may_schedule_themselves = forms.BooleanField(
        required=False,
        label="Clinicians may schedule their own appointments",
    )
    two_factor_required = forms.BooleanField(
        required=False,
        label="Require two-factor sign-in for everyone",
        help_text="After their password, everyone types a code from an "
        "authenticator app or uses a passkey. People who have not set one up are "
        "asked to right after signing in.",
    )


ROLE_CHOICES = [(role.value, role.label) for role in Role]


class UserForm(forms.Form):
    display_name = forms.CharField(label="Name", max_length=150)
    credentials = forms.CharField(
        max_length=60, required=False, help_text="Shown after the name, e.g. LCSW."
    )
    roles = forms.MultipleChoiceField(
        choices=ROLE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one role."},
    )

    def clean_roles(self):
        return [Role(value) for value in self.cleaned_data["roles"]]


class ActiveForm(forms.Form):
    """Deactivate or reactivate a user or a patient; anything else is refused."""

    active = forms.TypedChoiceField(
        choices=[("1", "Reactivate"), ("0", "Deactivate")],
        coerce=lambda value: value == "1",
    )


class UserCreateForm(UserForm):
    email = forms.EmailField()
    # A taken address is refused by user_create, on this field.
    field_order = ["email", "display_name", "credentials", "roles"]


class NetworksForm(forms.Form):
    networks = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text=(
            "One address or range per line, IPv4 or IPv6 (e.g. 203.0.113.0/24). "
            "Leave empty to allow every address."
        ),
    )

    def clean_networks(self):
        lines = [
            line.split("#", 1)[0].strip()
            for line in self.cleaned_data["networks"].splitlines()
        ]
        cidrs = [line for line in lines if line]
        errors = []
        for cidr in cidrs:
            try:
                validate_cidr(cidr)
            except forms.ValidationError as error:
                errors.extend(error.messages)
        if errors:
            raise forms.ValidationError(errors)
        return cidrs


def practice_form_initial(practice: Practice) -> dict:
    return {
        field: getattr(practice, field)
        for field in (
            "name",
            "time_zone",
            "clinicians_may_schedule_themselves",
            "two_factor_required",
        )
    }


# The patient filter finds patients by name; more matches than this ask for more of
# the name (or the patient's number) rather than an unreadable filter.
AUDIT_PATIENT_MATCH_LIMIT = 20


class AuditFilterForm(forms.Form):
    """The audit log's filters. Every field is optional; the patient is found by
    name or by number (as on the patient's page: "#12" or "12")."""

    person = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        empty_label="Anyone",
        error_messages={
            "invalid_choice": "That person is not a user of this practice. Choose "
            "one from the list."
        },
    )
    patient = forms.CharField(
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "Name or number"}),
    )
    kind = forms.ChoiceField(
        label="Event",
        required=False,
        choices=[("", "Any event"), *AuditEvent.Kind.choices],
        error_messages={
            "invalid_choice": "“%(value)s” is not a kind of event. Choose one from "
            "the list."
        },
    )
    first_day = forms.DateField(
        label="From",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Write the first day as YYYY-MM-DD."},
    )
    last_day = forms.DateField(
        label="To",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Write the last day as YYYY-MM-DD."},
    )

    def __init__(self, *args, practice: Practice, **kwargs):
        super().__init__(*args, **kwargs)
        self.practice = practice
        person = cast(forms.ModelChoiceField, self.fields["person"])
        person.queryset = audit_user_choices(practice=practice)

    def clean_patient(self) -> tuple[int, ...]:
        text = self.cleaned_data["patient"].strip()
        if not text:
            return ()
        number = text.removeprefix("#").strip()
        if number.isdigit():
            return (int(number),)
        found = audit_patient_ids_matching(
            practice=self.practice, text=text, limit=AUDIT_PATIENT_MATCH_LIMIT
        )
        if not found:
            raise forms.ValidationError(
                "No patient of this practice matches “%(text)s”.",
                params={"text": text},
                code="no_patient",
            )
        if len(found) > AUDIT_PATIENT_MATCH_LIMIT:
            raise forms.ValidationError(
                "More than %(limit)s patients match “%(text)s”. Type more of the "
                "name, or open the audit log from the patient's page.",
                params={"text": text, "limit": AUDIT_PATIENT_MATCH_LIMIT},
                code="too_many_patients",
            )
        return tuple(found)

    def clean(self):
        cleaned = super().clean() or {}
        first, last = cleaned.get("first_day"), cleaned.get("last_day")
        if first and last and first > last:
            self.add_error(
                "last_day", "The last day must be on or after the first day."
            )
        return cleaned

    def audit_filter(self) -> AuditFilter:
        """The valid form's filter for ``audit_event_list``."""
        data = self.cleaned_data or {}
        return AuditFilter(
            actor=data.get("person"),
            patient_ids=data.get("patient") or (),
            kind=data.get("kind") or "",
            first_day=data.get("first_day"),
            last_day=data.get("last_day"),
        )
