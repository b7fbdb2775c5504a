import logging
import smtplib
from collections.abc import Collection, Iterable, Mapping
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from practice.hooks import user_authority_changed, user_label_changed
from practice.models import (
    AllowedNetwork,
    AuditEvent,
    Practice,
    Role,
    User,
    patient_ids_text,
)
from practice.net import address_allowed
from practice.selectors import practice_allowed_cidrs
from practice.text import single_line

logger = logging.getLogger(__name__)


def audit_record(
    *,
    kind: str,
    practice: Practice | None,
    actor: User | None = None,
    target_user: User | None = None,
    client_ip: str | None = None,
    patient_ids: Iterable[int] = (),
    details: dict | None = None,
) -> AuditEvent:
    """Append one event to the practice's audit log (one INSERT)."""
    return AuditEvent.objects.create(
        kind=kind,
        practice=practice,
        actor=actor if actor is not None and actor.pk else None,
        target_user=target_user,
        client_ip=client_ip,
        patient_ids=patient_ids_text(patient_ids),
        details=details or {},
    )


def operator_access_record(
    *,
    operator: User,
    kind: str,
    client_ip: str | None,
    details: dict,
    seen: Mapping[int | None, Collection[int]],
    count_rows: Mapping[int | None, int] | None = None,
) -> list[AuditEvent]:
    """Record that an installation operator saw or changed data of practices at
    /operator/: one event in the log of each practice in ``seen`` (practice id →
    ids of the patients concerned; None for rows of no practice, such as other
    operators), with its row count from ``count_rows``, all in one INSERT."""
    events = []
    for practice_id in sorted(seen, key=lambda key: (key is None, key or 0)):
        event_details = dict(details)
        if count_rows is not None:
            event_details["rows"] = count_rows.get(practice_id, 0)
        events.append(
            AuditEvent(
                kind=kind,
                practice_id=practice_id,
                actor=operator,
                client_ip=client_ip,
                patient_ids=patient_ids_text(seen[practice_id]),
                details=event_details,
            )
        )
    return AuditEvent.objects.bulk_create(events)


def _user_for_login_email(email: str) -> User | None:
    if not email:
        return None
    return (
        User.objects.filter(email__iexact=email.strip())
        .select_related("practice")
        .first()
    )


def login_failure_record(*, email: str, client_ip: str | None) -> AuditEvent:
    """Record a refused sign-in, in the practice of the account it named (if any)."""
    target = _user_for_login_email(email)
    return audit_record(
        kind=AuditEvent.Kind.LOGIN_FAILED,
        practice=target.practice if target else None,
        target_user=target,
        client_ip=client_ip,
        details={"email": (email or "")[:254]},
    )


def login_lockout_record(*, email: str, client_ip: str | None) -> AuditEvent | None:
    """Record that sign-ins for this account from this address are locked, once per
    lockout: further refused attempts while it lasts are already failed sign-ins."""
    target = _user_for_login_email(email)
    email = (email or "")[:254]
    recent = AuditEvent.objects.filter(
        kind=AuditEvent.Kind.LOCKOUT, client_ip=client_ip, details__email=email
    )
    if settings.AXES_COOLOFF_TIME:
        recent = recent.filter(
            created_at__gte=timezone.now() - settings.AXES_COOLOFF_TIME
        )
    if recent.exists():
        return None
    return audit_record(
        kind=AuditEvent.Kind.LOCKOUT,
        practice=target.practice if target else None,
        target_user=target,
        client_ip=client_ip,
        details={"email": email},
    )


def password_reset_request(*, email: str, client_ip: str | None) -> None:
    """Email a password link to the active practice user with this address, if there
    is one. The caller answers the same whether or not there was."""
    users = User.objects.filter(
        email__iexact=email.strip(), is_active=True, practice__isnull=False
    ).select_related("practice")
    for user in users:
        try:
            set_password_email_send(user=user)
        except (OSError, smtplib.SMTPException):
            # Answer as if it was sent: an error here would tell a stranger that the
            # address has an account. The operator sees the failure in the log.
            logger.exception(
                "Password reset email to user %s could not be sent", user.pk
            )
            continue
        audit_record(
            kind=AuditEvent.Kind.PASSWORD_RESET_REQUESTED,
            practice=user.practice,
            target_user=user,
            client_ip=client_ip,
        )


