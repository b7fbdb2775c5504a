"""Demo scheduling data for the demo practices (called by ``seed_demo``).

Deterministic (a seeded random generator) and idempotent: services, locations and
patients are matched by name, and appointments are only booked for a practice that
has none yet, so running it twice changes nothing.
"""

import random
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from practice.models import Practice, User
from scheduling.models import (
    Appointment,
    BusyCalendar,
    BusyTime,
    Location,
    Patient,
    Service,
)
from scheduling.recurrence import MONTHLY, WEEKLY, Recurrence, local_to_utc
from scheduling.services import (
    appointment_create,
    appointment_set_status,
    location_create,
    patient_create,
    patient_set_active,
    service_create,
)

RIVERSIDE_SERVICES = [
    ("Psychotherapy", 53),
    ("Psychotherapy, extended", 60),
    ("Intake", 60),
    ("Couples therapy", 53),
    ("Family therapy", 60),
    ("Group therapy", 90),
    ("Medication consult", 30),
]
RIVERSIDE_LOCATIONS = [
    ("Main Street office", False),
    ("Riverside Plaza, suite 4", False),
    ("Telehealth", True),
]
# (first name, last name, preferred name, year of birth): real-world variety of
# accents, apostrophes, hyphens, particles, one-word names and non-Latin scripts.
RIVERSIDE_PATIENTS = [
    ("Élodie", "O'Brien", "", 1988),
    ("Mary-Kate", "van der Berg", "MK", 1992),
    ("Cher", "", "", 1979),
    ("王小明", "", "", 1995),
    ("José María", "García-López", "Chema", 1984),
    ("Siobhán", "Ní Bhraonáin", "", 1990),
    ("Lan", "Nguyễn Thị", "", 1987),
    ("Zoë", "D'Angelo", "", 2001),
    ("Jean-Luc", "de la Fontaine", "", 1975),
    ("Oluwaseun", "Adeyemi", "Seun", 1993),
    ("Priya", "Raghunathan", "", 1986),
    ("Mohammed", "Al-Farsi", "", 1982),
    ("Søren", "Andersen", "", 1977),
    ("Ana Lúcia", "Ferreira", "", 1999),
    ("Björn", "Þórsson", "", 1989),
    ("Kalani", "Kahananui", "", 1996),
    ("Fatima Zahra", "El Idrissi", "", 1991),
    ("Анна", "Смирнова", "", 1985),
    ("由紀", "田中", "Yuki", 1994),
    ("Min-jun", "Kim", "", 2000),
    ("Liam", "O'Connor", "", 1983),
    ("Aoife", "MacCarthy", "", 1997),
    ("Hannah", "Müller", "", 1980),
    ("François", "Lefèvre", "", 1972),
    ("Chloé", "Dubois-Martin", "", 1998),
    ("Kwabena", "Owusu", "", 1987),
    ("Rosa Maria", "dos Santos", "", 1969),
    ("Ludwig", "von Hohenberg", "", 1966),
    ("Tomás", "Ó Súilleabháin", "", 1990),
    ("Isabella", "Rossi", "Bella", 2003),
    ("Ahmed", "Hassan", "", 1978),
    ("Leilani", "Akana", "", 1995),
    ("Maya", "Goldberg", "", 1988),
    ("Samuel", "Johnson Jr.", "Sam", 1974),
    ("Grace", "Lee", "", 1999),
    ("Emily", "Chen-Watson", "", 1992),
    ("Raúl", "Peña", "", 1981),
    ("D'Andre", "Washington", "", 1996),
    ("Nadia", "Kowalczyk", "", 1989),
    ("Astrid", "Lindqvist", "", 1985),
    ("Ximena", "Quispe", "", 1993),
    ("Teuila", "Faleolo", "", 1990),
]
HARBOR_SERVICES = [("Family therapy", 60), ("Individual therapy", 50)]
HARBOR_LOCATIONS = [("Harbor office", False), ("Telehealth", True)]
HARBOR_PATIENTS = [
    ("Marisol", "Ortega", "", 1987),
    ("Keanu", "Kealoha", "", 1994),
    ("Ingrid", "Halvorsen", "", 1979),
    ("Tariq", "Rahman", "", 1990),
    ("Beatriz", "Souza", "", 2002),
    ("Owen", "McAllister", "", 1985),
]
STAFF_MEETING = "Staff meeting"
BusyInterval = tuple[int, int, int, int, bool]
# Each demo clinician's personal calendar: (days from today, start hour, minute,
# minutes, tentative). Some of it overlaps the demo appointments on purpose.
PERSONAL_BUSY: list[BusyInterval] = [
    (1, 12, 0, 60, False),
    (2, 17, 0, 90, True),
    (3, 9, 30, 60, False),
    (5, 14, 0, 120, False),
]
# The first clinician also has a family calendar that stopped updating.
FAMILY_BUSY: list[BusyInterval] = [(1, 15, 0, 60, False), (4, 16, 0, 45, True)]
FAMILY_UNREAD_DAYS = 3
WORKING_HOURS = [9, 10, 11, 13, 14, 15, 16, 17]


