"""Reads and writes for two-factor sign-in. Every function takes the user it acts
for; devices are only ever looked up among that user's own."""

import time
from base64 import b32encode
from binascii import unhexlify
from dataclasses import dataclass
from datetime import timedelta

import segno
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp import user_has_device
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key
from django_otp_webauthn.models import WebAuthnCredential

from practice.models import AuditEvent, User
from practice.services import audit_record

RECOVERY_CODE_COUNT = 10
# Session keys: when the password or a second factor was last confirmed, and
# whether this sign-in still owes a second step.
REAUTH_SESSION_KEY = "tend_reauth_at"
SECOND_STEP_SESSION_KEY = "tend_second_step"
# The authenticator-app key being set up, kept in the session until confirmed.
PENDING_KEY_SESSION_KEY = "tend_totp_pending_key"
NEW_CODES_SESSION_KEY = "tend_new_recovery_codes"


class Method:
    AUTHENTICATOR = "authenticator app"
    RECOVERY_CODE = "recovery code"
    PASSKEY = "passkey"


@dataclass(frozen=True)
class Factors:
    """A user's confirmed second factors."""

    authenticators: list[TOTPDevice]
    passkeys: list[WebAuthnCredential]
    recovery_codes_left: int

    @property
    def enabled(self) -> bool:
        return bool(self.authenticators or self.passkeys)


def user_factors(*, user: User) -> Factors:
    """The user's confirmed authenticator apps, passkeys and unused recovery codes."""
    return Factors(
        authenticators=list(
            TOTPDevice.objects.devices_for_user(user).order_by("created_at")
        ),
        passkeys=list(
            WebAuthnCredential.objects.devices_for_user(user).order_by("created_at")
        ),
        recovery_codes_left=StaticToken.objects.filter(
            device__user=user, device__confirmed=True
        ).count(),
    )


def user_requires_two_factor(*, user: User) -> bool:
    """Whether this user may not work without a second factor: installation
    operators always, practice staff when their practice requires it."""
    if user.practice is None:
        return bool(user.is_superuser)
    return user.practice.two_factor_required


# The second step ------------------------------------------------------------------


class SecondStep:
    VERIFY = "verify"
    SET_UP = "set_up"


def second_step_owed(*, user: User) -> str | None:
    """What the signed-in (not yet verified) user must do before anything else:
    pass the second step, set a factor up, or nothing."""
    if user_has_device(user):
        return SecondStep.VERIFY
    if user_requires_two_factor(user=user):
        return SecondStep.SET_UP
    return None


