"""Tend settings: every value comes from the environment (django-environ).

Local development keeps generated secrets in the git-ignored ``var/local.env`` (written
by ``make run`` / ``make test``); production sets real environment variables.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
LOCAL_ENV_FILE = VAR_DIR / "local.env"
if LOCAL_ENV_FILE.exists():
    # Values already in the environment win over the generated local file.
    environ.Env.read_env(str(LOCAL_ENV_FILE), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Run `make run` (which writes a local key to "
        "var/local.env) or set SECRET_KEY in the environment."
    )
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

# Key for calendar feed links; separate from SECRET_KEY so that rotating one does
# not break the other. Fallbacks keep old links working during a rotation.
CALENDAR_FEED_KEY = env.str("CALENDAR_FEED_KEY", default="")
if not CALENDAR_FEED_KEY:
    raise ImproperlyConfigured(
        "CALENDAR_FEED_KEY is not set. Run `make run` or set it in the environment."
    )
CALENDAR_FEED_KEY_FALLBACKS = env.list("CALENDAR_FEED_KEY_FALLBACKS", default=[])
# Encrypts the passwords of connected calendar accounts (calendarsync.crypto), apart
# from SECRET_KEY and the database: a dump alone cannot use them. Connecting an
# account is refused while it is empty.
CALENDAR_ACCOUNT_KEY = env.str("CALENDAR_ACCOUNT_KEY", default="")
CALENDAR_ACCOUNT_KEY_FALLBACKS = env.list("CALENDAR_ACCOUNT_KEY_FALLBACKS", default=[])
# Networks (CIDRs) Tend may connect to although they are private or loopback, over
# http as well as https (calendarsync.outbound). Empty: public https servers only.
OUTBOUND_ALLOWED_NETWORKS = env.list("OUTBOUND_ALLOWED_NETWORKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Where those proxies connect from: only a connection from one of these networks has
# its X-Forwarded-For and X-Forwarded-Proto believed (practice.net).
TRUSTED_PROXY_NETWORKS = env.list("TRUSTED_PROXY_NETWORKS", default=[])
for _cidr in TRUSTED_PROXY_NETWORKS:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError as _error:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXY_NETWORKS: {_cidr!r} is not an address or network "
            "(e.g. 10.0.0.0/8 or 127.0.0.1)."
        ) from _error
DEMO_DATA_ALLOWED = env.bool("DEMO_DATA_ALLOWED", default=DEBUG)

INSTALLED_APPS = [
    "practice.admin_site.OperatorAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "django_tasks_db",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "practice",
    "scheduling",
    "calendarsync",
]

MIDDLEWARE = [
    # First: the forwarding headers of anyone but our proxies never reach the rest
    # (SecurityMiddleware reads X-Forwarded-Proto through SECURE_PROXY_SSL_HEADER).
    "practice.middleware.ForwardedHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "practice.middleware.SessionMiddleware",
    "practice.middleware.NotModifiedMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "practice.middleware.NoStoreMiddleware",
    "practice.middleware.SessionLifetimeMiddleware",
    "practice.middleware.NetworkRestrictionMiddleware",
    "practice.middleware.PracticeTimezoneMiddleware",
    "practice.twofactor.middleware.SecondStepMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "practice.context_processors.shell",
            ],
            # One date and time format everywhere (practice/dates.py).
            "builtins": ["practice.templatetags.tend_dates"],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'tend.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
elif DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Concurrent requests on the embedded default (calendar polls write): WAL lets
    # readers run beside the one writer; a write transaction takes the write lock
    # when it begins (IMMEDIATE), so it waits its turn (up to `timeout` seconds)
    # instead of failing with "database is locked" when a read in it turns into a
    # write. Options in DATABASE_URL's query string win.
    DATABASES["default"].setdefault("OPTIONS", {})
    for option, value in {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }.items():
        DATABASES["default"]["OPTIONS"].setdefault(option, value)

# How many calendar accounts one worker process pushes at once (calendarsync.push:
# a run mostly waits on a calendar server, so it runs other due accounts beside it
# on threads). SQLite has one writer at a time: there, one.
PUSH_CONCURRENCY = env.int(
    "PUSH_CONCURRENCY",
    default=8 if DATABASES["default"]["ENGINE"].endswith("postgresql") else 1,
)

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://tend")}
# Every process sees the same entries (Redis), rather than each its own.
CACHE_SHARED = CACHES["default"]["BACKEND"].endswith("RedisCache")
# The longest a Redis call may take (connecting or answering) before Tend goes on
# without it: a Redis that hangs must not stall pages or calendar polls.
CACHE_TIMEOUT_MS = env.int("CACHE_TIMEOUT_MS", default=50)
if CACHE_SHARED:
    CACHES["default"].setdefault("OPTIONS", {}).update(
        socket_timeout=CACHE_TIMEOUT_MS / 1000,
        socket_connect_timeout=CACHE_TIMEOUT_MS / 1000,
    )


def _mailer_from_url(url: str) -> dict:
    """MAILERS["default"] from an EMAIL_URL such as smtp+tls://user:pass@host:587."""
    config = environ.Env.email_url_config(url)
    mailer = {"BACKEND": config["EMAIL_BACKEND"]}
    if config["EMAIL_BACKEND"].endswith("smtp.EmailBackend"):
        mailer["OPTIONS"] = {
            "host": config.get("EMAIL_HOST") or "localhost",
            "port": config.get("EMAIL_PORT") or 25,
            "username": config.get("EMAIL_HOST_USER") or "",
            "password": config.get("EMAIL_HOST_PASSWORD") or "",
            "use_tls": bool(config.get("EMAIL_USE_TLS")),
            "use_ssl": bool(config.get("EMAIL_USE_SSL")),
            "timeout": 10,
        }
    elif config.get("EMAIL_FILE_PATH"):
        mailer["OPTIONS"] = {"file_path": config["EMAIL_FILE_PATH"]}
    return mailer


