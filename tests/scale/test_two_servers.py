"""Two gunicorn instances on different ports, sharing one PostgreSQL database and
one Redis, behave as one: a reset, a disable or an appointment change made once is
seen by the other server on its very next request, although both had the feed
cached just before."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REDIS_DB = 12


def _postgres_base() -> str:
    """The server to create a database on: DATABASE_URL's when it is PostgreSQL,
    else the local one."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"
    return "postgres://postgres@127.0.0.1:5432"


def _redis_url() -> str:
    parts = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15")
    return f"redis://{parts.netloc}/{REDIS_DB}"


def _postgres_or_skip(base: str):
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(base + "/postgres", connect_timeout=3, autocommit=True)
    except psycopg.Error as error:
        pytest.skip(f"PostgreSQL does not answer at {base}: {error}")


def _redis_or_skip(url: str) -> None:
    redis = pytest.importorskip("redis")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis does not answer at {url}: {error}")
    client.flushdb()


def _get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture(scope="module")
def environment():
    base = _postgres_base()
    admin = _postgres_or_skip(base)
    redis_url = _redis_url()
    _redis_or_skip(redis_url)
    name = f"tend_two_servers_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": f"{base}/{name}",
        "CACHE_URL": redis_url,
        "SECRET_KEY": "two-servers-secret-key-0123456789-0123456789",
        "CALENDAR_FEED_KEY": "two-servers-feed-key-0123456789-0123456789",
        "STATIC_MANIFEST": "false",
        "DEBUG": "false",
        "CONN_MAX_AGE": "0",
    }
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
        )
        yield env
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def act(env: dict, action: str) -> dict:
    """Run one of tests/scale/actions.py through the services, return its JSON."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            f"from tests.scale import actions; actions.{action}()",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def servers(environment):
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(  # noqa: S603 - our own gunicorn and arguments
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 60
        for port in ports:
            while True:
                try:
                    _get(port, "/calendar/not-a-link.ics")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def test_reset_disable_and_changes_are_seen_by_the_other_server(environment, servers):
    one, two = servers
    path = act(environment, "seed")["path"]

    def fetch_both(path):
        # Twice each, so both servers (and their workers) hold the feed cached.
        answers = [_get(port, path) for port in (one, two, one, two)]
        assert len({status for status, _body in answers}) == 1
        return answers[-1]

    status, before = fetch_both(path)
    assert status == 200
    assert b"SEQUENCE:0" in before

    act(environment, "move")
    status, after = _get(two, path)
    assert status == 200
    assert b"SEQUENCE:1" in after
    assert _get(one, path) == (200, after)

    fetch_both(path)
    new_path = act(environment, "reset")["path"]
    assert _get(two, path)[0] == 404
    assert _get(one, path)[0] == 404
    assert _get(one, new_path) == (200, after)
    assert _get(two, new_path) == (200, after)

    act(environment, "disable")
    assert _get(two, new_path)[0] == 404
    assert _get(one, new_path)[0] == 404
