"""Real servers the tests start on loopback: a Redis of their own (which can be
saved, stopped and started again from an older dump), a server that accepts
connections and never answers (a hung Redis), and an SMTP server that keeps what
it is sent."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from bench.radicale import radicale_config

ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
INSTALL_HINT = "apt-get install redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_without_database(
    port: int, access_log: Path, access_format: str, *extra: str, **popen
) -> subprocess.Popen:
    """gunicorn started as ``make run`` starts it (one worker, the redacting
    logger) on ``port``, logging requests to ``access_log`` in ``access_format``.
    Its database is unreachable, so no request can depend on data; ``extra`` are
    more gunicorn flags and ``popen`` goes to ``subprocess.Popen``."""
    env = dict(
        os.environ,
        DATABASE_URL="postgres://nobody@127.0.0.1:9/nothing",
        SECRET_KEY="test-only-secret-key-not-for-production-0123456789",
        CALENDAR_FEED_KEY="test-only-feed-key-not-for-production-0123456789",
        STATIC_MANIFEST="false",
        **popen.pop("env", {}),
    )
    return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            str(access_log),
            "--access-logformat",
            access_format,
            "--logger-class",
            "calendarsync.gunicorn.RedactingLogger",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        **popen,
    )


def manage(env: dict, *args: str, timeout: int = 300) -> str:
    """Run ``manage.py`` with ``args`` in ``env`` (a server's own settings) and
    return what it printed; fails the test with its errors otherwise."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class RedisServer:
    """A redis-server process of the test run's own, in ``folder``."""

    def __init__(self, folder: Path):
        if not Path(REDIS_SERVER).exists():
            raise RuntimeError(f"redis-server is missing: {INSTALL_HINT}")
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--dbfilename",
                "dump.rdb",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.client().ping()
                return
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def save(self, name: str) -> Path:
        """A copy of the data as it is now (as a backup would take)."""
        self.client().save()
        copy = self.folder / name
        shutil.copy(self.folder / "dump.rdb", copy)
        return copy

    def restart(self, *, from_dump: Path | None = None) -> None:
        """Stop, and start again: empty, or from ``from_dump``."""
        self.stop()
        dump = self.folder / "dump.rdb"
        dump.unlink(missing_ok=True)
        if from_dump is not None:
            shutil.copy(from_dump, dump)
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class SilentServer:
    """Accepts connections and never says a word, like a Redis that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.sock.close()
        for connection in self.held:
            connection.close()


class SmtpServer:
    """A real SMTP server (aiosmtpd) on a free loopback port, in a thread of the
    test run, keeping every message it accepts."""

    def __init__(self):
        self.port = free_port()
        self.messages: list[Message] = []
        self.envelopes: list[Envelope] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.original_content or b""))
        return "250 Message accepted for delivery"

    @property
    def mailer(self) -> dict:
        """MAILERS["default"] delivering here."""
        return {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": self.port, "timeout": 5},
        }

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def _wait_for_port(port: int, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start ({process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not start")


class CalDAVServer:
    """A real CalDAV server process on loopback, with its data in ``folder``."""

    name = "CalDAV server"
    username = ""
    password = ""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process, self.name)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class RadicaleServer(CalDAVServer):
    """Radicale with one user in a plain htpasswd file."""

    name = "Radicale"
    username = "clinician"
    password = "app-password-radicale-1"

    def command(self) -> list[str]:
        config = radicale_config(
            self.folder,
            port=self.port,
            users={self.username: self.password},
            storage=self.folder / "collections",
        )
        return [sys.executable, "-m", "radicale", "--config", str(config)]


class XandikosServer(CalDAVServer):
    """Xandikos with its default principal (it has no authentication of its own:
    any credentials are accepted)."""

    name = "Xandikos"
    username = "user"
    password = "any-password"

    def command(self) -> list[str]:
        xandikos = Path(sys.executable).with_name("xandikos")
        return [
            str(xandikos),
            "serve",
            "-d",
            str(self.folder / "data"),
            "-l",
            "127.0.0.1",
            "-p",
            str(self.port),
            "--defaults",
        ]
