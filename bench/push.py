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
``size.clinicians`` a second spread over every clinician, and a poller watches
Radicale's storage for each changed resource to carry the change's SEQUENCE,
then GETs it from Radicale to confirm. A change's time runs from its commit to
that sighting, so it includes up to one poll sweep (the mean sweep is printed
beside it)."""

import os
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
from urllib.parse import unquote, urlsplit

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
        push_wanted_at__isnull=True,
        push_lease_until__isnull=True,
    ).count() == len(accounts)


class Poller(threading.Thread):
    """Waits for every changed resource to show the change's SEQUENCE on the
    server. It watches Radicale's storage folder (the bench's own, on tmpfs), where
    Radicale's PUT has put the resource before it answers: a sighting is timed
    there, then confirmed by a GET as a client would make it, on a thread of its
    own (``Confirmer``) so that confirming one change never delays seeing the
    next. A change counts only once its GET shows it; one whose GET does not is
    watched for again. The server's load from measuring is one GET a change,
    however long the backlog."""

    def __init__(self, credentials: dict[str, tuple[str, str]], storage: Path):
        super().__init__(daemon=True)
        self.pending: dict[int, tuple] = {}
        self.lock = threading.Lock()
        self.seconds: list[float] = []
        self.sweeps: list[float] = []
        self.unconfirmed = 0
        # Commit to the file's modification time (Radicale's write), per change.
        self.written: list[float] = []
        self.running = True
        self.root = storage / "collection-root"
        self.confirmer = Confirmer(self, credentials)

    def expect(self, committed: tuple, calendar_url: str, href: str, seq: int):
        item = (committed, calendar_url, href, seq)
        with self.lock:
            self.pending[id(item)] = item

    def _path(self, href: str) -> Path:
        return self.root / unquote(urlsplit(href).path).strip("/")

    def run(self) -> None:
        self.confirmer.start()
        # Each sweep lists the folders of the calendars with changes waiting and
        # reads only the files whose modification time moved since it last did.
        read_at: dict[str, tuple] = {}
        sequence_of: dict[str, int] = {}
        written_of: dict[str, float] = {}
        while self.running:
            with self.lock:
                batch = list(self.pending.values())
            started = time.monotonic()
            folders = {self._path(item[2]).parent for item in batch}
            for folder in folders:
                try:
                    entries = list(os.scandir(folder))
                except OSError:
                    continue
                for entry in entries:
                    # (The clock's tick can be coarser than two writes apart;
                    # Radicale writes a new file each time.)
                    if entry.name.startswith("."):  # Radicale's own files
                        continue
                    try:
                        info = entry.stat()
                    except OSError:
                        continue
                    stamp = info.st_mtime_ns
                    if read_at.get(entry.path) == (stamp, info.st_ino, info.st_size):
                        continue
                    read_at[entry.path] = (stamp, info.st_ino, info.st_size)
                    try:
                        found = SEQUENCE.search(Path(entry.path).read_bytes())
                    except OSError:
                        continue
                    sequence_of[entry.path] = int(found[1]) if found else -1
                    written_of[entry.path] = stamp / 1e9
            seen = time.monotonic()
            for item in batch:
                (_committed, committed_wall), _url, href, seq = item
                path = str(self._path(href))
                if sequence_of.get(path, -1) >= seq:
                    with self.lock:
                        self.pending.pop(id(item), None)
                    self.confirmer.check(item, seen, written_of[path] - committed_wall)
            if batch:
                self.sweeps.append(time.monotonic() - started)
            time.sleep(0.02)
        self.confirmer.running = False
        self.confirmer.join(timeout=15)

    def left(self) -> int:
        with self.lock:
            return len(self.pending) + self.confirmer.left()


class Confirmer(threading.Thread):
    """GETs each change the poller sighted; counts it if the server serves it,
    hands it back to the poller otherwise."""

    def __init__(self, poller: Poller, credentials: dict[str, tuple[str, str]]):
        super().__init__(daemon=True)
        self.poller = poller
        self.queue: deque = deque()
        self.running = True
        # One connection for every calendar: Radicale serves a few connections
        # at a time (``max_connections``), and one kept open per calendar would
        # hold the push's own requests up.
        self.session = requests.Session()
        self.credentials = credentials

    def check(self, item: tuple, seen: float, written: float) -> None:
        self.queue.append((item, seen, written))

    def left(self) -> int:
        return len(self.queue)

    def run(self) -> None:
        poller = self.poller
        while self.running or self.queue:
            try:
                item, seen, written = self.queue.popleft()
            except IndexError:
                time.sleep(0.01)
                continue
            (committed, _wall), calendar_url, href, seq = item
            try:
                response = self.session.get(
                    href, auth=self.credentials[calendar_url], timeout=10
                )
            except requests.RequestException:
                response = None
            found = response is not None and SEQUENCE.search(response.content)
            if (
                response is not None
                and response.status_code == 200
                and found
                and (int(found[1]) >= seq)
            ):
                poller.seconds.append(seen - committed)
                poller.written.append(written)
            else:
                poller.unconfirmed += 1
                with poller.lock:
                    poller.pending[id(item)] = item


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
        transaction.on_commit(
            lambda: stamp.update(t=time.monotonic(), wall=time.time())
        )
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
    poller.expect(
        (stamp["t"], stamp["wall"]), account.calendar_url, href, appointment.sequence
    )
    return appointment


def _phase(*, rate: int, seconds: int, accounts, actor, targets, poller) -> dict:
    from django.db import connection
    from django_tasks_db.models import DBTaskResult

    phase_started = timezone.now()
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
    written = poller.written[made_before:]
    sweeps = poller.sweeps[-200:]
    # A run that took others beside its own returns once none are due.
    settle = time.monotonic() + 10
    while DBTaskResult.objects.filter(status="RUNNING").exists():
        if time.monotonic() > settle:
            break
        time.sleep(0.05)
    outcomes = [
        result.return_value or {}
        for result in DBTaskResult.objects.filter(
            status="SUCCESSFUL",
            task_path="calendarsync.push.push_account",
            finished_at__gte=phase_started,
        )
    ]
    ran = [o for o in outcomes if "skipped" not in o]
    runs = len(ran) + sum(o.get("others", 0) for o in ran)
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
        "tasks_run": len(ran),
        "tasks_skipped": len(outcomes) - len(ran),
        "poll_sweep_mean_s": round(statistics.mean(sweeps), 3) if sweeps else 0,
        "seen_stored_not_served": poller.unconfirmed,
        "written_p50_s": round(statistics.median(written), 3) if written else None,
        "written_p95_s": round(_percentile(written, 0.95), 3) if written else None,
    }


def s6(size: Size, env: dict, seconds: int, worker_args: list[str]) -> dict:
    """Direct push latency at 1 change a second and at one change a second per
    clinician (``size.clinicians``), with one ``db_worker`` (pushing
    ``PUSH_CONCURRENCY`` accounts at once: the environment's, else the default)."""
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
        from django.conf import settings

        concurrency = settings.PUSH_CONCURRENCY
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
            {a.calendar_url: (a.username, server.users[a.username]) for a in accounts},
            server.storage,
        )
        poller.start()
        figures = {
            "clinicians": len(accounts),
            "events_pushed": events,
            "first_full_sync_s": round(first_sync, 1),
            "worker": (
                "1 × manage.py db_worker "
                + " ".join(worker_args)
                + f" (PUSH_CONCURRENCY={env.get('PUSH_CONCURRENCY') or concurrency})"
            ),
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
