"""S6, direct push: the time from a committed appointment change to the new version
being readable on a real CalDAV server, with one real database worker.

The bench starts Radicale on loopback (one user per clinician, as
``tests/servers.RadicaleServer`` does for one), seeds a practice of its own
("Bench Push": ``size.clinicians`` clinicians, two appointments a weekday from
three days back to ten days ahead, so the first full syncs stay short), connects
an account for every clinician through the services the sync page uses, and
starts one ``manage.py db_worker`` on the bench's database. Once the first full
syncs are done it changes appointments as the SCHEDULING tab does
(``appointment_update``: a move of five minutes), first one a second, then
``size.clinicians`` a second spread over every clinician, and a poller GETs each
changed resource from Radicale until it carries the change's SEQUENCE. A
change's time runs from its commit to the first GET that shows it, so it
includes up to one poll sweep (the mean sweep is printed beside it)."""

import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import requests
from django.db import transaction
from django.utils import timezone

from bench.radicale import radicale_config
from bench.seed import Size, _fill, _practice
from calendarsync.accounts import (
    calendar_account_connect,
    calendar_account_use_calendar,
)
from calendarsync.models import CalendarAccount
from calendarsync.push import resource_url
from scheduling.models import Appointment, Location, Patient
from scheduling.services import appointment_update

