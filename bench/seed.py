"""Deterministic bench data: one practice of ``clinicians`` clinicians, the first
with a full year of appointments (S1), the others with the practice-wide window's
(S2), a scheduler, a small second practice and a group practice of
``group_clinicians`` clinicians in teams, with a few weeks of appointments, for the
SCHEDULING pages (S4)."""

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from calendarsync.models import FeedScope
from calendarsync.services import feed_links_issue
from practice.models import Practice, Role, User
from practice.services import user_create
from scheduling.models import (
    Appointment,
    BusyCalendar,
    BusyTime,
    Location,
    Patient,
    Team,
)
from scheduling.services import team_create

FIRST = ["Élodie", "Mary-Kate", "Sam", "Noor", "Kenji", "Ana", "Oskar", "Lena"]
LAST = ["O'Brien", "van der Berg", "Ng", "Okafor", "Chen", "Rivera", "Stone", "Ali"]
HOURS = [9, 10, 11, 13, 14, 15, 16]
EDITED_SHARE = 0.2


@dataclass
class Size:
    clinicians: int = 50
    s1_per_day: int = 5  # S1: ~1,500 events over -60 .. +365 days, weekdays
    others_per_day: int = 4
    day_stride: int = 1
    patients: int = 400
    repeats: int = 40
    naive_repeats: int = 5
    group_clinicians: int = 300  # S4
    team_size: int = 25
    page_repeats: int = 10
    busy_events: int = 2000  # S6: a personal calendar read as busy time
    busy_series: int = 100


FULL = Size()
TINY = Size(
    group_clinicians=8,
    team_size=3,
    page_repeats=2,
    clinicians=3,
    s1_per_day=1,
    others_per_day=1,
    day_stride=9,
    patients=12,
    repeats=3,
    naive_repeats=2,
    busy_events=200,
    busy_series=10,
)


@dataclass
class Seeded:
    practice: Practice
    scheduler: User
    clinicians: list[User]
    small_practice: Practice
    small_scheduler: User
    small_team: Team
    small_location: Location
    group_practice: Practice
    group_scheduler: User
    group_clinicians: int
    group_team: Team
    group_location: Location
    personal_paths: dict[int, str]  # clinician id -> personal feed path
    practice_path: str
    small_practice_path: str
    s1_events: int
    appointments: int


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def _practice(name: str, clinicians: int, rng: random.Random) -> tuple:
    practice = Practice.objects.create(name=name, time_zone="America/New_York")
    scheduler = user_create(
        practice=practice,
        email=f"scheduler@{practice.pk}.bench.test",
        display_name="Sasha Scheduler",
        roles=[Role.SCHEDULER],
        password="bench-password",
    )
    staff = [
        user_create(
            practice=practice,
            email=f"clinician{index}@{practice.pk}.bench.test",
            display_name=f"{rng.choice(FIRST)} {rng.choice(LAST)} {index}",
            credentials=rng.choice(["LCSW", "PhD", "LMFT", ""]),
            roles=[Role.CLINICIAN],
            password="bench-password",
        )
        for index in range(clinicians)
    ]
    return practice, scheduler, staff


def _fill(practice, clinician, *, back, ahead, per_day, stride, patients, rng, now):
    zone = practice.zone
    today = now.astimezone(zone).date()
    locations = list(Location.objects.filter(practice=practice))
    rows, links = [], []
    series: dict[tuple, datetime] = {}
    for offset in range(-back, ahead + 1, stride):
        day = today + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for hour in HOURS[:per_day]:
            start = datetime(day.year, day.month, day.day, hour, tzinfo=zone)
            number = len(rows)
            is_event = number % 23 == 7
            # Most appointments belong to a weekly series booked in one go (one
            # creation time); one in five was edited later, on its own.
            booked = series.setdefault(
                (day.weekday(), hour),
                now - timedelta(minutes=rng.randint(30 * 1440, 120 * 1440)),
            )
            edited = rng.random() < EDITED_SHARE
            changed = booked + (now - booked) * rng.random() if edited else booked
            cancelled = number % 37 == 5
            appointment = Appointment(
                practice=practice,
                clinician=clinician,
                kind=Appointment.Kind.EVENT if is_event else Appointment.Kind.SESSION,
                title="Supervision" if is_event else "",
                location=rng.choice(locations),
                start=start,
                end=start + timedelta(minutes=50),
                status=Appointment.Status.CANCELLED
                if cancelled
                else Appointment.Status.SCHEDULED,
                cancelled_at=changed if cancelled else None,
                uid=uuid.UUID(int=rng.getrandbits(128), version=4),
                sequence=rng.randint(1, 3) if edited else 0,
                created_at=booked,
                updated_at=changed,
            )
            rows.append(appointment)
            if not is_event:
                group = min(len(patients), 2 if number % 11 == 3 else 1)
                links.append((appointment, rng.sample(patients, group)))
    Appointment.objects.bulk_create(rows, batch_size=2000)
    through = Appointment.patients.through
    through.objects.bulk_create(
        [
            through(appointment_id=appointment.pk, patient_id=patient.pk)
            for appointment, chosen in links
            for patient in chosen
        ],
        batch_size=5000,
    )
    return len(rows)


