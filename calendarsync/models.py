"""Calendar sync: who may publish which calendar, and the links that carry it.

A link's secret is never stored. ``FeedAccess.secret_salt`` is per-user random
material; the secret in a link is an HMAC of it keyed by ``CALENDAR_FEED_KEY``
(see ``calendarsync.tokens``), so a copy of the database alone cannot produce a
working link, and Reset (new salt) ends every old link at once.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from calendarsync.caldav_client import AUTH_REFUSED
from calendarsync.crypto import UNREADABLE
from practice.changes import ChangeNotifyingManager
from practice.models import Practice
from scheduling.publication import Scope

SALT_BYTES = 32
NEW_CLIENT_PERIOD = timedelta(days=7)


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def new_public_id() -> str:
    # 9 random bytes -> 12 urlsafe characters; only locates the row, the HMAC
    # part of the token is the credential.
    return secrets.token_urlsafe(9)


class FeedAccess(models.Model):
    """A user's calendar-sync switch and the random material their links derive from."""

    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="feed_accesses"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feed_access"
    )
    enabled = models.BooleanField(default=True)
    # The clinician asked for a busy-only link (off until they do, and again after
    # they disable it). Reset and Disable Access of the whole account cover it too:
    # Reset gives it a new address, and while access is off it is refused with
    # every other link.
    busy_link_enabled = models.BooleanField(default=False)
    secret_salt = models.BinaryField(max_length=SALT_BYTES, default=new_salt)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    reset_at = models.DateTimeField(null=True, blank=True)
    # Any change that can alter what a feed shows (reset, enable, disable).
    changed_at = models.DateTimeField(default=timezone.now)

    objects = ChangeNotifyingManager()

    class Meta:
        verbose_name = "calendar sync access"
        verbose_name_plural = "calendar sync access"

    def __str__(self):
        state = "enabled" if self.enabled else "disabled"
        return f"Calendar sync for user {self.user_id} ({state})"


# Whose appointments a link's calendar shows: the publication contract's scopes.
FeedScope = Scope


class FeedLink(models.Model):
    """One calendar a user may subscribe to: personal, one clinician's, the whole
    practice's, or a clinician's own busy-only calendar. Deleted (and so re-issued
    with a new id) on reset."""

    access = models.ForeignKey(
        FeedAccess, on_delete=models.CASCADE, related_name="links"
    )
    scope = models.CharField(max_length=10, choices=FeedScope.choices)
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    public_id = models.CharField(max_length=16, unique=True, default=new_public_id)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The last representation served: conditional requests compare against it so
    # a 304 is only ever sent for identical bytes.
    served_etag = models.CharField(max_length=80, blank=True)
    served_last_modified = models.DateTimeField(null=True, blank=True)
    # The cache key (see ``calendarsync.freshness``) those bytes were built for: while
    # the feed's current key still equals it, a conditional request is answered 304
    # without touching the cache or the appointments.
    served_key = models.CharField(max_length=64, blank=True)

    # Remembering what was served changes no calendar.
    quiet_fields = ("served_etag", "served_last_modified", "served_key")
    # Set on links loaded by ``selectors.feed_link_for_poll``: the version of the
    # calendar's schedule, which the key of its bytes includes, and its latest
    # change.
    schedule_version: str
    version_changed: datetime | None
    version_count: int | None
    objects = ChangeNotifyingManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["access", "scope", "clinician"],
                name="feedlink_unique_calendar",
            ),
            models.UniqueConstraint(
                fields=["access", "scope"],
                condition=Q(clinician__isnull=True),
                name="feedlink_unique_practice_calendar",
            ),
            models.CheckConstraint(
                condition=Q(scope="practice", clinician__isnull=True)
                | (
                    Q(scope__in=["personal", "clinician", "busy"])
                    & Q(clinician__isnull=False)
                ),
                name="feedlink_clinician_matches_scope",
            ),
        ]

    def __str__(self):
        return f"{self.get_scope_display()} link {self.public_id}"

    @property
    def practice_id(self) -> int | None:
        """The link's practice when its access is loaded, else None (for change
        notices, ``practice.changes``)."""
        return self.access.practice_id if FeedLink.access.is_cached(self) else None