@transaction.atomic
def seed_scheduling(*, riverside: Practice, harbor: Practice) -> None:
    """Fill both demo practices with scheduling data (idempotent)."""
    _seed_practice(
        riverside,
        services=RIVERSIDE_SERVICES,
        locations=RIVERSIDE_LOCATIONS,
        patients=RIVERSIDE_PATIENTS,
        rng=random.Random(20261),
        full=True,
    )
    _seed_practice(
        harbor,
        services=HARBOR_SERVICES,
        locations=HARBOR_LOCATIONS,
        patients=HARBOR_PATIENTS,
        rng=random.Random(20262),
        full=False,
    )


def _seed_practice(practice, *, services, locations, patients, rng, full) -> None:
    clinicians = list(
        User.objects.filter(
            practice=practice, is_clinician=True, is_active=True
        ).order_by("email")
    )
    if not clinicians:
        return
    _seed_busy_time(practice, clinicians)
    by_service = {}
    for name, minutes in services:
        by_service[name] = Service.objects.filter(
            practice=practice, name=name
        ).first() or service_create(
            practice=practice, name=name, default_minutes=minutes
        )
    places = []
    for name, is_telehealth in locations:
        places.append(
            Location.objects.filter(practice=practice, name=name).first()
            or location_create(
                practice=practice, name=name, is_telehealth=is_telehealth
            )
        )
    people = []
    for index, (first, last, preferred, year) in enumerate(patients):
        patient = Patient.objects.filter(
            practice=practice, first_name=first, last_name=last
        ).first()
        if patient is None:
            patient = patient_create(
                practice=practice,
                actor=None,
                first_name=first,
                last_name=last,
                preferred_name=preferred,
                date_of_birth=date(year, 1 + index % 12, 1 + (index * 7) % 28),
                email=f"patient{index + 1}@{practice.pk}.example.test",
                phone=f"555-01{index:02d}",
                primary_clinician=clinicians[index % len(clinicians)],
            )
        people.append(patient)
    if Appointment.objects.filter(practice=practice).exists():
        return
    actor = (
        User.objects.filter(practice=practice, is_scheduler=True).order_by("pk").first()
        or User.objects.filter(practice=practice, is_practice_admin=True).first()
    )
    zone = practice.zone
    today = timezone.localdate(timezone=zone)
    monday = today - timedelta(days=today.weekday()) - timedelta(weeks=4)
    weeks = 12

    def when(day: date, hour: int, minute: int = 0) -> datetime:
        return local_to_utc(datetime.combine(day, time(hour, minute)), zone)

    def book(clinician, start, minutes, **kwargs):
        return appointment_create(
            practice=practice,
            actor=actor,
            clinician=clinician,
            start=start,
            end=start + timedelta(minutes=minutes),
            allow_conflicts=True,
            **kwargs,
        )

    offices = [place for place in places if not place.is_telehealth]
    telehealth = next((place for place in places if place.is_telehealth), None)
    individual = next(iter(by_service.values()))
    for number, clinician in enumerate(clinicians):
        own = [p for p in people if p.primary_clinician_id == clinician.pk]
        slots = rng.sample(
            [(weekday, hour) for weekday in range(5) for hour in WORKING_HOURS],
            k=min(len(own) + 4, 5 * len(WORKING_HOURS)),
        )
        office = offices[number % len(offices)] if offices else None
        for patient, (weekday, hour) in zip(own, slots, strict=False):
            every_other = rng.random() < 0.25
            book(
                clinician,
                when(monday + timedelta(days=weekday), hour),
                individual.default_minutes,
                patients=[patient],
                service=individual,
                location=telehealth if rng.random() < 0.3 else office,
                recurrence=Recurrence(
                    frequency=WEEKLY,
                    interval=2 if every_other else 1,
                    count=weeks // 2 if every_other else weeks,
                ),
            )
        spare = slots[len(own) :]
        if full and len(people) >= 8:
            if "Couples therapy" in by_service and spare:
                weekday, hour = spare.pop()
                couple = rng.sample([p for p in people if p not in own], k=2)
                book(
                    clinician,
                    when(monday + timedelta(days=weekday), hour),
                    53,
                    patients=couple,
                    service=by_service["Couples therapy"],
                    location=office,
                    recurrence=Recurrence(frequency=WEEKLY, count=weeks),
                )
            if number == 0 and "Group therapy" in by_service and spare:
                weekday, _ = spare.pop()
                book(
                    clinician,
                    when(monday + timedelta(days=weekday), 18),
                    90,
                    patients=rng.sample(people, k=6),
                    service=by_service["Group therapy"],
                    location=offices[0] if offices else None,
                    recurrence=Recurrence(frequency=WEEKLY, count=weeks),
                )
            if "Intake" in by_service and spare:
                for week in (5, 6):
                    weekday, hour = spare.pop() if spare else (4, 12)
                    book(
                        clinician,
                        when(monday + timedelta(weeks=week, days=weekday), hour),
                        60,
                        patients=[rng.choice(people)],
                        service=by_service["Intake"],
                        location=office,
                    )
            book(
                clinician,
                when(monday + timedelta(days=1), 12),
                60,
                kind=Appointment.Kind.EVENT,
                title="Clinical supervision",
                location=offices[0] if offices else None,
                recurrence=Recurrence(frequency=MONTHLY, count=3),
            )
            away = monday + timedelta(weeks=5 + number % 3, days=4 - number % 2)
            book(
                clinician,
                when(away, 8),
                10 * 60,
                kind=Appointment.Kind.EVENT,
                title="Out of office",
            )
        book(
            clinician,
            when(monday, 8),
            60,
            kind=Appointment.Kind.EVENT,
            title=STAFF_MEETING,
            location=offices[0] if offices else None,
            recurrence=Recurrence(frequency=WEEKLY, count=weeks),
        )
    _record_outcomes(practice, actor=actor, rng=rng)
    if full and len(people) > 3:
        patient_set_active(patient=people[-1], actor=actor, active=False)


