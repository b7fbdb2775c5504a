import logging
import smtplib
from collections.abc import Collection, Iterable, Mapping
from datetime import timedelta
from functools import partial
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
from django_otp import user_has_device

from practice import tasks
from practice.hooks import user_authority_changed, user_label_changed
from practice.models import (
    AllowedNetwork,
    AuditEvent,
    Practice,
    RateLimitHit,
    Role,
    User,
    patient_ids_text,
)
from practice.net import address_allowed
from practice.selectors import practice_allowed_cidrs
from practice.text import single_line

logger = logging.getLogger(__name__)

HOUR = 3600
# Counted attempts are kept no longer than the longest window any limit uses.
RATE_LIMIT_LONGEST_WINDOW = timedelta(days=1)


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


def rate_limit_take(*, key: str, limit: int, seconds: int) -> bool:
    """Count one attempt under ``key`` and say whether it is allowed: True while at
    most ``limit`` attempts (this one and refused ones included) were counted in the
    last ``seconds``. Counted in the database, so every process and worker agrees."""
    now = timezone.now()
    with transaction.atomic():
        RateLimitHit.objects.filter(
            created_at__lt=now - RATE_LIMIT_LONGEST_WINDOW
        ).delete()
        RateLimitHit.objects.create(key=key, created_at=now)
        counted = RateLimitHit.objects.filter(
            key=key, created_at__gt=now - timedelta(seconds=seconds)
        ).count()
    return counted <= limit


def _address_allowance_take(*, what: str, client_ip: str | None) -> bool:
    return rate_limit_take(
        key=f"{what}:address:{client_ip or 'unknown'}",
        limit=settings.PASSWORD_EMAILS_PER_ADDRESS_HOUR,
        seconds=HOUR,
    )


def _account_allowance_take(*, user: User) -> bool:
    # Resets and invitations share the account's allowance: both carry a link
    # that sets its password.
    return rate_limit_take(
        key=f"password-email:account:{user.pk}",
        limit=settings.PASSWORD_EMAILS_PER_ACCOUNT_HOUR,
        seconds=HOUR,
    )


def password_reset_request(*, email: str, client_ip: str | None) -> None:
    """Queue a password email for whatever account has this address, doing the same
    work whether or not one does: the worker looks the account up
    (``password_reset_email_deliver``). At most ``PASSWORD_EMAILS_PER_ADDRESS_HOUR``
    requests an hour from one client address are queued; the caller answers the
    same either way."""
    if not _address_allowance_take(what="password-reset", client_ip=client_ip):
        logger.warning("Password reset requests over the hourly limit were dropped")
        return
    transaction.on_commit(
        partial(
            tasks.password_reset_email.enqueue,
            email=email.strip()[:254],
            client_ip=client_ip,
        )
    )


def password_reset_email_deliver(*, email: str, client_ip: str | None) -> None:
    """Email a password link to the active practice user with this address, if
    there is one and it has had no more than ``PASSWORD_EMAILS_PER_ACCOUNT_HOUR``
    password emails this hour. Runs in the background worker."""
    user = (
        User.objects.filter(
            email__iexact=email.strip(), is_active=True, practice__isnull=False
        )
        .select_related("practice")
        .first()
    )
    if user is None:
        return
    if not _account_allowance_take(user=user):
        logger.warning(
            "Password reset email to user %s not sent: over the hourly limit", user.pk
        )
        return
    try:
        set_password_email_send(user=user)
    except (OSError, smtplib.SMTPException):
        # The person who asked sees the same page whatever happens here; the
        # operator sees the failure in the log and the task's result.
        logger.exception("Password reset email to user %s could not be sent", user.pk)
        raise
    audit_record(
        kind=AuditEvent.Kind.PASSWORD_RESET_REQUESTED,
        practice=user.practice,
        target_user=user,
        client_ip=client_ip,
    )


def invitation_email_deliver(*, user_id: int) -> None:
    """Email a newly added user the link to choose a password, unless they were
    deactivated or chose one (through a password reset) before it went out. Runs in
    the background worker."""
    user = (
        User.objects.filter(pk=user_id, is_active=True, practice__isnull=False)
        .select_related("practice")
        .first()
    )
    if user is None or user.has_usable_password():
        return
    try:
        set_password_email_send(
            user=user,
            subject_template="registration/invite_subject.txt",
            body_template="registration/invite_email.txt",
        )
    except (OSError, smtplib.SMTPException):
        logger.exception("Invitation email to user %s could not be sent", user.pk)
        raise


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
    if (
        fields.get("two_factor_required")
        and not practice.two_factor_required
        and not user_has_device(actor)
    ):
        raise ValidationError(
            "Turn on two-factor sign-in for yourself first (Settings → Two-factor "
            "sign-in), so that requiring it cannot lock you out.",
            code="two_factor_not_set_up",
        )
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
    is emailed an invitation to choose one, by the background worker once this is
    saved; an administrator's invitations from one client address are limited to
    ``PASSWORD_EMAILS_PER_ADDRESS_HOUR`` an hour."""
    roles = _check_roles(roles)
    email = User.objects.normalize_email(email).strip().lower()
    _check_email_free(email=email, practice=practice)
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
        # Administrators' invitations are limited per client address; the
        # operator's createpractice command (no actor) is not.
        if actor is not None and not _address_allowance_take(
            what="invitation", client_ip=client_ip
        ):
            raise ValidationError(
                "You have sent %(limit)s invitations in the last hour, the most Tend "
                "sends from one address. Nobody was added; try again later.",
                params={"limit": settings.PASSWORD_EMAILS_PER_ADDRESS_HOUR},
                code="invitations_limited",
            )
        # A new account's first email: it always fits the account's allowance,
        # and counts towards it.
        _account_allowance_take(user=user)
        transaction.on_commit(partial(tasks.invitation_email.enqueue, user_id=user.pk))
    return user


# Emails are unique across the installation, so an address in use elsewhere can
# never be added; saying where it is in use would tell one practice about another.
EMAIL_TAKEN_ELSEWHERE = (
    "This email can't be added. If the person already uses Tend with another "
    "practice, ask them for a different address, or contact support."
)


def _check_email_free(*, email: str, practice: Practice) -> None:
    holder = (
        User.objects.filter(email__iexact=email)
        .only("practice_id", "is_active")
        .first()
    )
    if holder is None:
        return
    if holder.practice_id == practice.pk:
        message = (
            "A user with this email address is already in your practice."
            if holder.is_active
            else "A deactivated user of your practice has this email address: "
            "reactivate them on the Users page instead."
        )
    else:
        message = EMAIL_TAKEN_ELSEWHERE
    raise ValidationError({"email": message}, code="duplicate_email")


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
