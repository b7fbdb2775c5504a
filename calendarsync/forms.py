from django import forms

from calendarsync.models import PROVIDER_PRESETS, CalendarAccount


class EmailLinkForm(forms.Form):
    """Which of the user's own links to email; the address is always their own."""

    link = forms.CharField(max_length=16)


class PracticeSyncForm(forms.Form):
    enabled = forms.TypedChoiceField(
        choices=[("1", "On"), ("0", "Off")], coerce=lambda value: value == "1"
    )


class MemberActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("reset", "Reset"), ("disable", "Disable"), ("enable", "Enable")]
    )


class BusyLinkActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("enable", "Make"), ("reset", "Reset"), ("disable", "Disable")]
    )


class ConnectAccountForm(forms.Form):
    """Connect a calendar account. The password is never shown again: the field
    is never filled back in."""

    provider = forms.ChoiceField(
        label="Provider",
        choices=CalendarAccount.Provider.choices,
        initial=CalendarAccount.Provider.ICLOUD,
    )
    server_url = forms.URLField(
        label="Server address",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="Only for Nextcloud and other CalDAV servers: the presets know "
        "theirs.",
    )
    username = forms.CharField(label="Username", max_length=254)
    password = forms.CharField(
        label="App-specific password",
        max_length=500,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
    )

    def clean(self):
        data = super().clean() or {}
        provider = data.get("provider")
        if provider and not data.get("server_url"):
            if not PROVIDER_PRESETS[CalendarAccount.Provider(provider)].url:
                self.add_error("server_url", "Enter the address of your server.")
        return data


class ReplacePasswordForm(forms.Form):
    """A new app password for the connected account (its username stays). Never
    filled back in."""

    password = forms.CharField(
        label="New app-specific password",
        max_length=500,
        strip=False,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password"}
        ),
        error_messages={"required": "Enter the new app-specific password."},
    )

    def __init__(self, *args, **kwargs):
        # Its own ids: the sync page has other forms with a password field.
        kwargs.setdefault("auto_id", "replace_%s")
        super().__init__(*args, **kwargs)


class ChooseCalendarForm(forms.Form):
    """ "new" for Tend's own calendar, or the address of an empty one."""

    calendar = forms.CharField(max_length=500)


class DisconnectAccountForm(forms.Form):
    delete_calendar = forms.BooleanField(required=False)


class ChangeNoticesForm(forms.Form):
    """Change notices by email: on or off."""

    notices = forms.ChoiceField(
        choices=[("on", "On"), ("off", "Off")],
        error_messages={
            "required": "Choose whether Tend emails you about changes.",
            "invalid_choice": "Choose whether Tend emails you about changes.",
        },
    )


class BusyAddressForm(forms.Form):
    """A personal calendar's secret iCalendar address, read as busy time."""

    name = forms.CharField(
        label="Calendar name",
        max_length=120,
        required=False,
        help_text="Shown only to you, e.g. “Family”. Left empty, Tend uses the "
        "calendar's own name.",
    )
    url = forms.CharField(
        label="Secret iCal address",
        max_length=2000,
        help_text="Starts with https:// or webcal://. Tend keeps it encrypted and "
        "shows only its host.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "inputmode": "url"}
        ),
    )

    def __init__(self, *args, **kwargs):
        # Its own ids: the sync page has other forms with a name field.
        kwargs.setdefault("auto_id", "busy_%s")
        super().__init__(*args, **kwargs)


class BusyAccountCalendarForm(forms.Form):
    """A calendar of the connected account, read as busy time."""

    calendar = forms.CharField(max_length=500)
    name = forms.CharField(max_length=120, required=False)
