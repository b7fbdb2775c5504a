from axes.signals import user_locked_out
from django.contrib.auth.signals import (
    user_logged_in,
    user_logged_out,
    user_login_failed,
)
from django.dispatch import receiver

from practice.models import AuditEvent, User
from practice.net import client_ip
from practice.services import audit_record


def _user_for_email(email: str | None) -> User | None:
    if not email:
        return None
    return User.objects.filter(email__iexact=email).select_related("practice").first()


@receiver(user_logged_in)
def record_login(sender, request, user, **kwargs):
    audit_record(
        kind=AuditEvent.Kind.LOGIN,
        practice=user.practice,
        actor=user,
        client_ip=client_ip(request) if request else None,
    )


@receiver(user_logged_out)
def record_logout(sender, request, user, **kwargs):
    if user is None:
        return
    audit_record(
        kind=AuditEvent.Kind.LOGOUT,
        practice=user.practice,
        actor=user,
        client_ip=client_ip(request) if request else None,
    )


@receiver(user_login_failed)
def record_login_failed(sender, credentials, request=None, **kwargs):
    target = _user_for_email(credentials.get("username"))
    audit_record(
        kind=AuditEvent.Kind.LOGIN_FAILED,
        practice=target.practice if target else None,
        target_user=target,
        client_ip=client_ip(request) if request else None,
        details={"email": (credentials.get("username") or "")[:254]},
    )


@receiver(user_locked_out)
def record_lockout(sender, request, username=None, ip_address=None, **kwargs):
    target = _user_for_email(username)
    audit_record(
        kind=AuditEvent.Kind.LOCKOUT,
        practice=target.practice if target else None,
        target_user=target,
        client_ip=client_ip(request) if request else ip_address,
        details={"email": (username or "")[:254]},
    )
