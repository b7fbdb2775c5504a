"""What the session remembers about a sign-in: whether it still owes a second
step, and when the password or a second factor was last confirmed."""

import time

from django.conf import settings
from django_otp import login as otp_login

from practice.twofactor.services import (
    REAUTH_SESSION_KEY,
    SECOND_STEP_SESSION_KEY,
    second_step_owed,
)


def sign_in_mark(request, user) -> None:
    """Right after the password (any sign-in): note whether the second step is
    owed, and count the password as a fresh confirmation."""
    owed = second_step_owed(user=user)
    if owed:
        request.session[SECOND_STEP_SESSION_KEY] = owed
    reauth_mark(request)


def second_step_done(request, device) -> None:
    """The session has passed its second step with ``device``; it gets a new key,
    as at every change of what a session may do."""
    request.session.cycle_key()
    otp_login(request, device)
    request.session.pop(SECOND_STEP_SESSION_KEY, None)
    reauth_mark(request)


def reauth_mark(request) -> None:
    request.session[REAUTH_SESSION_KEY] = int(time.time())


def reauth_recent(request) -> bool:
    """Whether the password or a second factor was confirmed in this session within
    REAUTH_MINUTES."""
    confirmed_at = request.session.get(REAUTH_SESSION_KEY)
    if not isinstance(confirmed_at, int):
        return False
    return time.time() - confirmed_at < settings.REAUTH_MINUTES * 60
