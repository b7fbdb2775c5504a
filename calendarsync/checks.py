"""Deployment checks (``manage.py check --deploy``) for calendar sync's settings."""

from django.conf import settings
from django.core.checks import Tags, register
from django.core.checks import Warning as CheckWarning


@register(Tags.security, deploy=True)
def calendar_feed_settings(app_configs, **kwargs):
    problems = []
    if settings.CALENDAR_FEED_SNAPSHOT_SECONDS > 0 and not settings.CACHE_SHARED:
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
