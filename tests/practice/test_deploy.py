"""Production configuration: check --deploy, security headers, CSP, health, Redis."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
TEST_ONLY = (
    "STATIC_MANIFEST",
    "WHITENOISE_USE_FINDERS",
    "DEMO_DATA_ALLOWED",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "CACHE_URL",
    "CALENDAR_FEED_SNAPSHOT_SECONDS",
    "CALENDAR_FEED_SNAPSHOT_VERIFY",
)


def production_env(**overrides) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in TEST_ONLY}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        CALENDAR_FEED_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="tend.example.com",
        CSRF_TRUSTED_ORIGINS="https://tend.example.com",
        SITE_URL="https://tend.example.com",
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="31536000",
        TRUSTED_PROXY_COUNT="1",
        # The Django test client connects from 127.0.0.1, standing in for the proxy.
        TRUSTED_PROXY_NETWORKS="127.0.0.1",
        EMAIL_URL="smtp+tls://tend:mail-password@smtp.example.com:587",
        DEMO_DATA_ALLOWED="false",
    )
    env.update(overrides)
    return env


def run(args, env, timeout=120):
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def deploy_check(**overrides):
    return run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production_env(**overrides),
    )


def test_check_deploy_passes_with_production_settings():
    result = deploy_check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "warning"),
    [
        ({"DEBUG": "true"}, "security.W018"),
        ({"SECRET_KEY": "short"}, "security.W009"),
        ({"SECURE_SSL_REDIRECT": "false"}, "security.W008"),
        ({"SECURE_HSTS_SECONDS": "0"}, "security.W004"),
        ({"SITE_URL": "http://tend.example.com"}, "tend.W001"),
        ({"CALENDAR_FEED_KEY": "feed-key"}, "tend.W002"),
        ({"DEMO_DATA_ALLOWED": "true"}, "tend.W004"),
        ({"CALENDAR_FEED_SNAPSHOT_SECONDS": "300"}, "tend.W005"),
        ({"CALENDAR_FEED_SNAPSHOT_VERIFY": "true"}, "tend.W006"),
        ({"EMAIL_URL": "consolemail://"}, "mail.E001"),
    ],
)
def test_check_deploy_fails_on_an_unsafe_setting(overrides, warning):
    result = deploy_check(**overrides)
    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_check_deploy_refuses_feed_key_equal_to_secret_key():
    key = secrets.token_urlsafe(50)
    result = deploy_check(SECRET_KEY=key, CALENDAR_FEED_KEY=key)
    assert result.returncode != 0
    assert "tend.W003" in result.stderr


def test_check_deploy_fails_on_a_proxy_count_without_proxy_networks():
    """An error, not a warning: ``check --deploy`` fails at its default level."""
    result = run(
        ["manage.py", "check", "--deploy"],
        production_env(TRUSTED_PROXY_NETWORKS=""),
    )
    assert result.returncode != 0
    assert "tend.E001" in result.stderr
    assert "TRUSTED_PROXY_NETWORKS" in result.stderr
    # Without proxies there is nothing to list.
    result = deploy_check(TRUSTED_PROXY_COUNT="0", TRUSTED_PROXY_NETWORKS="")
    assert "tend.E001" not in result.stdout + result.stderr


def test_a_proxy_network_that_is_not_one_is_refused():
    result = run(
        ["manage.py", "check"], production_env(TRUSTED_PROXY_NETWORKS="10.0.0.0/33")
    )
    assert result.returncode != 0
    assert "TRUSTED_PROXY_NETWORKS: '10.0.0.0/33' is not" in result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "CALENDAR_FEED_KEY"])
def test_secrets_have_no_default(missing):
    result = run(["manage.py", "check"], production_env(**{missing: ""}))
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr


REQUEST_SCRIPT = """
import json, django
django.setup()
from django.test import Client
client = Client()
out = {}
for name, path, extra in json.loads(REQUESTS):
    response = client.get(path, **extra)
    out[name] = {
        "status": response.status_code,
        "headers": dict(response.headers),
        "body": response.content.decode()[:500],
    }
