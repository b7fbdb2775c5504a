from urllib.parse import urlencode

from django.shortcuts import redirect
from django.urls import reverse

from practice.twofactor.services import (
    SECOND_STEP_SESSION_KEY,
    SecondStep,
    second_step_owed,
    user_requires_two_factor,
)

# Reachable while the second step is owed: signing out, the step itself (codes
# and passkeys), and what never needs a session.
SECOND_STEP_URL_NAMES = frozenset(
    {
        "two_factor_verify",
        "logout",
        "healthz",
        "robots_txt",
        "calendarsync:feed",
        "otp_webauthn:credential-authentication-begin",
        "otp_webauthn:credential-authentication-complete",
        "otp_webauthn:js-i18n-catalog",
    }
)
# Reachable while a required second factor is not set up yet.
SET_UP_URL_NAMES = frozenset(
    {
        "two_factor",
        "two_factor_authenticator",
        "logout",
        "healthz",
        "robots_txt",
        "calendarsync:feed",
        "otp_webauthn:credential-registration-begin",
        "otp_webauthn:credential-registration-complete",
        "otp_webauthn:js-i18n-catalog",
    }
)


class SecondStepMiddleware:
    """A signed-in user who owes a second step, or must set one up, reaches
    nothing else until they have. Listed after django-otp's OTPMiddleware.

    Costs no query for most requests: the devices are only looked up for a session
    that began owing a second step (noted at sign-in) or whose user must use one
    (an operator, or a practice that requires it, read from the practice already
    loaded for its time zone)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.is_verified():
            return None
        if not (
            request.session.get(SECOND_STEP_SESSION_KEY)
            or user_requires_two_factor(user=user)
        ):
            return None
        owed = second_step_owed(user=user)
        if owed is None:
            request.session.pop(SECOND_STEP_SESSION_KEY, None)
            return None
        match = request.resolver_match
        view_name = match.view_name if match is not None else ""
        if owed == SecondStep.VERIFY:
            if view_name in SECOND_STEP_URL_NAMES:
                return None
            return redirect(_with_next("two_factor_verify", request))
        if view_name in SET_UP_URL_NAMES:
            return None
        return redirect(_with_next("two_factor", request))


def _with_next(url_name: str, request) -> str:
    url = reverse(url_name)
    if request.method == "GET" and request.path != "/":
        url += "?" + urlencode({"next": request.get_full_path()})
    return url
