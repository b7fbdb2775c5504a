"""The key the login lockout counts failures under.

Sign-in finds the account whatever the case of the email and ignores spaces around
it, so the lockout must count every such spelling as one account: otherwise
``OKAFOR@riverside.test`` signs in while ``okafor@riverside.test`` is locked, and
failures spread over ten spellings never add up to a lock.
"""

from django.conf import settings


def login_email_key(email: str | None) -> str:
    """The email as sign-in matches it: no surrounding space, case folded."""
    return (email or "").strip().casefold()


def axes_username(request, credentials: dict | None = None) -> str:
    """``AXES_USERNAME_CALLABLE``: the lockout's username is the normalised email."""
    field = settings.AXES_USERNAME_FORM_FIELD
    if credentials:
        email = credentials.get(field)
    else:
        email = getattr(request, "POST", {}).get(field)
    return login_email_key(email)