def _lockout_window_start(user: User):
    """Wrong codes count from the later of: the lockout period ago, the user's
    last passed second step."""
    start = timezone.now() - (settings.AXES_COOLOFF_TIME or timedelta(days=3650))
    passed = (
        AuditEvent.objects.filter(
            kind=AuditEvent.Kind.TWO_FACTOR_PASSED, actor=user, created_at__gt=start
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return max(start, passed) if passed else start


def second_step_locked(*, user: User) -> bool:
    """Whether the user's second step is locked: LOGIN_FAILURE_LIMIT wrong codes
    within LOGIN_LOCKOUT_MINUTES (and since the last passed step). Kept per
    account, whatever the address, since whoever is guessing has the password."""
    failures = AuditEvent.objects.filter(
        kind=AuditEvent.Kind.TWO_FACTOR_FAILED,
        target_user=user,
        created_at__gt=_lockout_window_start(user),
    ).count()
    return failures >= settings.AXES_FAILURE_LIMIT


def _normalise_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


@dataclass(frozen=True)
class CodeCheck:
    device: Device | None
    locked: bool

    @property
    def passed(self) -> bool:
        return self.device is not None


@transaction.atomic
def second_step_code_check(
    *, user: User, code: str, client_ip: str | None, purpose: str = "sign-in"
) -> CodeCheck:
    """Check a code from an authenticator app or a recovery code (which is used
    up). A wrong code is recorded; the one that reaches the limit locks the
    second step and records the lockout. Nothing is checked while locked."""
    # One check at a time per user, so that concurrent guesses cannot overrun
    # the limit.
    User.objects.select_for_update().filter(pk=user.pk).first()
    if second_step_locked(user=user):
        return CodeCheck(device=None, locked=True)
    code = _normalise_code(code)
    candidates: list[Device] = []
    if code.isdigit():
        candidates += TOTPDevice.objects.devices_for_user(user).select_for_update()
    if code:
        candidates += StaticDevice.objects.devices_for_user(user).select_for_update()
    for device in candidates:
        if device.verify_token(code):
            method = (
                Method.RECOVERY_CODE
                if isinstance(device, StaticDevice)
                else Method.AUTHENTICATOR
            )
            second_step_passed_record(
                user=user, method=method, client_ip=client_ip, purpose=purpose
            )
            return CodeCheck(device=device, locked=False)
    audit_record(
        kind=AuditEvent.Kind.TWO_FACTOR_FAILED,
        practice=user.practice,
        target_user=user,
        client_ip=client_ip,
        details={"for": purpose},
    )
    locked = second_step_locked(user=user)
    if locked:
        audit_record(
            kind=AuditEvent.Kind.TWO_FACTOR_LOCKOUT,
            practice=user.practice,
            target_user=user,
            client_ip=client_ip,
        )
    return CodeCheck(device=None, locked=locked)


def second_step_passed_record(
    *, user: User, method: str, client_ip: str | None, purpose: str = "sign-in"
) -> AuditEvent:
    """Record a passed second step (it also ends the count of wrong codes)."""
    return audit_record(
        kind=AuditEvent.Kind.TWO_FACTOR_PASSED,
        practice=user.practice,
        actor=user,
        client_ip=client_ip,
        details={"method": method, "for": purpose},
    )


# Setting factors up ----------------------------------------------------------------


def authenticator_pending_key(session) -> str:
    """The key of the authenticator app being set up (hex), new for each session
    until one is confirmed."""
    key = session.get(PENDING_KEY_SESSION_KEY)
    if not key:
        key = default_key()
        session[PENDING_KEY_SESSION_KEY] = key
    return key


def authenticator_setup_url(*, user: User, key: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return TOTPDevice(user=user, key=key).config_url


def authenticator_qr_data_uri(setup_url: str) -> str:
    """The setup address as a QR code (SVG data URI, made here)."""
    return segno.make(setup_url, error="m").svg_data_uri(
        scale=5, border=2, dark="#1d2430", light="#ffffff"
    )


def authenticator_key_text(key: str) -> str:
    """The key as people type it into an app: base32 in groups of four."""
    text = b32encode(unhexlify(key)).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


@transaction.atomic
def authenticator_add(
    *, user: User, key: str, code: str, client_ip: str | None
) -> TOTPDevice:
    """Add an authenticator app once the user typed a code it shows for ``key``."""
    code = _normalise_code(code)
    template = TOTPDevice(user=user, key=key)
    totp = TOTP(template.bin_key, template.step, template.t0, template.digits)
    totp.time = time.time()
    if not code.isdigit() or not totp.verify(int(code), tolerance=template.tolerance):
        raise ValidationError(
            "That code does not match. Check the time on your phone is right, and "
            "type the 6 digits the app shows now.",
            code="wrong_code",
        )
    number = TOTPDevice.objects.filter(user=user).count() + 1
    device = TOTPDevice(
        user=user,
        key=key,
        name=f"Authenticator app {number}" if number > 1 else "Authenticator app",
        confirmed=True,
        last_t=totp.t(),
    )
    device.full_clean()
    device.save()
    factor_added_record(user=user, method=Method.AUTHENTICATOR, client_ip=client_ip)
    return device


def factor_added_record(
    *, user: User, method: str, client_ip: str | None
) -> AuditEvent:
    """Record a new second factor."""
    return _own_record(
        user, AuditEvent.Kind.TWO_FACTOR_ADDED, client_ip, {"method": method}
    )


def _own_record(
    user: User, kind: str, client_ip: str | None, details: dict | None = None
) -> AuditEvent:
    """Record what a user did to their own sign-in methods."""
    return audit_record(
        kind=kind,
        practice=user.practice,
        actor=user,
        target_user=user,
        client_ip=client_ip,
        details=details,
    )


@transaction.atomic
def recovery_codes_issue(*, user: User, client_ip: str | None) -> list[str]:
    """Replace the user's recovery codes with new ones; returns them (they are
    shown once). Each code works once."""
    device, _created = StaticDevice.objects.get_or_create(
        user=user, defaults={"name": "Recovery codes", "confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(
        [StaticToken(device=device, token=code) for code in codes]
    )
    _own_record(user, AuditEvent.Kind.RECOVERY_CODES_ISSUED, client_ip)
    return codes


@transaction.atomic
def factor_remove(
    *, user: User, method: str, device_id: int, client_ip: str | None
) -> None:
    """Remove one of the user's authenticator apps or passkeys. Removing the last
    one turns two-factor sign-in off (recovery codes go too), which a user who
    must use it cannot do."""
    model = TOTPDevice if method == Method.AUTHENTICATOR else WebAuthnCredential
    device = model.objects.devices_for_user(user).filter(pk=device_id).first()
    if device is None:
        raise ValidationError("That sign-in method no longer exists.", code="gone")
    factors = user_factors(user=user)
    if len(factors.authenticators) + len(
        factors.passkeys
    ) == 1 and user_requires_two_factor(user=user):
        raise ValidationError(
            "Two-factor sign-in is required for your account, so you cannot remove "
            "your only method. Add another one first.",
            code="last_required",
        )
    device.delete()
    if not user_factors(user=user).enabled:
        StaticDevice.objects.filter(user=user).delete()
    _own_record(user, AuditEvent.Kind.TWO_FACTOR_REMOVED, client_ip, {"method": method})


@transaction.atomic
def factors_reset(*, user: User, actor: User, client_ip: str | None) -> None:
    """An administrator turns a colleague's two-factor sign-in off (a lost phone):
    every app, passkey and recovery code of theirs goes. If the practice requires
    two-factor, they set it up again at their next sign-in."""
    if user.pk == actor.pk:
        raise ValidationError(
            "Change your own two-factor sign-in in Settings → Two-factor sign-in.",
            code="own_factors",
        )
    if not user_factors(user=user).enabled:
        return
    for model in (TOTPDevice, WebAuthnCredential, StaticDevice):
        model.objects.filter(user=user).delete()
    audit_record(
        kind=AuditEvent.Kind.TWO_FACTOR_REMOVED,
        practice=user.practice,
        actor=actor,
        target_user=user,
        client_ip=client_ip,
        details={"method": "all, by an administrator"},
    )
