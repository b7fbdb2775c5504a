"""Test data, made the way the application makes it.

Every factory goes through the services the pages call (``practice.services``,
``scheduling.services``, ``calendarsync.services``), so test rows are validated,
recorded in the history and carry the same ``sequence``/``updated_at``/``cancelled_at``
bookkeeping as rows made in the SCHEDULING tab. Fixtures in the ``conftest`` modules
only call these. The few tests that write rows straight to the database (to fake the
passage of time, or a state no page can produce) say so where they do it.
"""

import itertools
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import default_key

from calendarsync.accounts import (
    calendar_account_connect,
    calendar_account_use_calendar,
)
from calendarsync.busylinks import busy_link_enable
from calendarsync.models import CalendarAccount, FeedScope
from calendarsync.services import feed_links_issue
from practice.models import Practice, Role, User
from practice.services import practice_create, user_create
from practice.twofactor.services import authenticator_add, recovery_codes_issue
from scheduling.models import (
    Appointment,
    BusyCalendar,
    BusyTime,
    Location,
    Patient,
    Service,
    Team,
)
from scheduling.recurrence import Recurrence
from scheduling.services import (
    appointment_create,
    appointment_delete,
    appointment_set_status,
    appointment_update,
    location_create,
    patient_create,
    service_create,
    team_create,
)

PASSWORD = "correct-horse-battery"

_numbers = itertools.count(1)


def local(practice: Practice, *, days: int = 0, hour: int = 9, minute: int = 0):
    """A time ``days`` from today at ``hour:minute`` in the practice's zone."""
    zone = practice.zone
    today = timezone.now().astimezone(zone).date() + timedelta(days=days)
    return datetime(today.year, today.month, today.day, hour, minute, tzinfo=zone)


def make_practice(
    *, name: str = "Riverside Counseling", time_zone: str = "America/New_York"
) -> Practice:
    """A practice, created as the operator's setup creates one."""
    return practice_create(name=name, time_zone=time_zone)


def make_user(
    practice: Practice,
    *,
    roles: Iterable[Role] = (Role.CLINICIAN,),
    email: str | None = None,
    name: str | None = None,
    credentials: str = "",
    password: str | None = PASSWORD,
) -> User:
    """A user of ``practice`` with ``roles``, added as Settings → Users adds one."""
    number = next(_numbers)
    return user_create(
        practice=practice,
        email=email or f"user{number}@{practice.pk}.example.test",
        display_name=name or f"User {number}",
        credentials=credentials,
        roles=list(roles),
        password=password,
    )


def make_operator(*, email: str = "ops@tend.example", name: str = "Operator") -> User:
    """An installation operator, created as ``manage.py createsuperuser`` creates
    one (operators belong to no practice and only use /operator/)."""
    return User.objects.create_superuser(email, PASSWORD, display_name=name)


def make_authenticator(user: User) -> str:
    """Turn on two-factor sign-in for ``user`` with an authenticator app, as
    Settings → Two-factor sign-in does (the app's current code confirms it);
    returns the app's key (hex). Recovery codes come with ``make_recovery_codes``."""
    key = default_key()
    code = f"{totp(bytes.fromhex(key)):06d}"
    authenticator_add(user=user, key=key, code=code, client_ip=None)
    return key


def make_recovery_codes(user: User) -> list[str]:
    """New recovery codes for ``user``, as the two-factor page issues them."""
    return recovery_codes_issue(user=user, client_ip=None)


def make_patient(
    practice: Practice,
    *,
    first_name: str = "Élodie",
    last_name: str = "",
    preferred_name: str = "",
    date_of_birth: date | None = None,
    email: str = "",
    phone: str = "",
    primary_clinician: User | None = None,
    actor: User | None = None,
) -> Patient:
    """A patient of ``practice``, added as the Patients tab adds one."""
    return patient_create(
        practice=practice,
        actor=actor,
        first_name=first_name,
        last_name=last_name,
        preferred_name=preferred_name,
        date_of_birth=date_of_birth,
        email=email,
        phone=phone,
        primary_clinician=primary_clinician,
    )


def make_location(
    practice: Practice, *, name: str = "Main Street Office", telehealth: bool = False
) -> Location:
    """An office (or a telehealth location) of ``practice``."""
    return location_create(practice=practice, name=name, is_telehealth=telehealth)


def make_service(
    practice: Practice, *, name: str = "Psychotherapy", minutes: int = 50
) -> Service:
    """A service of ``practice`` with its usual length in minutes."""
    return service_create(practice=practice, name=name, default_minutes=minutes)


def make_team(
    practice: Practice, *, name: str = "Downtown team", members: Sequence[User] = ()
) -> Team:
    """A team of ``practice``'s clinicians, added as Settings → Teams adds one."""
    return team_create(practice=practice, name=name, members=members)