MAILERS = {"default": _mailer_from_url(env.str("EMAIL_URL", default="consolemail://"))}
# Background work (emails today): Django's Tasks framework. The default queue is a
# table in the database, worked by `manage.py db_worker` (make run starts one).
TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend")
    }
}
# At scale, the queue can live in Redis instead (README, "Workers in production"):
# TASKS_BACKEND=django_tasks_rq.RQBackend with TASKS_REDIS_URL, worked by
# `manage.py rqworker --job-class django_tasks_rq.backend.Job --with-scheduler`.
if TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend":
    INSTALLED_APPS.append("django_rq")
    RQ_QUEUES = {"default": {"URL": env.str("TASKS_REDIS_URL")}}
# Or in RabbitMQ: TASKS_BACKEND=config.celery_tasks.CeleryBackend with
# CELERY_BROKER_URL (amqp://…), worked by `celery -A config.celery worker`.
if TASKS["default"]["BACKEND"] == "config.celery_tasks.CeleryBackend":
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
    CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="tend")
    CELERY_TASK_IGNORE_RESULT = True
    # Enqueueing waits until RabbitMQ confirms it holds the message, so a run asked
    # for on commit is not lost to a connection that drops at that moment.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
    # A worker reserves no more messages than it has processes, so a slow push
    # does not hold others back from an idle worker (deferred ones are still held
    # by a worker until due: README, consumer_timeout).
    CELERY_WORKER_PREFETCH_MULTIPLIER = 1
    CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Tend <no-reply@tend.local>")

AUTH_USER_MODEL = "practice.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# NIST SP 800-63B: a minimum length and a list of common passwords, and no
# composition rules (which make passwords harder to remember, not to guess). The
# forms where a password is chosen say the rule (practice.forms.password_rule).
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Emailed password links (resets and invitations) work for one hour.
PASSWORD_RESET_TIMEOUT = 3600
# Emails carrying a password link, per hour: to one account, and asked for from one
# client address.
PASSWORD_EMAILS_PER_ACCOUNT_HOUR = env.int(
    "PASSWORD_EMAILS_PER_ACCOUNT_HOUR", default=3
)
PASSWORD_EMAILS_PER_ADDRESS_HOUR = env.int(
    "PASSWORD_EMAILS_PER_ADDRESS_HOUR", default=10
)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Automatic logoff: the session expires after this many idle minutes.
SESSION_IDLE_MINUTES = env.int("SESSION_IDLE_MINUTES", default=30)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
# ...and, however active, this many hours after signing in
# (practice.middleware.SessionLifetimeMiddleware).
SESSION_ABSOLUTE_HOURS = env.int("SESSION_ABSOLUTE_HOURS", default=12)
if SESSION_ABSOLUTE_HOURS < 1:
    raise ImproperlyConfigured("SESSION_ABSOLUTE_HOURS must be at least 1.")
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
# Database sessions that fail with the database's own error (a 503 page, see
# practice.unavailable) and are not read again after failing.
SESSION_ENGINE = "practice.sessions"

