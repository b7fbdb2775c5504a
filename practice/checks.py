"""Deployment checks (``manage.py check --deploy``) for Tend's own settings."""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning


def _weak(secret: str) -> bool:
    return len(secret) < 50 or len(set(secret)) < 5


@register(Tags.security, deploy=True)
def tend_deploy_settings(app_configs, **kwargs):
    problems: list[CheckMessage] = []
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
    if settings.TRUSTED_PROXY_COUNT > 0 and not settings.TRUSTED_PROXY_NETWORKS:
        problems.append(
            Error(
                "TRUSTED_PROXY_COUNT is set but TRUSTED_PROXY_NETWORKS is empty.",
                hint="List the addresses or networks your reverse proxies connect "
                "from, e.g. TRUSTED_PROXY_NETWORKS=127.0.0.1,10.0.1.0/24. Until "
                "then Tend believes no proxy header and sees every client as the "
                "proxy's address.",
                id="tend.E001",
            )
        )
    return problems
