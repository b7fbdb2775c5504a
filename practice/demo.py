"""The demo practices: Riverside Counseling and a second practice for isolation."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from practice.hooks import demo_practices_seeded
from practice.models import Practice, Role, User

DEMO_PASSWORD = "tend-demo"

RIVERSIDE_USERS = [
    (
        "admin@riverside.test",
        "Morgan Ellis",
        "PsyD",
        [Role.ADMINISTRATOR, Role.CLINICIAN],
    ),
    ("scheduler@riverside.test", "Sam Porter", "", [Role.SCHEDULER]),
    ("rivera@riverside.test", "Dana Rivera", "LCSW", [Role.CLINICIAN]),
    ("chen@riverside.test", "Wei Chen", "PhD", [Role.CLINICIAN]),
    ("okafor@riverside.test", "Ngozi Okafor", "LMFT", [Role.CLINICIAN]),
]
HARBOR_USERS = [
    ("admin@harbor.test", "Alex Stone", "LPC", [Role.ADMINISTRATOR, Role.CLINICIAN]),
    ("lee@harbor.test", "Jordan Lee", "LCSW", [Role.CLINICIAN]),
]


def demo_allowed() -> bool:
    """Demo data is for development machines, never a production configuration."""
    return settings.DEMO_DATA_ALLOWED and not settings.SECURE_SSL_REDIRECT


def _ensure_practice(name: str, time_zone: str, users) -> Practice:
    practice, _ = Practice.objects.get_or_create(
        name=name, defaults={"time_zone": time_zone}
    )
    for email, display_name, credentials, roles in users:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User(email=email, practice=practice)
            user.set_password(DEMO_PASSWORD)
        user.display_name = display_name
        user.credentials = credentials
        user.is_active = True
        user.set_roles(roles)
        user.save()
    return practice


@transaction.atomic
def seed_practices() -> tuple[Practice, Practice]:
    """Create or refresh the two demo practices and their users (idempotent)."""
    if not demo_allowed():
        raise ImproperlyConfigured(
            "Refusing to load demo data: this looks like a production configuration "
            "(DEMO_DATA_ALLOWED is off or HTTPS redirects are on)."
        )
    riverside = _ensure_practice(
        "Riverside Counseling", "America/New_York", RIVERSIDE_USERS
    )
    harbor = _ensure_practice(
        "Harbor Family Therapy", "America/Los_Angeles", HARBOR_USERS
    )
    return riverside, harbor


@transaction.atomic
def seed_demo_data() -> tuple[Practice, Practice]:
    """Create or refresh both demo practices and everything in them, each app adding
    its part through ``demo_practices_seeded``; returns (riverside, harbor).
    ImproperlyConfigured under production settings."""
    riverside, harbor = seed_practices()
    demo_practices_seeded.send(sender=None, riverside=riverside, harbor=harbor)
    return riverside, harbor
