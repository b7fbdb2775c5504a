import functools
import ipaddress
import zoneinfo

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac

from practice.changes import ChangeNotifyingManager, ChangeNotifyingQuerySet


@functools.cache
def known_time_zones() -> tuple[str, ...]:
    """The IANA zone names this server's tz database knows, sorted. Read once per
    process: listing them reads the tz data files (~8 ms)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def validate_time_zone(value: str) -> None:
    """Accept only IANA zone names that this server's tz database knows."""
    if value not in known_time_zones():
        raise ValidationError(
            "%(value)s is not a known time zone. Use an IANA name such as "
            "America/New_York.",
            params={"value": value},
            code="unknown_time_zone",
        )


def validate_cidr(value: str) -> None:
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValidationError(
            "“%(value)s” is not a valid IPv4 or IPv6 network. Write an address "
            "such as 203.0.113.7 or a range such as 203.0.113.0/24 or 2001:db8::/32.",
            params={"value": value},
            code="invalid_cidr",
        ) from None


class Practice(models.Model):
    name = models.CharField(max_length=200)
    time_zone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_time_zone]
    )
    calendar_sync_enabled = models.BooleanField(
        default=True,
        help_text="When off, every calendar link of the practice stops working.",
    )
    clinicians_may_schedule_themselves = models.BooleanField(default=True)
    two_factor_required = models.BooleanField(
        default=False,
        help_text="Everyone must pass a second step (an authenticator app code or "
        "a passkey) after their password.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = ChangeNotifyingManager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class AllowedNetwork(models.Model):
    """One network (CIDR) from which the practice's users may use Tend."""

    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="allowed_networks"
    )
    cidr = models.CharField(max_length=64, validators=[validate_cidr])
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "cidr"], name="allowednetwork_unique_per_practice"
            )
        ]

    def __str__(self):
        return self.cidr

    @property
    def network(self):
        return ipaddress.ip_network(self.cidr, strict=False)


class Role(models.TextChoices):
    ADMINISTRATOR = "administrator", "Practice administrator"
    SCHEDULER = "scheduler", "Scheduler"
    CLINICIAN = "clinician", "Clinician"


ROLE_FIELDS = {
    Role.ADMINISTRATOR: "is_practice_admin",
    Role.SCHEDULER: "is_scheduler",
    Role.CLINICIAN: "is_clinician",
}


SESSION_HASH_SALT = "tend.practice.User.session_auth_hash"


