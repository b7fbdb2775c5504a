"""Deployment checks (``manage.py check --deploy``) for Tend's own settings."""

from django.conf import settings
from django.core.checks import Tags, register
from django.core.checks import Warning as CheckWarning

from config.cache import is_shared


def _weak(secret: str) -> bool:
    return len(secret) < 50 or len(set(secret)) < 5


@register(Tags.security, deploy=True)
def tend_deploy_settings(app_configs, **kwargs):
    problems = []
    if not settings.SITE_URL.startswith("https://"):
        problems.append(
            CheckWarning(
                "SITE_URL does not start with https://.",
                hint="Emailed password links and calendar links are built from "
                "SITE_URL; set it to the public HTTPS address, e.g. "
                "https://tend.example.com.",
                id="tend.W001",
            )
        )
    if _weak(settings.CALENDAR_FEED_KEY):
        problems.append(
            CheckWarning(
                "CALENDAR_FEED_KEY is shorter than 50 characters or not random.",
                hint="Generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(50))'",
                id="tend.W002",
            )
        )
    if settings.CALENDAR_FEED_KEY == settings.SECRET_KEY:
        problems.append(
            CheckWarning(
                "CALENDAR_FEED_KEY equals SECRET_KEY.",
                hint="Use two different keys so that rotating one does not "
                "affect the other.",
                id="tend.W003",
            )
        )
    if settings.DEMO_DATA_ALLOWED:
        problems.append(
            CheckWarning(
                "DEMO_DATA_ALLOWED is on.",
                hint="Demo accounts share a published password; set "
                "DEMO_DATA_ALLOWED=false in production.",
                id="tend.W004",
            )
        )
    if settings.CALENDAR_FEED_SNAPSHOT_SECONDS > 0 and not is_shared(
        settings.CACHES["default"]
    ):
        problems.append(
            CheckWarning(
                "CALENDAR_FEED_SNAPSHOT_SECONDS is on with a per-process cache.",
                hint="With several processes, one could answer calendar polls from a "
                "snapshot another has ended (a reset link would keep working). Set "
                "CACHE_URL to Redis, or CALENDAR_FEED_SNAPSHOT_SECONDS=0.",
                id="tend.W005",
            )
        )
    if settings.CALENDAR_FEED_SNAPSHOT_VERIFY:
        problems.append(
            CheckWarning(
                "CALENDAR_FEED_SNAPSHOT_VERIFY is on.",
                hint="It checks every calendar poll against the database, for "
                "tests; it doubles the work of each poll and fails it loudly on a "
                "difference. Set CALENDAR_FEED_SNAPSHOT_VERIFY=false.",
                id="tend.W006",
            )
        )
    return problems
