from django import forms

from practice.twofactor.services import Method


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6 digits your authenticator app shows, or one of your "
        "recovery codes.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "none",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
        error_messages={"required": "Type the code."},
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)


class AuthenticatorForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=12,
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "pattern": "[0-9 ]*",
            }
        ),
        error_messages={"required": "Type the 6 digits the app shows."},
    )


class RemoveForm(forms.Form):
    method = forms.ChoiceField(
        choices=[(Method.AUTHENTICATOR, "app"), (Method.PASSKEY, "passkey")]
    )
    device = forms.IntegerField(min_value=1)


class ConfirmForm(forms.Form):
    """Confirm it's you: the password, or a code (a passkey needs no form)."""

    password = forms.CharField(
        label="Your password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    code = forms.CharField(
        required=False,
        max_length=32,
        label="Or a code",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "none"}
        ),
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean() or {}
        if not cleaned.get("password") and not cleaned.get("code"):
            raise forms.ValidationError(
                "Type your password or a code."
                if "code" in self.fields
                else "Type your password."
            )
        return cleaned