def _record_outcomes(practice, *, actor, rng) -> None:
    """Past sessions were mostly attended; some were no-shows or cancelled, and a
    few future ones are already cancelled."""
    now = timezone.now()
    sessions = Appointment.objects.filter(
        practice=practice, kind=Appointment.Kind.SESSION, deleted_at__isnull=True
    ).order_by("start", "pk")
    for appointment in sessions:
        roll = rng.random()
        if appointment.end <= now:
            if roll < 0.08:
                status = Appointment.Status.NO_SHOW
            elif roll < 0.14:
                status = Appointment.Status.CANCELLED
            elif roll < 0.17:
                status = Appointment.Status.LATE_CANCELLED
            else:
                status = Appointment.Status.ATTENDED
        elif roll < 0.05:
            status = Appointment.Status.CANCELLED
        else:
            continue
        appointment_set_status(
            appointment=appointment, actor=actor, status=status, expected_revision=None
        )


def _seed_busy_time(practice: Practice, clinicians: list[User]) -> None:
    """Give each clinician a personal calendar with busy time in the coming days
    (and the first one a family calendar not read for days, shown as stale), so
    SCHEDULING shows busy blocks. Refreshed once a day, as the intervals are
    counted from today; a second run the same day changes nothing. Written
    straight to the tables: these calendars have no address to read."""
    zone = practice.zone
    today = timezone.localdate(timezone=zone)
    now = timezone.now()
    stale_read = local_to_utc(
        datetime.combine(today - timedelta(days=FAMILY_UNREAD_DAYS), time(9)), zone
    )
    for number, clinician in enumerate(clinicians):
        calendars: list[tuple[str, list[BusyInterval], datetime | None]] = [
            ("Personal", PERSONAL_BUSY, None)
        ]
        if number == 0:
            calendars.append(("Family", FAMILY_BUSY, stale_read))
        for name, intervals, read_at in calendars:
            calendar = BusyCalendar.objects.filter(
                practice=practice, clinician=clinician, name=name
            ).first() or BusyCalendar(practice=practice, clinician=clinician, name=name)
            if read_at is None:
                current = calendar.read_at is not None and (
                    timezone.localdate(calendar.read_at, timezone=zone) == today
                )
                read_at = now
            else:
                current = calendar.read_at == read_at
            if calendar.pk is not None and current:
                continue
            calendar.read_at = read_at
            calendar.save()
            calendar.times.all().delete()
            times = []
            for days, hour, minute, minutes, tentative in intervals:
                wall_clock = time(hour + number % 2, minute)
                start = local_to_utc(
                    datetime.combine(today + timedelta(days=days), wall_clock), zone
                )
                times.append(
                    BusyTime(
                        calendar=calendar,
                        practice=practice,
                        clinician=clinician,
                        start=start,
                        end=start + timedelta(minutes=minutes),
                        tentative=tentative,
                    )
                )
            BusyTime.objects.bulk_create(times)