ROOT = Path(__file__).resolve().parents[1]
SEQUENCE = re.compile(rb"\nSEQUENCE:(\d+)\r?\n")
# How long every change may take to show after the last one is made.
DRAIN = 60.0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Radicale:
    """Radicale on loopback with ``count`` users (plain htpasswd)."""

    def __init__(self, folder: Path, count: int):
        self.folder = folder
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.users = {
            f"push{index}": f"push-password-{index}" for index in range(count)
        }
        self.process: subprocess.Popen | None = None
        # The bench measures Tend, not the disk: Radicale syncs every write to
        # disk, so its collections live in memory where the machine has a tmpfs.
        shm = Path("/dev/shm")  # noqa: S108 - a folder of our own under it
        self.storage = (
            shm / f"tend-bench-radicale-{self.port}"
            if shm.is_dir()
            else folder / "collections"
        )

    def start(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        config = radicale_config(
            self.folder, port=self.port, users=self.users, storage=self.storage
        )
        self.process = subprocess.Popen(  # noqa: S603 - our own Radicale
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "radicale.log").open("w"),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(self.url, timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("Radicale did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.storage, ignore_errors=True)


def _seed(size: Size, now) -> list:
    import random

    rng = random.Random("bench push")
    practice, scheduler, staff = _practice("Bench Push", size.clinicians, rng)
    Location.objects.create(practice=practice, name="Main Office")
    patients = Patient.objects.bulk_create(
        [
            Patient(practice=practice, first_name=f"P{index}", last_name="Bench")
            for index in range(20)
        ]
    )
    for clinician in staff:
        _fill(
            practice,
            clinician,
            back=3,
            ahead=10,
            per_day=2,
            stride=1,
            patients=patients,
            rng=rng,
            now=now,
        )
    return [scheduler, *staff]


def _connect(staff, server: Radicale) -> list[CalendarAccount]:
    accounts = []
    for clinician, (username, password) in zip(
        staff, server.users.items(), strict=False
    ):
        account = calendar_account_connect(
            user=clinician,
            provider=CalendarAccount.Provider.OTHER,
            server_url=server.url,
            username=username,
            password=password,
            actor=clinician,
            client_ip=None,
        ).account
        # Enqueues the first full sync on commit.
        accounts.append(
            calendar_account_use_calendar(account=account, calendar_url=None)
        )
    return accounts


def _synced(accounts, since) -> bool:
    return CalendarAccount.objects.filter(
        pk__in=[a.pk for a in accounts],
        last_reconciled_at__gte=since,
        push_queued_at__isnull=True,
        push_lease_until__isnull=True,
    ).count() == len(accounts)


MULTIGET = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:prop><C:calendar-data/></D:prop>{hrefs}</C:calendar-multiget>"
)
DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"


def _sequences(xml: bytes) -> dict[str, int]:
    """{path: SEQUENCE} of every resource a calendar-multiget answer carries."""
    from defusedxml import ElementTree

    found = {}
    for response in ElementTree.fromstring(xml).iter(f"{DAV}response"):
        href = response.findtext(f"{DAV}href") or ""
        data = response.find(f".//{CALDAV}calendar-data")
        if data is None or not data.text:
            continue
        sequence = SEQUENCE.search(data.text.encode().replace(b"\r\n", b"\n"))
        if sequence:
            found[unquote(urlsplit(href).path)] = int(sequence[1])
    return found


class Poller(threading.Thread):
    """Reads every changed resource until it shows the change's SEQUENCE: one
    calendar-multiget REPORT a sweep for each calendar with changes pending, so
    the poller's own load on the server grows with the calendars waiting, not
    with the changes."""

    def __init__(self, credentials: dict[str, tuple[str, str]]):
        super().__init__(daemon=True)
        self.pending: deque = deque()
        self.lock = threading.Lock()
        self.seconds: list[float] = []
        self.sweeps: list[float] = []
        self.running = True
        self.sessions = {}
        for url, auth in credentials.items():
            session = requests.Session()
            session.auth = auth
            self.sessions[url] = session

    def expect(self, committed: float, calendar_url: str, href: str, seq: int):
        with self.lock:
            self.pending.append((committed, calendar_url, href, seq))

    def run(self) -> None:
        while self.running:
            with self.lock:
                batch = list(self.pending)
            started = time.monotonic()
            by_calendar: dict[str, list] = {}
            for item in batch:
                by_calendar.setdefault(item[1], []).append(item)
            done = set()
            for calendar_url, items in by_calendar.items():
                paths = sorted({unquote(urlsplit(item[2]).path) for item in items})
                response = self.sessions[calendar_url].request(
                    "REPORT",
                    calendar_url,
                    data=MULTIGET.format(
                        hrefs="".join(f"<D:href>{quote(p)}</D:href>" for p in paths)
                    ).encode(),
                    headers={"Depth": "1", "Content-Type": "application/xml"},
                    timeout=10,
                )
                seen = time.monotonic()
                if response.status_code != 207:
                    continue
                sequences = _sequences(response.content)
                for item in items:
                    committed, _url, href, seq = item
                    if sequences.get(unquote(urlsplit(href).path), -1) >= seq:
                        self.seconds.append(seen - committed)
                        done.add(id(item))
            if batch:
                self.sweeps.append(time.monotonic() - started)
            with self.lock:
                self.pending = deque(i for i in self.pending if id(i) not in done)
            if not batch:
                time.sleep(0.01)

    def left(self) -> int:
        with self.lock:
            return len(self.pending)


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


# Threads making changes at the higher rate: one change through the services
# takes tens of milliseconds, so one thread alone cannot make 50 a second.
MAKERS = 10


def _change(account, appointment, actor, poller):
    """Move ``appointment`` five minutes as the SCHEDULING tab does, and hand the
    poller its commit time and the SEQUENCE the server must show."""
    step = timedelta(minutes=5 if appointment.sequence % 2 == 0 else -5)
    stamp = {}
    with transaction.atomic():
        # First in line on commit: before the push run is enqueued.
        transaction.on_commit(lambda: stamp.update(t=time.monotonic()))
        appointment = appointment_update(
            appointment=appointment,
            actor=actor,
            expected_revision=None,
            allow_conflicts=True,
            start=appointment.start + step,
            end=appointment.end + step,
        )
    appointment.refresh_from_db(fields=["sequence", "start", "end", "revision"])
    href = resource_url(account, str(appointment.uid))
    poller.expect(stamp["t"], account.calendar_url, href, appointment.sequence)
    return appointment


def _phase(*, rate: int, seconds: int, accounts, actor, targets, poller) -> dict:
    from django.db import connection
    from django_tasks_db.models import DBTaskResult

    runs_before = DBTaskResult.objects.filter(status="SUCCESSFUL").count()
    made_before = len(poller.seconds)
    started = time.monotonic()
    total = rate * seconds
    makers = min(MAKERS, rate, len(accounts))
    late = [0.0] * makers

    def make(maker: int) -> None:
        # Maker m makes changes m, m + makers, …, each at its due time.
        try:
            for index in range(maker, total, makers):
                pause = started + index / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                else:
                    late[maker] = max(late[maker], -pause)
                account = accounts[index % len(accounts)]
                choices = targets[account.pk]
                slot = (index // len(accounts)) % len(choices)
                choices[slot] = _change(account, choices[slot], actor, poller)
        finally:
            if maker:
                connection.close()

    threads = [
        threading.Thread(target=make, args=(maker,)) for maker in range(1, makers)
    ]
    for thread in threads:
        thread.start()
    make(0)
    for thread in threads:
        thread.join()
    late = max(late)
    made = time.monotonic() - started
    deadline = time.monotonic() + DRAIN
    while poller.left() and time.monotonic() < deadline:
        time.sleep(0.05)
    seconds_seen = poller.seconds[made_before:]
    sweeps = poller.sweeps[-200:]
    runs = DBTaskResult.objects.filter(status="SUCCESSFUL").count() - runs_before
    return {
        "changes": total,
        "changes_per_s": round(total / made, 1),
        "behind_schedule_max_s": round(late, 3),
        "threads_making_changes": makers,
        "p50_s": round(statistics.median(seconds_seen), 3) if seconds_seen else None,
        "p95_s": round(_percentile(seconds_seen, 0.95), 3) if seconds_seen else None,
        "max_s": round(max(seconds_seen), 3) if seconds_seen else None,
        "not_readable": poller.left(),
        "push_runs": runs,
        "poll_sweep_mean_s": round(statistics.mean(sweeps), 3) if sweeps else 0,
    }


def s6(size: Size, env: dict, seconds: int, worker_args: list[str]) -> dict:
    """Direct push latency at 1 change a second and at one change a second per
    clinician (``size.clinicians``), with one ``db_worker``."""
    if shutil.which("radicale") is None and not _importable("radicale"):
        return {"skipped": "Radicale is not installed"}
    folder = Path(env["BENCH_DIR"]) / "radicale"
    server = Radicale(folder, size.clinicians)
    server.start()
    worker = None
    poller = None
    try:
        now = timezone.now()
        actor, *staff = _seed(size, now)
        accounts = _connect(staff, server)
        log = (Path(env["BENCH_DIR"]) / "db_worker.log").open("w")
        worker = subprocess.Popen(  # noqa: S603 - our own worker
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--no-reload",
                "--no-startup-delay",
                *worker_args,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started = time.monotonic()
        while not _synced(accounts, now):
            if worker.poll() is not None:
                raise RuntimeError("db_worker stopped; see var/bench/db_worker.log")
            if time.monotonic() - started > 600:
                raise RuntimeError("The first full syncs took over 10 minutes")
            time.sleep(0.2)
        first_sync = time.monotonic() - started
        events = sum(a.pushed_events.count() for a in accounts)
        soon = now + timedelta(hours=2)
        targets = {
            account.pk: list(
                Appointment.objects.filter(
                    clinician_id=account.user_id,
                    start__gte=soon,
                    status=Appointment.Status.SCHEDULED,
                    kind=Appointment.Kind.SESSION,
                ).order_by("start")[:20]
            )
            for account in accounts
        }
        poller = Poller(
            {a.calendar_url: (a.username, server.users[a.username]) for a in accounts}
        )
        poller.start()
        figures = {
            "clinicians": len(accounts),
            "events_pushed": events,
            "first_full_sync_s": round(first_sync, 1),
            "worker": "1 × manage.py db_worker " + " ".join(worker_args),
        }
        for rate in (1, len(accounts)):
            figures[f"at_{rate}_per_s"] = _phase(
                rate=rate,
                seconds=seconds,
                accounts=accounts,
                actor=actor,
                targets=targets,
                poller=poller,
            )
        return figures
    finally:
        if poller is not None:
            poller.running = False
            poller.join(timeout=15)
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        server.stop()


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