# Login lockout (django-axes): five failures for one account from one address lock
# it for fifteen minutes.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The login form posts the email in the "username" field (AuthenticationForm).
AXES_USERNAME_FORM_FIELD = "username"
# Counted under the email as sign-in matches it (trimmed, case folded), so that no
# other spelling of a locked account's address gets past the lock.
AXES_USERNAME_CALLABLE = "practice.lockout.axes_username"
AXES_CLIENT_IP_CALLABLE = "practice.net.axes_client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = False

# Two-factor sign-in (django-otp, django-otp-webauthn; see practice.twofactor).
# Wrong codes in the second step lock it like wrong passwords lock the first:
# LOGIN_FAILURE_LIMIT wrong codes lock it for LOGIN_LOCKOUT_MINUTES. django-otp's
# own growing delays are off, since that lockout is the rule.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
OTP_TOTP_ISSUER = env.str("TWO_FACTOR_ISSUER", default="Tend")
# Passkeys complete the second step only; the password always comes first.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_HELPER_CLASS = "practice.twofactor.webauthn.TendWebAuthnHelper"
OTP_WEBAUTHN_RP_NAME = OTP_TOTP_ISSUER
# The relying party is SITE_URL's host name and the one allowed origin SITE_URL's
# origin, both read per request (practice.twofactor.webauthn). Passkeys need a
# secure context: https, or http://localhost (not an IP address) while developing.
OTP_WEBAUTHN_RP_ID_CALLABLE = "practice.twofactor.webauthn.relying_party_id"
OTP_WEBAUTHN_ALLOWED_ORIGINS = ["{0.scheme}://{0.netloc}".format(urlsplit(SITE_URL))]
# The library refuses a plain-http origin other than localhost, which is the local
# default (http://127.0.0.1:8000); `check --deploy` already insists on https.
SILENCED_SYSTEM_CHECKS = ["otp_webauthn.E031"]
# Sensitive administrator actions (network restrictions, roles, the two-factor
# requirement, the practice-wide calendar switch) need the password or a second
# factor confirmed within this many minutes.
REAUTH_MINUTES = env.int("REAUTH_MINUTES", default=10)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env.bool("STATIC_MANIFEST", default=not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
# Files answered at the site's root, before any view: /favicon.ico, which browsers
# ask for whatever the page links.
WHITENOISE_ROOT = BASE_DIR / "public"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Strict Content-Security-Policy: everything from our own origin, no inline code
# except what carries the per-request nonce.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# HTTPS settings, on in production.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=SECURE_SSL_REDIRECT)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HSTS_SECONDS > 0
)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=SECURE_HSTS_SECONDS > 0)
if TRUSTED_PROXY_COUNT:
    # Believed from TRUSTED_PROXY_NETWORKS only: ForwardedHeadersMiddleware drops
    # the header from every other connection before Django reads it.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Scheduling limits.
SERIES_MAX_OCCURRENCES = env.int("SERIES_MAX_OCCURRENCES", default=104)

# Largest calendar feed served, uncompressed: Google is reported to stop reading
# subscribed feeds above about 1 MB, so the farthest days are left out first.
CALENDAR_FEED_MAX_BYTES = env.int("CALENDAR_FEED_MAX_BYTES", default=1_000_000)

# Unchanged polls answered from a snapshot in the cache, without a query, for this
# many seconds at most (calendarsync.freshness). Only safe with a cache every
# process shares, so off (0) unless the cache is Redis.
CALENDAR_FEED_SNAPSHOT_SECONDS = env.int(
    "CALENDAR_FEED_SNAPSHOT_SECONDS",
    default=300 if CACHE_SHARED else 0,
)
# Check every answer from a snapshot against the database (the test suite does).
CALENDAR_FEED_SNAPSHOT_VERIFY = env.bool("CALENDAR_FEED_SNAPSHOT_VERIFY", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_feed_tokens": {"()": "calendarsync.logging.RedactFeedTokens"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact_feed_tokens"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {
            "handlers": ["console"],
            "level": "WARNING",
            "propagate": False,
        },
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