def set_password_email_send(
    *,
    user: User,
    subject_template: str = "registration/password_reset_subject.txt",
    body_template: str = "registration/password_reset_email.txt",
) -> None:
    """Email the user a one-time link to choose a password. The link is built from
    SITE_URL, never from the request's Host header."""
    site = urlsplit(settings.SITE_URL)
    context = {
        "email": user.email,
        "domain": site.netloc,
        "site_name": site.netloc,
        "protocol": site.scheme or "https",
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": default_token_generator.make_token(user),
        "user": user,
    }
    subject = "".join(render_to_string(subject_template, context).splitlines())
    body = render_to_string(body_template, context)
    EmailMultiAlternatives(subject, body, to=[user.email]).send()


@transaction.atomic
def practice_create(*, name: str, time_zone: str) -> Practice:
    """Create a practice after validating its name and zone."""
    practice = Practice(name=single_line(name), time_zone=time_zone)
    practice.full_clean()
    practice.save()
    return practice


@transaction.atomic
def practice_update(
    *, practice: Practice, actor: User, client_ip: str | None, **fields
) -> Practice:
    """Change practice settings and record what changed."""
    changed = {}
    if "name" in fields:
        fields["name"] = single_line(fields["name"])
    for name, value in fields.items():
        if getattr(practice, name) != value:
            changed[name] = [getattr(practice, name), value]
            setattr(practice, name, value)
    practice.full_clean()
    if changed:
        practice.save(update_fields=list(changed))
        audit_record(
            kind=AuditEvent.Kind.PRACTICE_CHANGED,
            practice=practice,
            actor=actor,
            client_ip=client_ip,
            details={"changed": changed},
        )
    return practice


@transaction.atomic
def networks_set(
    *, practice: Practice, cidrs: Iterable[str], actor: User, client_ip: str | None
) -> list[str]:
    """Replace the practice's allowed networks, refusing a list that would lock out
    the administrator making the change; returns them, normalised."""
    wanted = []
    for cidr in cidrs:
        network = AllowedNetwork(practice=practice, cidr=cidr.strip())
        network.full_clean(exclude=["practice"], validate_unique=False)
        normalised = str(network.network)
        if normalised not in wanted:
            wanted.append(normalised)
    if not address_allowed(client_ip, wanted):
        raise ValidationError(
            "This list does not include the address you are using now "
            f"({client_ip or 'unknown'}), so saving it would lock you out. Add your "
            "own network first.",
            code="would_lock_out",
        )
    before = practice_allowed_cidrs(practice_id=practice.pk)
    if before == wanted:
        return wanted
    AllowedNetwork.objects.filter(practice=practice).delete()
    AllowedNetwork.objects.bulk_create(
        [AllowedNetwork(practice=practice, cidr=cidr) for cidr in wanted]
    )
    audit_record(
        kind=AuditEvent.Kind.NETWORKS_CHANGED,
        practice=practice,
        actor=actor,
        client_ip=client_ip,
        details={"before": before, "after": wanted},
    )
    return wanted


def _check_roles(roles: Iterable[Role]) -> list[Role]:
    roles = list(roles)
    if not roles:
        raise ValidationError("Choose at least one role.", code="no_role")
    return roles