class FeedFetch(models.Model):
    """Who reads a link: one row per link and client family, updated at most once
    a minute however often the client polls."""

    class Client(models.TextChoices):
        GOOGLE = "google", "Google Calendar"
        APPLE_IOS = "ios", "iPhone or iPad"
        APPLE_MAC = "mac", "Mac Calendar"
        OUTLOOK = "outlook", "Outlook"
        THUNDERBIRD = "thunderbird", "Thunderbird"
        OTHER = "other", "Other application"

    link = models.ForeignKey(FeedLink, on_delete=models.CASCADE, related_name="fetches")
    client = models.CharField(max_length=16, choices=Client.choices)
    first_fetched_at = models.DateTimeField(default=timezone.now)
    last_fetched_at = models.DateTimeField(default=timezone.now)
    fetch_count = models.PositiveIntegerField(default=0)
    last_address = models.GenericIPAddressField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(default=200)
    # The networks (IPv4 /16, IPv6 /32) this client has read the link from, and
    # when it last came from one it had never used: a leaked link read by someone
    # else's phone shows up as a new network even when the application is the same.
    networks = models.JSONField(default=list, blank=True)
    new_network_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_fetched_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["link", "client"], name="feedfetch_unique_client"
            )
        ]

    def __str__(self):
        return f"{self.get_client_display()} at {self.last_fetched_at:%Y-%m-%d %H:%M}"

    @property
    def is_new_client(self) -> bool:
        """First seen this week, or seen from a network it never used before this
        week: worth a look in case the link leaked."""
        since = timezone.now() - NEW_CLIENT_PERIOD
        return self.first_fetched_at > since or (
            self.new_network_at is not None and self.new_network_at > since
        )


class CalendarAccount(models.Model):
    """A user's own calendar account that Tend writes their schedule into (at most
    one per user). Tend writes only into ``calendar_url``.

    The password is stored encrypted (``calendarsync.crypto``) and never shown
    again; ``auth_kind`` leaves room for an OAuth bearer credential."""

    class Provider(models.TextChoices):
        ICLOUD = "icloud", "iCloud"
        FASTMAIL = "fastmail", "Fastmail"
        NEXTCLOUD = "nextcloud", "Nextcloud"
        OTHER = "other", "Other CalDAV server"

    class AuthKind(models.TextChoices):
        PASSWORD = "password", "App-specific password"
        BEARER = "bearer", "Bearer token"

    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="calendar_accounts"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="calendar_account",
    )
    provider = models.CharField(max_length=16, choices=Provider.choices)
    server_url = models.URLField(max_length=500)
    username = models.CharField(max_length=254)
    auth_kind = models.CharField(
        max_length=16, choices=AuthKind.choices, default=AuthKind.PASSWORD
    )
    # A Fernet token: useless without CALENDAR_ACCOUNT_KEY.
    secret = models.TextField(editable=False)
    home_url = models.URLField(max_length=500, blank=True)
    calendar_url = models.URLField(max_length=500, blank=True)
    calendar_name = models.CharField(max_length=200, blank=True)
    # Tend made the calendar (and may offer to delete it when disconnecting).
    calendar_created = models.BooleanField(default=False)
    connected_at = models.DateTimeField(default=timezone.now)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    # Only the user can fix the failure (a refused password, a full account).
    needs_attention = models.BooleanField(default=False)
    restored_count = models.PositiveIntegerField(default=0)
    # Held by the one run at a time (``calendarsync.push.lease_claim``).
    push_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    # A task is queued to start at (or after) this moment; it clears this when it
    # starts, so changes meanwhile enqueue no second one (``calendarsync.pushqueue``).
    push_queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A run is wanted (not before this moment): the schedule changed since the
    # last run started. Taken by the run that reads it (``calendarsync.pushqueue``).
    push_wanted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The owner was emailed that the account needs attention, in this failing
    # episode (cleared by the next successful run; ``calendarsync.attention``).
    attention_emailed_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Reset Access paused sending: runs remove Tend's events and send nothing until
    # the owner resumes (``calendarsync.pushstop``).
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When a run first found it may not send (paused, or the owner may not read the
    # calendar), and how many of Tend's events runs have removed since; both
    # cleared by the first run that sends again.
    stopped_at = models.DateTimeField(null=True, blank=True, editable=False)
    stopped_removed = models.PositiveIntegerField(default=0, editable=False)
    # The calendar's sync-token or ctag when Tend's last run left it as Tend wants:
    # while the server still reports it, nothing changed there, and a run need not
    # list the calendar (``calendarsync.push``). Empty: the next run lists it.
    calendar_tag = models.CharField(max_length=500, blank=True, editable=False)

    class Meta:
        indexes = [
            # Runs look for accounts whose run is wanted several times a second
            # (``pushqueue.push_take_due``): only those with a mark.
            models.Index(
                fields=["push_wanted_at"],
                condition=Q(push_wanted_at__isnull=False),
                name="calendaraccount_wanted",
            ),
        ]

    def __str__(self):
        return f"{self.get_provider_display()} account of user {self.user_id}"

    @property
    def password_refused(self) -> bool:
        """Failing until its owner enters a new password: the server refused the
        saved one, or Tend can no longer decrypt it."""
        return (
            self.needs_attention
            and self.failing_since is not None
            and self.failure_message in (AUTH_REFUSED, UNREADABLE)
        )


class PushedEvent(models.Model):
    """What Tend last wrote for one appointment into an account's calendar."""

    account = models.ForeignKey(
        CalendarAccount, on_delete=models.CASCADE, related_name="pushed_events"
    )
    uid = models.CharField(max_length=64)
    href = models.URLField(max_length=700)
    etag = models.CharField(max_length=200, blank=True)
    # SHA-256 of the bytes Tend wrote.
    fingerprint = models.CharField(max_length=64)
    sent_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "uid"], name="pushedevent_unique_uid"
            ),
        ]

    def __str__(self):
        return f"Event {self.uid} in account {self.account_id}"