print(json.dumps(out))
"""


def request_in_subprocess(env, requests):
    script = REQUEST_SCRIPT.replace("REQUESTS", repr(json.dumps(requests)))
    result = run(["-c", script], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_redirects_to_https_and_sends_hsts():
    host = {"HTTP_HOST": "tend.example.com"}
    out = request_in_subprocess(
        production_env(),
        [
            ["plain", "/robots.txt", host],
            ["proxied", "/robots.txt", {**host, "HTTP_X_FORWARDED_PROTO": "https"}],
            ["other_host", "/robots.txt", {"HTTP_HOST": "evil.example"}],
        ],
    )
    assert out["plain"]["status"] == 301
    assert out["plain"]["headers"]["Location"] == "https://tend.example.com/robots.txt"
    assert out["proxied"]["status"] == 200
    hsts = out["proxied"]["headers"]["Strict-Transport-Security"]
    assert hsts == "max-age=31536000; includeSubDomains; preload"
    assert out["other_host"]["status"] == 400


def test_healthz_answers_ok_with_a_database(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert client.post("/healthz").status_code == 405


def test_healthz_answers_503_when_the_database_is_unreachable(tmp_path):
    unreachable = tmp_path / "no-such-dir" / "tend.sqlite3"
    env = production_env(
        DATABASE_URL=f"sqlite:///{unreachable}",
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="false",
    )
    out = request_in_subprocess(env, [["health", "/healthz", {}]])
    assert out["health"]["status"] == 503
    assert json.loads(out["health"]["body"]) == {"status": "unavailable"}


def test_robots_txt_keeps_crawlers_out_of_private_pages(client, db):
    response = client.get("/robots.txt")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert "Disallow: /calendar/" in response.content.decode()
    assert "Disallow: /settings/" in response.content.decode()


# -- Content-Security-Policy and other headers ---------------------------------------


def csp_directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


@pytest.mark.parametrize("path", ["/login/", "/settings/", "/settings/users/"])
def test_pages_carry_a_strict_content_security_policy(client, login, admin_user, path):
    if path != "/login/":
        login(admin_user)
    response = client.get(path)
    assert response.status_code == 200
    policy = csp_directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["script-src"][0] == "'self'"
    assert all(
        source == "'self'" or re.fullmatch(r"'nonce-[A-Za-z0-9_\-+/=]+'", source)
        for source in policy["script-src"]
    )
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    sources = [source for values in policy.values() for source in values]
    for loose in ("'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*"):
        assert loose not in sources, loose
    assert not [source for source in sources if source.startswith("http")]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_templates_need_no_inline_style_or_script():
    """The CSP blocks inline styles and scripts: templates must not rely on them."""
    offenders = []
    for template in (BASE_DIR / "templates").rglob("*.html"):
        text = template.read_text()
        for pattern in (
            r"\sstyle=",
            r"<style",
            r"<script(?![^>]*\ssrc=)",
            r"\son[a-z]+=",
            r"javascript:",
        ):
            if re.search(pattern, text):
                offenders.append(f"{template.relative_to(BASE_DIR)}: {pattern}")
    assert offenders == []


def test_pages_load_nothing_from_other_origins(login, admin_user):
    html = login(admin_user).get("/settings/").content.decode()
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/") or url.startswith("#"), url


# -- Redis-backed cache, when Redis answers (.ci/run exports REDIS_URL) ---------------

CACHE_SCRIPT = """
import secrets, django
django.setup()
from django.conf import settings
from django.core.cache import cache
key = "tend-test-" + secrets.token_hex(8)
cache.set(key, {"ok": 1}, 30)
print(settings.CACHES["default"]["BACKEND"], cache.get(key))
cache.delete(key)
print(cache.get(key))
"""


def test_cache_url_selects_a_working_redis_cache(fresh_redis):
    env = production_env(CACHE_URL=fresh_redis.url)
    result = run(["-c", CACHE_SCRIPT], env)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()[-2:]
    assert first == "django.core.cache.backends.redis.RedisCache {'ok': 1}"
    assert second == "None"


def test_default_cache_is_local_memory(settings):
    backend = settings.CACHES["default"]["BACKEND"]
    if os.environ.get("CACHE_URL"):
        pytest.skip("CACHE_URL is set for this run")
    assert backend == "django.core.cache.backends.locmem.LocMemCache"