@transaction.atomic
def user_create(
    *,
    practice: Practice,
    email: str,
    display_name: str,
    roles: Iterable[Role],
    credentials: str = "",
    password: str | None = None,
    actor: User | None = None,
    client_ip: str | None = None,
) -> User:
    """Add a user to the practice with the given roles. Without a password the user
    is emailed an invitation to choose one; if that email cannot be sent, nothing is
    saved."""
    roles = _check_roles(roles)
    email = User.objects.normalize_email(email).strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError(
            {"email": "A user with this email address already exists."},
            code="duplicate_email",
        )
    user = User(
        practice=practice,
        email=email,
        display_name=single_line(display_name),
        credentials=single_line(credentials),
    )
    user.set_roles(roles)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    audit_record(
        kind=AuditEvent.Kind.USER_CREATED,
        practice=practice,
        actor=actor,
        target_user=user,
        client_ip=client_ip,
        details={"email": email, "roles": [str(role) for role in roles]},
    )
    if not password:
        try:
            set_password_email_send(
                user=user,
                subject_template="registration/invite_subject.txt",
                body_template="registration/invite_email.txt",
            )
        except (OSError, smtplib.SMTPException):
            logger.exception("Invitation email to user %s could not be sent", user.pk)
            raise ValidationError(
                "The invitation email could not be sent, so the user was not added. "
                "Try again in a few minutes; if it keeps failing, ask your Tend "
                "operator to check the email settings.",
                code="invite_not_sent",
            ) from None
    return user


@transaction.atomic
def user_update(
    *,
    user: User,
    display_name: str,
    credentials: str,
    roles: Iterable[Role],
    actor: User,
    client_ip: str | None,
) -> User:
    """Change a user's name, credentials and roles; role changes are audited."""
    roles = _check_roles(roles)
    if user.pk == actor.pk and Role.ADMINISTRATOR not in roles:
        raise ValidationError(
            "You cannot remove your own administrator role; ask another "
            "administrator to do it.",
            code="self_demotion",
        )
    before = [str(role) for role in user.roles]
    label_before = user.label
    user.display_name = single_line(display_name)
    user.credentials = single_line(credentials)
    user.set_roles(roles)
    user.full_clean(exclude=["password"])
    user.save()
    if user.label != label_before:
        # Calendars name the clinician: the apps that publish them republish.
        user_label_changed.send(sender=User, user=user)
    after = [str(role) for role in user.roles]
    if before != after:
        user_authority_changed.send(sender=User, user=user)
        audit_record(
            kind=AuditEvent.Kind.ROLE_CHANGED,
            practice=user.practice,
            actor=actor,
            target_user=user,
            client_ip=client_ip,
            details={"before": before, "after": after},
        )
    return user


@transaction.atomic
def user_set_active(
    *, user: User, active: bool, actor: User, client_ip: str | None
) -> User:
    """Deactivate or reactivate a user. Users are never deleted: their history
    (appointments, audit events) keeps pointing at them."""
    if user.pk == actor.pk and not active:
        raise ValidationError("You cannot deactivate yourself.", code="self_deactivate")
    if user.is_active == active:
        return user
    user.is_active = active
    user.save(update_fields=["is_active"])
    if not active:
        # Reactivation must not bring back a session (or a link) from before.
        _session_epoch_raise(user)
        user_authority_changed.send(sender=User, user=user)
    audit_record(
        kind=(
            AuditEvent.Kind.USER_REACTIVATED
            if active
            else AuditEvent.Kind.USER_DEACTIVATED
        ),
        practice=user.practice,
        actor=actor,
        target_user=user,
        client_ip=client_ip,
    )
    return user


def _session_epoch_raise(user: User) -> None:
    User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
    user.refresh_from_db(fields=["session_epoch"])


@transaction.atomic
def user_sessions_end(*, user: User, actor: User, client_ip: str | None) -> User:
    """Sign ``user`` out on every device at once: every session signed in before
    now stops matching the user on its next request (``User.session_epoch``)."""
    _session_epoch_raise(user)
    audit_record(
        kind=AuditEvent.Kind.SIGNED_OUT_EVERYWHERE,
        practice=user.practice,
        actor=actor,
        target_user=user,
        client_ip=client_ip,
    )
    return user