@dataclass(frozen=True)
class ProviderPreset:
    url: str  # empty: the user gives the address
    password_help: str


PROVIDER_PRESETS = {
    CalendarAccount.Provider.ICLOUD: ProviderPreset(
        url="https://caldav.icloud.com/",
        password_help=(
            "Make an app-specific password at account.apple.com → Sign-In and "
            "Security → App-Specific Passwords. The username is your Apple "
            "Account email."
        ),
    ),
    CalendarAccount.Provider.FASTMAIL: ProviderPreset(
        url="https://caldav.fastmail.com/",
        password_help=(
            "Make an app password in Fastmail under Settings → Privacy & Security "
            "→ Manage app passwords, with access to calendars (CalDAV). The "
            "username is your Fastmail address."
        ),
    ),
    CalendarAccount.Provider.NEXTCLOUD: ProviderPreset(
        url="",
        password_help=(
            "Make an app password in Nextcloud under Personal settings → Security "
            "→ Devices & sessions → Create new app password. The address is "
            "https://your-nextcloud/remote.php/dav."
        ),
    ),
    CalendarAccount.Provider.OTHER: ProviderPreset(
        url="",
        password_help=(
            "Your provider's help names its CalDAV address. Use an app-specific "
            "password if it offers them, never your main password."
        ),
    ),
}


class ChangeNoticeSubscription(models.Model):
    """A clinician's wish to be emailed when something in the next 48 hours is
    booked, moved or cancelled on their personal calendar (``calendarsync.
    notices``). Deleted when they opt out or may no longer read that calendar."""

    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="change_notice_subscriptions"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="change_notice_subscription",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The last email's moment: the next waits until 10 minutes after it. Claimed
    # with a conditional UPDATE, so two workers never both send.
    last_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A send task is queued for (or after) this moment; the task clears it.
    send_queued_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self):
        return f"Change notices for user {self.user_id}"


class PendingChangeNotice(models.Model):
    """One change of one appointment on a subscriber's personal calendar, waiting
    for the next email: where it was before and after (None: not on the calendar).
    No patient, title or note is kept."""

    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    appointment = models.ForeignKey(
        "scheduling.Appointment", on_delete=models.CASCADE, related_name="+"
    )
    is_event = models.BooleanField(default=False)
    before_start = models.DateTimeField(null=True, blank=True)
    after_start = models.DateTimeField(null=True, blank=True)
    # Taken off this calendar by giving it to another clinician.
    handed_over = models.BooleanField(default=False)
    recorded_at = models.DateTimeField(default=timezone.now)
    # The sender that took the row for its email (empty: waiting).
    claim = models.CharField(max_length=32, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "claim"], name="pending_notice_claim")]

    def __str__(self):
        return f"Change notice of appointment {self.appointment_id}"


class BusySource(models.Model):
    """Where one of a clinician's personal calendars is read from, to be kept as
    busy time (``scheduling.BusyCalendar``): a secret iCalendar address, or a
    calendar of their connected CalDAV account (read only, never written).

    The address is a secret (whoever has it reads the whole calendar): it is kept
    as a Fernet token (``calendarsync.crypto``) and shown only as ``address_hint``.
    Nothing read from the calendar is kept here but the conditional-request
    validators and how many busy intervals the last good read gave."""

    class Kind(models.TextChoices):
        ICS = "ics", "iCalendar address"
        CALDAV = "caldav", "Calendar account"

    practice = models.ForeignKey(
        Practice, on_delete=models.CASCADE, related_name="busy_sources"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="busy_sources",
    )
    calendar = models.OneToOneField(
        "scheduling.BusyCalendar", on_delete=models.CASCADE, related_name="source"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # ICS: the address as a Fernet token; useless without CALENDAR_ACCOUNT_KEY.
    secret_url = models.TextField(blank=True, editable=False)
    # What the page shows of the address: "calendar.google.com/…".
    address_hint = models.CharField(max_length=300, blank=True)
    # CalDAV: the calendar read in the owner's account (None once disconnected).
    account = models.ForeignKey(
        CalendarAccount,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="busy_sources",
    )
    caldav_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Conditional requests: the ETag and Last-Modified of the last good answer
    # (CalDAV: the collection's ctag or sync token).
    etag = models.CharField(max_length=300, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    attempted_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    busy_count = models.PositiveIntegerField(default=0)
    # A read is queued to start at (or after) this moment; the read clears it as
    # it starts (``calendarsync.busy_sources``).
    read_queued_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="ics") & ~Q(secret_url=""))
                | (Q(kind="caldav") & ~Q(caldav_url="")),
                name="busysource_has_address",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} busy source of user {self.owner_id}"