class UserManager(BaseUserManager.from_queryset(ChangeNotifyingQuerySet)):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in. Practice staff belong to exactly one practice;
    installation operators (superusers) belong to none and use Django admin."""

    email = models.EmailField(unique=True)
    practice = models.ForeignKey(
        Practice, on_delete=models.PROTECT, related_name="users", null=True, blank=True
    )
    display_name = models.CharField(max_length=150)
    credentials = models.CharField(
        max_length=60, blank=True, help_text="For example LCSW, PhD, LMFT."
    )
    is_practice_admin = models.BooleanField("practice administrator", default=False)
    is_scheduler = models.BooleanField("scheduler", default=False)
    is_clinician = models.BooleanField("clinician", default=False)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="Installation operators only: may use Django admin."
    )
    date_joined = models.DateTimeField(default=timezone.now)
    # Raised to sign the user out everywhere: every session holds a hash of it
    # (``get_session_auth_hash``), so sessions from before no longer match.
    session_epoch = models.PositiveIntegerField(default=0, editable=False)

    objects = UserManager()
    # Signing in or out changes nothing anyone else reads.
    quiet_fields = ("last_login", "session_epoch")

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["display_name"]

    class Meta:
        ordering = ["display_name", "email"]
        constraints = [
            # An installation operator (superuser) belongs to no practice; practice
            # staff belong to exactly one and can never reach Django admin.
            models.CheckConstraint(
                condition=Q(is_superuser=True, practice__isnull=True)
                | Q(is_superuser=False, is_staff=False, practice__isnull=False),
                name="user_operator_or_practice_member",
                violation_error_message=(
                    "Practice staff belong to a practice and can never be staff or "
                    "superusers; installation operators are superusers with no "
                    "practice."
                ),
            ),
            models.UniqueConstraint(
                Lower("email"),
                name="user_email_unique_ci",
                violation_error_code="duplicate_email",
                violation_error_message=(
                    "A user with this email address already exists."
                ),
            ),
        ]

    def __str__(self):
        return self.label

    @property
    def label(self) -> str:
        """Name as shown to patients and colleagues: "Dana Rivera, LCSW"."""
        name = self.display_name or self.email
        return f"{name}, {self.credentials}" if self.credentials else name

    def get_session_auth_hash(self):
        """What every session of this user holds and is checked against on each
        request (``django.contrib.auth.get_user``): an HMAC of the password hash
        and the session epoch, so changing either ends every session."""
        return self._session_hash(secret=None)

    def get_session_auth_fallback_hash(self):
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash(secret=secret)

    def _session_hash(self, *, secret: str | None) -> str:
        return salted_hmac(
            SESSION_HASH_SALT,
            f"{self.password}|{self.session_epoch}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    def get_full_name(self):
        return self.label

    def get_short_name(self):
        return self.display_name or self.email

    @property
    def roles(self) -> list[Role]:
        return [role for role, field in ROLE_FIELDS.items() if getattr(self, field)]

    def set_roles(self, roles) -> None:
        """Hold exactly ``roles`` (the caller saves)."""
        for role, field in ROLE_FIELDS.items():
            setattr(self, field, role in roles)

    def has_role(self, *roles: Role) -> bool:
        return any(getattr(self, ROLE_FIELDS[role]) for role in roles)

    @property
    def can_manage_all_schedules(self) -> bool:
        return self.has_role(Role.ADMINISTRATOR, Role.SCHEDULER)


class AuditLogImmutable(Exception):
    """An attempt to change or delete an audit event: the log only grows."""

    def __init__(self):
        super().__init__("The audit log cannot be changed or deleted.")


class AuditEventQuerySet(models.QuerySet):
    """Refuses the bulk writes that would change or remove events. Deleting a
    practice or a user who has events is refused too (``on_delete=PROTECT``), and
    on PostgreSQL a trigger refuses UPDATE and DELETE whatever issues them."""

    def update(self, **kwargs):
        raise AuditLogImmutable

    def delete(self):
        raise AuditLogImmutable

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditLogImmutable


def patient_ids_text(patient_ids) -> str:
    """``AuditEvent.patient_ids`` for these ids: ",12,34," (empty for none), so that
    one patient is found with ``patient_ids__contains=",12,"`` on any database."""
    ids = sorted({int(patient_id) for patient_id in patient_ids})
    return f",{','.join(str(patient_id) for patient_id in ids)}," if ids else ""


class AuditEvent(models.Model):
    """A security-relevant event in a practice, kept for administrators to read.

    Append-only: rows are inserted and never changed or deleted (see
    ``AuditEventQuerySet``). ``practice`` may not import the apps above it, so an
    event about patients names them by id (``patient_ids``) and by initials in
    ``details``; ``scheduling`` turns the ids into names for the log page.
    """

    class Kind(models.TextChoices):
        LOGIN = "login", "Signed in"
        LOGIN_FAILED = "login_failed", "Failed sign-in"
        LOCKOUT = "lockout", "Account locked after failed sign-ins"
        LOGOUT = "logout", "Signed out"
        NETWORK_BLOCKED = "network_blocked", "Blocked by network restrictions"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        PASSWORD_RESET_REQUESTED = "password_reset", "Password reset requested"
        USER_CREATED = "user_created", "User added"
        ROLE_CHANGED = "role_changed", "Roles changed"
        USER_DEACTIVATED = "user_deactivated", "User deactivated"
        USER_REACTIVATED = "user_reactivated", "User reactivated"
        PRACTICE_CHANGED = "practice_changed", "Practice settings changed"
        NETWORKS_CHANGED = "networks_changed", "Network restrictions changed"
        SYNC_RESET = "sync_reset", "Calendar links reset"
        SYNC_DISABLED = "sync_disabled", "Calendar sync disabled for a user"
        SYNC_ENABLED = "sync_enabled", "Calendar sync enabled for a user"
        SYNC_PRACTICE_OFF = "sync_practice_off", "Calendar sync switched off"
        SYNC_PRACTICE_ON = "sync_practice_on", "Calendar sync switched on"
        SYNC_LINK_EMAILED = "sync_link_emailed", "Calendar link emailed"
        FEED_FETCHED = "feed_fetched", "Calendar feed fetched"
        PATIENT_VIEWED = "patient_viewed", "Patient viewed"
        PATIENT_LIST_VIEWED = "patient_list_viewed", "Patient list viewed"
        APPOINTMENT_VIEWED = "appointment_viewed", "Appointment viewed"
        CALENDAR_VIEWED = "calendar_viewed", "Calendar viewed"
        PATIENT_CREATED = "patient_created", "Patient added"
        PATIENT_CHANGED = "patient_changed", "Patient details changed"
        PATIENT_DEACTIVATED = "patient_deactivated", "Patient deactivated"
        PATIENT_REACTIVATED = "patient_reactivated", "Patient reactivated"
        OPERATOR_VIEWED = "operator_viewed", "Operator viewed practice data"
        OPERATOR_CHANGED = "operator_changed", "Operator changed practice data"
        AUDIT_EXPORTED = "audit_exported", "Audit log exported"
        SIGNED_OUT_EVERYWHERE = "signed_out_everywhere", "Signed out everywhere"
        TWO_FACTOR_PASSED = "two_factor_passed", "Passed the second sign-in step"
        TWO_FACTOR_FAILED = "two_factor_failed", "Wrong two-factor code"
        TWO_FACTOR_LOCKOUT = (
            "two_factor_lockout",
            "Second step locked after wrong codes",
        )
        TWO_FACTOR_ADDED = "two_factor_added", "Two-factor method added"
        TWO_FACTOR_REMOVED = "two_factor_removed", "Two-factor method removed"
        RECOVERY_CODES_ISSUED = "recovery_codes", "New recovery codes issued"
        REAUTHENTICATED = "reauthenticated", "Confirmed identity"
        CALENDAR_CONNECTED = "calendar_connected", "Calendar account connected"
        CALENDAR_DISCONNECTED = "calendar_disconnected", "Calendar account removed"
        CALENDAR_FAILING = "calendar_failing", "Calendar account failing"
        CALENDAR_RECOVERED = "calendar_recovered", "Calendar account working again"
        CALENDAR_PASSWORD_REPLACED = (
            "calendar_password_replaced",
            "Calendar account password replaced",
        )
        CALENDAR_RESUMED = "calendar_resumed", "Sending to a calendar account resumed"
        BUSY_LINK_ON = "busy_link_on", "Busy-only calendar link issued"
        BUSY_LINK_RESET = "busy_link_reset", "Busy-only calendar link reset"
        BUSY_LINK_OFF = "busy_link_off", "Busy-only calendar link disabled"

    # PROTECT, not CASCADE or SET_NULL: either would change or delete events.
    # Users are deactivated, never deleted, so their events keep their name.
    practice = models.ForeignKey(
        Practice, on_delete=models.PROTECT, related_name="audit_events", null=True
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    target_user = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    # The patients the event concerns, as ",12,34," (``patient_ids_text``).
    patient_ids = models.TextField(blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["practice", "-created_at"])]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogImmutable
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable

    @property
    def patient_id_list(self) -> list[int]:
        return [int(part) for part in self.patient_ids.split(",") if part]

    def detail_lines(self) -> list[str]:
        """Details as short readable lines for the audit log page."""
        lines: list[str] = []
        for key, value in self.details.items():
            if key == "changed" and isinstance(value, dict):
                lines.extend(
                    f"{field.replace('_', ' ')}: {change[0]} → {change[1]}"
                    if isinstance(change, list) and len(change) == 2
                    else f"{field.replace('_', ' ')}: {change}"
                    for field, change in value.items()
                )
                continue
            if value is None or value == "" or value == {}:
                continue  # nothing recorded: no "clinician id: None"
            if isinstance(value, bool):
                value = "yes" if value else "no"
            if isinstance(value, list):
                value = ", ".join(str(part) for part in value) or "none"
            lines.append(f"{key.replace('_', ' ')}: {value}")
        return lines


class RateLimitHit(models.Model):
    """One attempt counted under a rate limit (``practice.services.rate_limit_take``),
    in the database so that every process, worker and machine counts the same."""

    key = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["key", "created_at"])]

    def __str__(self):
        return f"{self.key} at {self.created_at:%Y-%m-%d %H:%M:%S}"