def make_appointment(
    clinician: User,
    *,
    start: datetime | None = None,
    minutes: int = 50,
    end: datetime | None = None,
    patients: Sequence[Patient] | None = None,
    kind: str = Appointment.Kind.SESSION,
    title: str = "",
    location: Location | None = None,
    service: Service | None = None,
    notes: str = "",
    recurrence: Recurrence | None = None,
    actor: User | None = None,
    allow_conflicts: bool = True,
) -> Appointment:
    """An appointment of ``clinician`` (a session with a new patient unless given
    ``patients``), booked as the SCHEDULING tab books one: tomorrow 09:00 local for
    ``minutes`` unless told otherwise, overlaps allowed unless ``allow_conflicts`` is
    false."""
    practice = clinician.practice
    start = start or local(practice, days=1, hour=9)
    if patients is None:
        patients = (
            [make_patient(practice, first_name="Pat", last_name="Doe")]
            if kind == Appointment.Kind.SESSION
            else []
        )
    return appointment_create(
        practice=practice,
        actor=actor,
        clinician=clinician,
        start=start,
        end=end or start + timedelta(minutes=minutes),
        kind=kind,
        patients=patients,
        title=title,
        service=service,
        location=location,
        notes=notes,
        recurrence=recurrence,
        allow_conflicts=allow_conflicts,
    )


def change_appointment(
    appointment: Appointment,
    *,
    actor: User | None = None,
    status: str | None = None,
    scope: str = "this",
    **fields,
) -> Appointment:
    """Change ``appointment`` as its edit page does (``fields`` through
    ``appointment_update``, then ``status`` through ``appointment_set_status``) and
    bring the given instance up to date."""
    if fields:
        appointment_update(
            appointment=appointment,
            actor=actor,
            expected_revision=None,
            scope=scope,
            allow_conflicts=True,
            **fields,
        )
    if status is not None:
        appointment_set_status(
            appointment=appointment,
            actor=actor,
            status=status,
            expected_revision=None,
            scope=scope,
        )
    appointment.refresh_from_db()
    return appointment


def delete_appointment(
    appointment: Appointment, *, actor: User | None = None, scope: str = "this"
) -> Appointment:
    """Delete ``appointment`` as its edit page does (softly) and bring it up to date."""
    appointment_delete(
        appointment=appointment, actor=actor, expected_revision=None, scope=scope
    )
    appointment.refresh_from_db()
    return appointment


def feed_links(user: User) -> dict[tuple[str, int | None], str]:
    """{(scope, clinician id): feed path} of the user's links, issued by the service."""
    _access, issued = feed_links_issue(user=user)
    return {
        (item.link.scope, item.link.clinician_id): urlsplit(item.https_url).path
        for item in issued
    }


def feed_paths(user: User) -> dict[str, str]:
    """{scope, or "clinician:<id>": feed path} of the user's links."""
    paths = {}
    for (scope, clinician_id), path in feed_links(user).items():
        key = f"clinician:{clinician_id}" if scope == FeedScope.CLINICIAN else scope
        paths[key] = path
    return paths


def personal_feed_path(user: User) -> str:
    """The path of the user's own calendar feed."""
    return feed_links(user)[(FeedScope.PERSONAL, user.pk)]


def busy_feed_path(user: User) -> str:
    """The path of the clinician ``user``'s busy-only feed, made as the sync page's
    "Make a busy-only link" makes it (nothing changes if they have one)."""
    busy_link_enable(user=user, client_ip=None)
    return feed_links(user)[(FeedScope.BUSY, user.pk)]


def practice_feed_path(user: User) -> str:
    """The path of the practice-wide calendar feed as ``user`` is issued it."""
    return feed_links(user)[(FeedScope.PRACTICE, None)]


def connect_calendar_account(
    user: User,
    *,
    url: str,
    username: str,
    password: str,
    create_calendar: bool = True,
) -> CalendarAccount:
    """``user``'s calendar account at ``url``, connected as Settings → Sync
    connects one (discovery against the real server), with Tend's own calendar
    created in it unless ``create_calendar`` is false."""
    account = calendar_account_connect(
        user=user,
        provider=CalendarAccount.Provider.OTHER,
        server_url=url,
        username=username,
        password=password,
        actor=user,
        client_ip=None,
    ).account
    if create_calendar:
        account = calendar_account_use_calendar(account=account, calendar_url=None)
    return account


def connect_calendar_account_to(
    user: User, server, *, create_calendar: bool = True
) -> CalendarAccount:
    """``connect_calendar_account`` with a test CalDAV server's address and its
    user's credentials (``tests.servers``)."""
    return connect_calendar_account(
        user,
        url=server.url,
        username=server.username,
        password=server.password,
        create_calendar=create_calendar,
    )


def make_busy_calendar(
    clinician: User,
    *,
    name: str = "Personal",
    read_at: datetime | None = None,
    never_read: bool = False,
) -> BusyCalendar:
    """A personal calendar of ``clinician``, last read ``read_at`` (now unless
    told, never with ``never_read``). Written straight to the database: SCHEDULING
    only reads these rows, and the importer that fills them is calendarsync's."""
    return BusyCalendar.objects.create(
        practice=clinician.practice,
        clinician=clinician,
        name=name,
        read_at=None if never_read else read_at or timezone.now(),
    )


def make_busy_time(
    clinician: User,
    *,
    start: datetime,
    end: datetime | None = None,
    minutes: int = 60,
    tentative: bool = False,
    calendar: BusyCalendar | None = None,
) -> BusyTime:
    """One busy interval of ``clinician``'s personal calendar (a new, freshly
    read one unless ``calendar`` is given), as the importer keeps it."""
    calendar = calendar or make_busy_calendar(clinician)
    return BusyTime.objects.create(
        calendar=calendar,
        practice=calendar.practice,
        clinician=calendar.clinician,
        start=start,
        end=end or start + timedelta(minutes=minutes),
        tentative=tentative,
    )
