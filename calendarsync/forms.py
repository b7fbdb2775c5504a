from django import forms


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
