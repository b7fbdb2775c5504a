"""The embedded default under load: gunicorn on a SQLite file database, twenty
calendar clients polling at once (each poll may write a fetch record or what was
last served) while a scheduler keeps moving appointments. With WAL, a busy timeout
and immediate transactions (config/settings.py), no request fails and SQLite never
reports "database is locked"."""

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from tests.servers import free_port, manage

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POLLERS = 20
WRITE_SECONDS = 5
# One of each client family, so fetch records are written per link and family.
USER_AGENTS = [
    "Google-Calendar-Importer",
    "iOS/17.4 (21E219) dataaccessd/1.0",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0)",
    "Mozilla/5.0 Thunderbird/115.0",
    "ICSx5/2.2 (ical4j/3.2)",
]


def _get(port: int, path: str, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, dict(error.headers)


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_twenty_pollers_and_a_writer_never_meet_a_locked_database(tmp_path):
    database = tmp_path / "tend.sqlite3"
    env = {
        **{key: value for key, value in os.environ.items() if key != "CACHE_URL"},
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": "sqlite-concurrency-secret-key-0123456789-0123456789",
        "CALENDAR_FEED_KEY": "sqlite-concurrency-feed-key-0123456789-0123456789",
        "DEBUG": "false",
        "STATIC_MANIFEST": "false",
        # A per-process cache and several processes: no snapshots (see README).
        "CALENDAR_FEED_SNAPSHOT_SECONDS": "0",
        "CALENDAR_FEED_SNAPSHOT_VERIFY": "false",
        "LOG_LEVEL": "WARNING",
    }
    manage(env, "migrate", "--noinput", "-v", "0")
    shell = ["shell", "-c"]
    paths = _last_json(
        manage(env, *shell, "from tests.scale import busy; busy.seed()", timeout=120)
    )["paths"]
    assert len(paths) >= POLLERS

    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(  # noqa: S603 - our own gunicorn and arguments
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "3",
                "--threads",
                "8",
                "--no-control-socket",
                "--logger-class",
                "calendarsync.gunicorn.RedactingLogger",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    statuses: Counter = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def poll(number: int) -> None:
        path = paths[number % len(paths)]
        etags: dict[str, str] = {}
        turn = number
        while not stop.is_set():
            agent = USER_AGENTS[turn % len(USER_AGENTS)]
            turn += 1
            headers = {"User-Agent": agent, "Accept-Encoding": "gzip"}
            if agent in etags:
                headers["If-None-Match"] = etags[agent]
            try:
                status, answer = _get(port, path, headers)
            except OSError as error:
                with lock:
                    failures.append(f"{type(error).__name__}: {error}")
                continue
            if "ETag" in answer:
                etags[agent] = answer["ETag"]
            with lock:
                statuses[status] += 1

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(port, "/healthz", {})
                break
            except OSError:
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        pollers = [
            threading.Thread(target=poll, args=(number,)) for number in range(POLLERS)
        ]
        for poller in pollers:
            poller.start()
        written = _last_json(
            manage(
                env,
                *shell,
                f"from tests.scale import busy; busy.write({WRITE_SECONDS})",
                timeout=120,
            )
        )
        stop.set()
        for poller in pollers:
            poller.join(timeout=60)
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)

    log_text = log_path.read_text()
    locked = log_text.count("database is locked")
    failed = sum(
        count for status, count in statuses.items() if status not in (200, 304)
    )
    summary = (
        f"polls by status {dict(statuses)}, {len(failures)} connection failures, "
        f"{failed} failed polls, {locked} 'database is locked' in the server log, "
        f"writer: {written['saved']} moves saved, {len(written['errors'])} errors"
    )
    print(summary)
    # Both sides got through (how much depends on the machine's load; what must
    # never happen is an error or a lock).
    assert statuses[200] + statuses[304] >= POLLERS, summary
    assert written["saved"] >= 1, summary
    assert not failures, summary
    assert failed == 0, summary
    assert not written["errors"], summary
    assert locked == 0, summary
    with sqlite3.connect(database) as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
