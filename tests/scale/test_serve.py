"""`make run`'s server script (scripts/serve): gunicorn and the background worker
side by side on a SQLite file database. The worker sends what the app queues to a
real SMTP server, and stopping gunicorn, by Ctrl+C or by a kill, stops the worker
too: nothing is left running."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.servers import free_port, manage

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _children(pid: int) -> dict[str, int]:
    """The script's two processes, by what they run."""
    found = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        found["worker" if b"db_worker" in command else "gunicorn"] = int(child)
    return found


def _wait_for(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.1)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(  # noqa: S310 - our own loopback server
            f"http://127.0.0.1:{port}/healthz", timeout=2
        ) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.mark.parametrize("stop", ["ctrl-c", "kill-gunicorn"])
def test_serve_runs_the_worker_and_stops_it_with_gunicorn(tmp_path, smtp_server, stop):
    env = {
        **{key: value for key, value in os.environ.items() if key != "CACHE_URL"},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'tend.sqlite3'}",
        "SECRET_KEY": "serve-test-secret-key-0123456789-0123456789-0123456789",
        "CALENDAR_FEED_KEY": "serve-test-feed-key-0123456789-0123456789-0123456789",
        "DEBUG": "false",
        "STATIC_MANIFEST": "false",
        "CALENDAR_FEED_SNAPSHOT_SECONDS": "0",
        "CALENDAR_FEED_SNAPSHOT_VERIFY": "false",
        "TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}",
        "SITE_URL": "https://tend.example.com",
        "LOG_LEVEL": "WARNING",
    }
    manage(env, "migrate", "--noinput", "-v", "0")
    port = free_port()
    with (tmp_path / "serve.log").open("w") as log:
        serve = subprocess.Popen(  # noqa: S603 - our own script and arguments
            [
                str(ROOT / "scripts" / "serve"),
                str(VENV),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, as a terminal gives `make run`.
            start_new_session=True,
        )
    processes: dict[str, int] = {}
    try:
        _wait_for(lambda: _healthy(port), "gunicorn answering")
        processes.update(_children(serve.pid))
        assert set(processes) == {"gunicorn", "worker"}

        # An invitation is queued in the database; the worker sends it.
        manage(
            env,
            "createpractice",
            "Lakeside Therapy",
            "--admin-email",
            "owner@lakeside.test",
            "--admin-name",
            "Pat Owner",
            "--invite",
        )
        _wait_for(lambda: smtp_server.messages, "the invitation at the SMTP server")
        [invitation] = smtp_server.messages
        assert invitation["To"] == "owner@lakeside.test"
        assert invitation["Subject"] == "You have been added to Tend"

        if stop == "ctrl-c":
            os.killpg(serve.pid, signal.SIGINT)
        else:
            os.kill(processes["gunicorn"], signal.SIGTERM)
        serve.wait(timeout=30)
        assert not _alive(processes["gunicorn"])
        assert not _alive(processes["worker"])
    finally:
        for pid in processes.values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
