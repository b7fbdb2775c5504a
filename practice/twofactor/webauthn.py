"""Passkeys (django-otp-webauthn), as the second step only.

The relying party is the host of SITE_URL and the only accepted origin is SITE_URL's
origin, read on each request so that one setting names the site everywhere.
The library's views are used through these subclasses, which add Tend's rules:
the second step's lockout, the audit log, and recovery codes with the first
factor."""

from urllib.parse import urlsplit

from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import path
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions
from django_otp_webauthn import views as webauthn_views
from django_otp_webauthn.helpers import WebAuthnHelper

from practice.net import client_ip
from practice.twofactor import services
from practice.twofactor.session import second_step_done


def relying_party_id(request) -> str:
    """The WebAuthn relying party: SITE_URL's host name."""
    return urlsplit(settings.SITE_URL).hostname or ""


class TendWebAuthnHelper(WebAuthnHelper):
    def get_allowed_origins(self) -> list[str]:
        site = urlsplit(settings.SITE_URL)
        return [f"{site.scheme}://{site.netloc}"]


class SecondStepLocked(exceptions.OTPWebAuthnApiError):
    status_code = 429
    default_code = "second_step_locked"
    default_detail = (
        "Too many wrong codes: the second step is locked for a while. Try again later."
    )


class BeginRegistration(webauthn_views.BeginCredentialRegistrationView):
    pass


class CompleteRegistration(webauthn_views.CompleteCredentialRegistrationView):
    """Adds the passkey; with the user's first factor, issues recovery codes that
    the two-factor page shows once, and counts as this session's second step."""

    def post(self, *args, **kwargs):
        user = self.get_user()
        first = not services.user_factors(user=user).enabled
        response = super().post(*args, **kwargs)
        address = client_ip(self.request)
        services.factor_added_record(
            user=user, method=services.Method.PASSKEY, client_ip=address
        )
        if first:
            self.request.session[services.NEW_CODES_SESSION_KEY] = (
                services.recovery_codes_issue(user=user, client_ip=address)
            )
            # The library counted the new passkey as this session's second step.
            if self.request.user.otp_device is not None:
                second_step_done(self.request, self.request.user.otp_device)
        return response


class SignedInOnly(webauthn_views.AuthenticationCeremonyMixin):
    """A passkey answers for the signed-in user only, and not while their second
    step is locked."""

    def check_can_authenticate(self):
        user = self.get_user()
        if user is None:
            raise exceptions.NotAuthenticated()
        if services.second_step_locked(user=user):
            raise SecondStepLocked()
        super().check_can_authenticate()


class BeginAuthentication(
    SignedInOnly, webauthn_views.BeginCredentialAuthenticationView
):
    pass


class CompleteAuthentication(
    SignedInOnly, webauthn_views.CompleteCredentialAuthenticationView
):
    """Completes the second step (or a re-authentication) with a passkey of the
    signed-in user."""

    def complete_auth(self, device):
        purpose = "confirm" if self.request.user.is_verified() else "sign-in"
        second_step_done(self.request, device)
        services.second_step_passed_record(
            user=device.user,
            method=services.Method.PASSKEY,
            client_ip=client_ip(self.request),
            purpose=purpose,
        )

    def get_success_url(self):
        return self.get_redirect_url() or resolve_url("home")


app_name = "otp_webauthn"

urlpatterns = [
    path(
        "registration/begin/",
        BeginRegistration.as_view(),
        name="credential-registration-begin",
    ),
    path(
        "registration/complete/",
        CompleteRegistration.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        BeginAuthentication.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        CompleteAuthentication.as_view(),
        name="credential-authentication-complete",
    ),
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="js-i18n-catalog",
    ),
]