def _busy(practice, clinicians, *, now) -> None:
    """Each clinician's personal calendar over the next two weeks: busy at noon
    on two weekdays a week and tentatively one evening (the blocks S4's pages
    draw beside the appointments)."""
    zone = practice.zone
    today = now.astimezone(zone).date()
    calendars = BusyCalendar.objects.bulk_create(
        [
            BusyCalendar(
                practice=practice, clinician=clinician, name="Personal", read_at=now
            )
            for clinician in clinicians
        ]
    )
    rows = []
    for number, calendar in enumerate(calendars):
        for offset in range(15):
            day = today + timedelta(days=offset)
            times = []
            if day.weekday() in (number % 5, (number + 2) % 5):
                times.append((12, 0, 60, False))
            if day.weekday() == (number + 4) % 5:
                times.append((17, 0, 90, True))
            for hour, minute, minutes, tentative in times:
                start = datetime(
                    day.year, day.month, day.day, hour, minute, tzinfo=zone
                )
                rows.append(
                    BusyTime(
                        calendar=calendar,
                        practice=practice,
                        clinician_id=calendar.clinician_id,
                        start=start,
                        end=start + timedelta(minutes=minutes),
                        tentative=tentative,
                    )
                )
    BusyTime.objects.bulk_create(rows, batch_size=5000)


def _group(practice, clinicians, *, size: Size, rng, now) -> int:
    """The group practice of S4: three locations, teams of ``team_size``
    clinicians (every tenth clinician also in the next team), and four
    appointments a weekday for each clinician from a week back to two weeks
    ahead."""
    Location.objects.bulk_create(
        [
            Location(practice=practice, name="North Clinic"),
            Location(practice=practice, name="South Clinic"),
            Location(practice=practice, name="Telehealth", is_telehealth=True),
        ]
    )
    for start in range(0, len(clinicians), size.team_size):
        members = clinicians[start : start + size.team_size]
        members += clinicians[start + size.team_size :: 10][:2]
        team_create(
            practice=practice,
            name=f"Team {start // size.team_size + 1:02d}",
            members=members,
        )
    patients = Patient.objects.bulk_create(
        [
            Patient(
                practice=practice,
                first_name=rng.choice(FIRST),
                last_name=rng.choice(LAST),
            )
            for _ in range(size.patients)
        ]
    )
    return sum(
        _fill(
            practice,
            clinician,
            back=7,
            ahead=14,
            per_day=size.others_per_day,
            stride=size.day_stride,
            patients=patients,
            rng=rng,
            now=now,
        )
        for clinician in clinicians
    )


def seed(size: Size) -> Seeded:
    """Create the bench data (same shapes on every run, relative to today)."""
    rng = random.Random(6)
    now = timezone.now()
    practice, scheduler, clinicians = _practice(
        "Bench Counseling", size.clinicians, rng
    )
    Location.objects.bulk_create(
        [
            Location(practice=practice, name="Main Street Office"),
            Location(practice=practice, name="Harbor View, Suite 2"),
            Location(practice=practice, name="Telehealth", is_telehealth=True),
        ]
    )
    patients = Patient.objects.bulk_create(
        [
            Patient(
                practice=practice,
                first_name=rng.choice(FIRST),
                last_name=rng.choice(LAST),
            )
            for _ in range(size.patients)
        ]
    )
    s1_events = _fill(
        practice,
        clinicians[0],
        back=60,
        ahead=365,
        per_day=size.s1_per_day,
        stride=size.day_stride,
        patients=patients,
        rng=rng,
        now=now,
    )
    total = s1_events
    for clinician in clinicians[1:]:
        total += _fill(
            practice,
            clinician,
            back=16,
            ahead=92,
            per_day=size.others_per_day,
            stride=size.day_stride,
            patients=patients,
            rng=rng,
            now=now,
        )
    small, small_scheduler, small_clinicians = _practice("Bench Small", 2, rng)
    Location.objects.create(practice=small, name="Small Office")
    small_patients = Patient.objects.bulk_create(
        [Patient(practice=small, first_name="Ana", last_name="Ng")]
    )
    for clinician in small_clinicians:
        total += _fill(
            small,
            clinician,
            back=16,
            ahead=20,
            per_day=1,
            stride=3,
            patients=small_patients,
            rng=rng,
            now=now,
        )

    small_team = team_create(practice=small, name="Everyone", members=small_clinicians)
    group, group_scheduler, group_staff = _practice(
        "Bench Group Practice", size.group_clinicians, rng
    )
    total += _group(group, group_staff, size=size, rng=rng, now=now)
    _busy(small, small_clinicians, now=now)
    _busy(group, group_staff, now=now)

    personal = {}
    for clinician in clinicians:
        _access, links = feed_links_issue(user=clinician)
        personal[clinician.pk] = _path(links[0].https_url)
    _access, links = feed_links_issue(user=scheduler)
    (everyone,) = [item for item in links if item.link.scope == FeedScope.PRACTICE]
    _access, small_links = feed_links_issue(user=small_scheduler)
    (small_everyone,) = [
        item for item in small_links if item.link.scope == FeedScope.PRACTICE
    ]
    return Seeded(
        practice=practice,
        scheduler=scheduler,
        clinicians=clinicians,
        small_practice=small,
        small_scheduler=small_scheduler,
        small_team=small_team,
        small_location=Location.objects.get(practice=small),
        group_practice=group,
        group_scheduler=group_scheduler,
        group_clinicians=len(group_staff),
        group_team=Team.objects.filter(practice=group).order_by("name").first(),
        group_location=Location.objects.filter(practice=group).order_by("pk").first(),
        personal_paths=personal,
        practice_path=_path(everyone.https_url),
        small_practice_path=_path(small_everyone.https_url),
        s1_events=s1_events,
        appointments=total,
    )
