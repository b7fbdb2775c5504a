"""Pages of two-factor sign-in: the second step after the password, Settings →
Two-factor sign-in, and "Confirm it's you" before sensitive administrator
actions."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import authenticate, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_static.models import StaticDevice

from practice.models import AuditEvent
from practice.net import client_ip
from practice.services import audit_record
from practice.twofactor import services
from practice.twofactor.forms import (
    AuthenticatorForm,
    CodeForm,
    ConfirmForm,
    RemoveForm,
)
from practice.twofactor.session import (
    reauth_mark,
    second_step_done,
)


def _safe_next(request, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("home")


def _locked_out(request):
    """The second step is locked: the half-signed-in session ends."""
    logout(request)
    return render(
        request, "registration/two_factor_locked.html", {"hide_shell": True}, status=429
    )


@never_cache
@login_required
def verify(request):
    """The second step: a code from the authenticator app, a recovery code, or a
    passkey (the passkey ceremony posts to the otp_webauthn views)."""
    user = request.user
    wanted = request.POST.get("next") or request.GET.get("next")
    if user.is_verified() or services.second_step_owed(user=user) is None:
        return redirect(_safe_next(request, wanted))
    if services.second_step_locked(user=user):
        return _locked_out(request)
    form = CodeForm(request.POST or None, initial={"next": wanted or ""})
    if request.method == "POST" and form.is_valid():
        check = services.second_step_code_check(
            user=user, code=form.cleaned_data["code"], client_ip=client_ip(request)
        )
        if check.locked:
            return _locked_out(request)
        if check.passed:
            second_step_done(request, check.device)
            if isinstance(check.device, StaticDevice):
                left = services.user_factors(user=user).recovery_codes_left
                messages.warning(
                    request,
                    f"You used a recovery code; {left} left. Get new ones in "
                    "Settings → Two-factor sign-in.",
                )
            return redirect(_safe_next(request, form.cleaned_data["next"]))
        form.add_error("code", "That code is not right. Try the newest one.")
    factors = services.user_factors(user=user)
    return render(
        request,
        "registration/two_factor_verify.html",
        {"form": form, "factors": factors, "hide_shell": True},
    )


@never_cache
@login_required
def manage(request, authenticator_form=None, status=200):
    """Settings → Two-factor sign-in: set up an authenticator app and passkeys,
    see new recovery codes once, remove methods."""
    user = request.user
    factors = services.user_factors(user=user)
    required = services.user_requires_two_factor(user=user)
    context = {
        "factors": factors,
        "required": required,
        "setting_up": required and not factors.enabled,
        "new_codes": request.session.pop(services.NEW_CODES_SESSION_KEY, None),
        "section": "two_factor",
        "base_template": (
            "settings_base.html" if user.practice_id else "practice/operator_base.html"
        ),
    }
    if not factors.authenticators:
        key = services.authenticator_pending_key(request.session)
        setup_url = services.authenticator_setup_url(user=user, key=key)
        context.update(
            authenticator_form=authenticator_form or AuthenticatorForm(),
            setup_url=setup_url,
            qr_code=services.authenticator_qr_data_uri(setup_url),
            key_text=services.authenticator_key_text(key),
        )
    context["hide_shell"] = context["setting_up"]
    return render(request, "practice/two_factor.html", context, status=status)


@require_POST
@login_required
def authenticator_add(request):
    """Confirm the authenticator app being set up with one of its codes."""
    user = request.user
    form = AuthenticatorForm(request.POST)
    key = request.session.get(services.PENDING_KEY_SESSION_KEY)
    if not form.is_valid() or not key:
        return manage(request, authenticator_form=form, status=400)
    first = not services.user_factors(user=user).enabled
    address = client_ip(request)
    try:
        device = services.authenticator_add(
            user=user, key=key, code=form.cleaned_data["code"], client_ip=address
        )
    except ValidationError as error:
        form.add_error("code", error)
        return manage(request, authenticator_form=form, status=400)
    del request.session[services.PENDING_KEY_SESSION_KEY]
    if first:
        request.session[services.NEW_CODES_SESSION_KEY] = services.recovery_codes_issue(
            user=user, client_ip=address
        )
        second_step_done(request, device)
    messages.success(request, "Your authenticator app is set up.")
    return redirect("two_factor")


@require_POST
@login_required
def recovery_codes_new(request):
    """Replace the recovery codes; the new ones are shown once."""
    user = request.user
    if not services.user_factors(user=user).enabled:
        messages.error(request, "Turn on two-factor sign-in first.")
        return redirect("two_factor")
    request.session[services.NEW_CODES_SESSION_KEY] = services.recovery_codes_issue(
        user=user, client_ip=client_ip(request)
    )
    return redirect("two_factor")


@require_POST
@login_required
def factor_remove(request):
    """Remove an authenticator app or a passkey of one's own."""
    form = RemoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a method to remove.")
        return redirect("two_factor")
    try:
        services.factor_remove(
            user=request.user,
            method=form.cleaned_data["method"],
            device_id=form.cleaned_data["device"],
            client_ip=client_ip(request),
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Removed.")
    return redirect("two_factor")


def reauth_refused(request, *, return_to: str):
    """A sensitive action without a recent confirmation. A page is sent on to
    "Confirm it's you" and comes back; a form that was posted is refused (nothing
    saved) with the same page, and is submitted again afterwards."""
    if request.method in ("GET", "HEAD"):
        return redirect(f"{reverse('reauth')}?{urlencode({'next': return_to})}")
    form = ConfirmForm(initial={"next": return_to})
    _codes_only_if_enabled(form, request.user)
    return _confirm_page(request, form, resubmit=True, status=403)


def _codes_only_if_enabled(form, user) -> None:
    if not services.user_factors(user=user).enabled:
        del form.fields["code"]


def _confirm_page(request, form, *, resubmit=False, status=200):
    return render(
        request,
        "registration/reauth.html",
        {
            "form": form,
            "resubmit": resubmit,
            "factors": services.user_factors(user=request.user),
        },
        status=status,
    )


@never_cache
@login_required
def reauth(request):
    """Confirm it's you: the password, a code, or a passkey, then back."""
    user = request.user
    wanted = request.POST.get("next") or request.GET.get("next")
    form = ConfirmForm(request.POST or None, initial={"next": wanted or ""})
    _codes_only_if_enabled(form, user)
    if request.method == "POST" and form.is_valid():
        address = client_ip(request)
        if form.cleaned_data.get("password"):
            # Through the authentication backends, so that axes counts a wrong
            # password here as it does on the sign-in page.
            confirmed = authenticate(
                request, username=user.email, password=form.cleaned_data["password"]
            )
            if confirmed is not None and confirmed.pk == user.pk:
                reauth_mark(request)
                audit_record(
                    kind=AuditEvent.Kind.REAUTHENTICATED,
                    practice=user.practice,
                    actor=user,
                    client_ip=address,
                    details={"method": "password"},
                )
                return redirect(_safe_next(request, form.cleaned_data["next"]))
            form.add_error("password", "That password is not right.")
        else:
            check = services.second_step_code_check(
                user=user,
                code=form.cleaned_data["code"],
                client_ip=address,
                purpose="confirm",
            )
            if check.locked:
                return _locked_out(request)
            if check.passed:
                second_step_done(request, check.device)
                return redirect(_safe_next(request, form.cleaned_data["next"]))
            form.add_error("code", "That code is not right. Try the newest one.")
    return _confirm_page(request, form)
