"""Audit sign-in events. The receivers only translate signals into service calls."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import (
    user_logged_in,
    user_logged_out,
    user_login_failed,
)
from django.dispatch import receiver

from practice.models import AuditEvent
from practice.net import client_ip
from practice.services import audit_record, login_failure_record, login_lockout_record
from practice.sessions import session_signed_in


def _address(request) -> str | None:
    return client_ip(request) if request is not None else None


@receiver(user_logged_in)
def record_login(sender, request, user, **kwargs):
    audit_record(
        kind=AuditEvent.Kind.LOGIN,
        practice=user.practice,
        actor=user,
        client_ip=_address(request),
    )


@receiver(user_logged_in)
def start_session_lifetime(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        session_signed_in(request.session)


@receiver(user_logged_out)
def record_logout(sender, request, user, **kwargs):
    if user is None:
        return
    audit_record(
        kind=AuditEvent.Kind.LOGOUT,
        practice=user.practice,
        actor=user,
        client_ip=_address(request),
    )


@receiver(user_login_failed)
def record_login_failed(sender, credentials, request=None, **kwargs):
    login_failure_record(
        email=credentials.get("username") or "", client_ip=_address(request)
    )


@receiver(user_locked_out)
def record_lockout(sender, request, username=None, ip_address=None, **kwargs):
    login_lockout_record(
        email=username or "",
        client_ip=_address(request) if request is not None else ip_address,
    )
