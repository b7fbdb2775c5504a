"""Two real worker processes (``manage.py db_worker``, running on as in
production, not in batches) on PostgreSQL, pushing six clinicians' calendars on
one CalDAV server while the SCHEDULING tab's services change them in bursts:
bookings, moves, a new length and room, cancellations, a deletion, one handed to
a colleague, an event edited and one deleted on the server outside Tend, and a
server stopped for a while. Afterwards every calendar holds exactly what its
owner's personal feed shows (nothing lost), Tend's record matches it, a further
run writes nothing, and the server's own history of writes (Radicale's storage
hook, Xandikos's git history) shows no version of an event written twice.

A run asked for later while the account's task waits (a retry, or dates held
back to the clock) must not be lost when that task starts first: it queues a
task for then (``pushqueue.push_take``). Two single-process tests at the end
pin it; the outage scenario met it about seven times in ten before."""

import subprocess
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import caldav
import icalendar
import pytest
from django.db import connection
from django.db.models import Max, Q
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from dulwich.diff_tree import tree_changes
from dulwich.repo import Repo

from calendarsync import push, pushqueue
from calendarsync.models import CalendarAccount, PushedEvent
from scheduling.models import Appointment
from tests.factories import (
    change_appointment,
    connect_calendar_account_to,
    delete_appointment,
    local,
    make_appointment,
    make_location,
    make_user,
)
from tests.servers import RadicaleServer, XandikosServer
from tests.support import db_worker_command, db_worker_env

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
PUSH_TASK = "calendarsync.push.push_account"
# How long the workers get to bring every calendar in line after a burst.
SETTLE = 60.0
GONE = "gone"
# Properties a calendar app shows (the rest follow from these or are fixed).
SHOWN = ("UID", "SEQUENCE", "SUMMARY", "LOCATION", "STATUS", "DTSTART", "DTEND")


class RunLost(AssertionError):
    """A run is wanted and nothing will run it (``lost``)."""


class LoggingRadicale(RadicaleServer):
    """Radicale whose storage hook appends every write (method, file, a hash of
    the file as the write left it, or "gone") to ``writes.log``: the server's own
    account of what was written, in the order it was written."""

    def command(self) -> list[str]:
        command = super().command()
        config = Path(command[-1])
        log = self.folder / "writes.log"
        hook = (
            "echo %(request)s %(path)s "
            "$(test -f %(path)s && sha256sum < %(path)s | cut -c1-16 || echo gone)"
            f" >> {log}"
        )
        config.write_text(
            config.read_text().replace("[storage]\n", f"[storage]\nhook = {hook}\n")
        )
        return command

    def history(self, calendar_url: str) -> dict[str, list[str]]:
        """{resource name: the states each write left it in, oldest first}."""
        log = self.folder / "writes.log"
        folder = urlsplit(calendar_url).path.strip("/")
        states = defaultdict(list)
        for line in log.read_text().splitlines() if log.exists() else []:
            request, path, state = line.split(" ")
            if request not in ("PUT", "DELETE"):
                continue
            parent, _, name = path.rpartition("/")
            if parent.endswith("/" + folder):
                states[name].append(state)
        return states


class HistoryXandikos(XandikosServer):
    """Xandikos keeps each calendar in a git repository, one commit per write:
    its history is the server's own account of what was written."""

    def history(self, calendar_url: str) -> dict[str, list[str]]:
        repo = Repo(str(self.folder / "data" / urlsplit(calendar_url).path.strip("/")))
        commits = [entry.commit for entry in repo.get_walker(reverse=True)]
        states = defaultdict(list)
        for commit in commits:
            parent = repo[commit.parents[0]].tree if commit.parents else None
            for change in tree_changes(repo.object_store, parent, commit.tree):
                new = change.new if change.new and change.new.sha else None
                name = (new or change.old).path.decode()
                if name.endswith(".ics"):
                    states[name].append(new.sha.decode()[:16] if new else GONE)
        return states


@pytest.fixture(params=["radicale", "xandikos"])
def server(request, tmp_path):
    """A CalDAV server of this test's own (so that it can be stopped, and its
    history holds only this test's writes)."""
    kind = {"radicale": LoggingRadicale, "xandikos": HistoryXandikos}[request.param]
    server = kind(tmp_path / request.param)
    server.folder.mkdir()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def accounts(practice, clinician, server, settings):
    """Six clinicians sharing one server user, each with a connected account and
    its own Tend calendar; changes queue real tasks for the workers."""
    if connection.vendor != "postgresql":
        pytest.skip(
            "two worker processes need a database they can share with the test "
            "(PostgreSQL); SQLite's test database is this process's own"
        )
    settings.TASKS = DATABASE_QUEUE
    staff = [clinician] + [
        make_user(practice, email=f"c{index}@riverside.test", name=f"Clin {index}")
        for index in range(5)
    ]
    return [connect_calendar_account_to(user, server) for user in staff]


def start_worker(env: dict, output: Path) -> subprocess.Popen:
    with output.open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - our own command and arguments
            db_worker_command(batch=False),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def workers(accounts, tmp_path):
    """Two ``db_worker`` processes on the test database, each running up to four
    accounts at once, stopped (as a deploy stops them) at the end."""
    env = db_worker_env(PUSH_CONCURRENCY="4")
    outputs = [tmp_path / f"worker-{n}.log" for n in (1, 2)]
    processes = [start_worker(env, output) for output in outputs]
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for output in outputs:
        # Nothing failed inside a worker, even where it was caught and logged.
        assert "Traceback" not in output.read_text(), output.read_text()


def settled() -> bool:
    """No run waiting, wanted, queued or going on, for any account."""
    tasks = DBTaskResult.objects.filter(
        task_path=PUSH_TASK, status__in=["READY", "RUNNING"]
    )
    marked = CalendarAccount.objects.filter(
        Q(push_wanted_at__isnull=False)
        | Q(push_queued_at__isnull=False)
        | Q(push_lease_until__isnull=False)
    )
    # Tasks first: a running task may mark an account (a later run) as it ends.
    return not tasks.exists() and not marked.exists()


def lost() -> list[int]:
    """Accounts whose run is wanted while no task waits for them, no run holds
    them and no task runs (whose sweep might take them): nothing will run them
    until the next change or the nightly reconcile."""
    tasks = DBTaskResult.objects.filter(task_path=PUSH_TASK)
    if tasks.filter(status="RUNNING").exists():
        return []
    waiting_for = {run.args_kwargs["args"][0] for run in tasks.filter(status="READY")}
    return [
        pk
        for pk in CalendarAccount.objects.filter(
            push_wanted_at__isnull=False,
            push_queued_at__isnull=True,
            push_lease_until__isnull=True,
        ).values_list("pk", flat=True)
        if pk not in waiting_for
    ]


def wait_until(done, workers, *, what: str, timeout: float = SETTLE) -> float:
    """Poll ``done`` until true (or fail after ``timeout``, or as soon as a run
    is lost); the seconds it took."""
    started = time.monotonic()
    while not done():
        assert all(w.poll() is None for w in workers), "a worker exited"
        elapsed = time.monotonic() - started
        assert elapsed < timeout, (what, waiting())
        if lost():
            time.sleep(0.5)  # the same a moment later: not a run ending
            if lost():
                raise RunLost(waiting())
        time.sleep(0.1)
    return time.monotonic() - started


def wait_settled(workers) -> float:
    # Twice in a row, a moment apart: a run that ends asks for its next one.
    seconds = wait_until(settled, workers, what="settled")
    time.sleep(0.2)
    return seconds + wait_until(settled, workers, what="settled")


def pass_the_clock() -> None:
    """Wait until the clock passes every appointment's date: a change within
    the same second as the last one to the same appointment is dated a second
    later, and a run then asks for another once that second comes (see
    ``test_a_run_for_held_back_dates_asked_while_a_task_waits_is_not_lost``)."""
    latest = Appointment.objects.aggregate(latest=Max("updated_at"))["latest"]
    while latest is not None and timezone.now() <= latest:
        time.sleep(0.05)


def waiting() -> list:
    return [
        *CalendarAccount.objects.filter(
            Q(push_wanted_at__isnull=False)
            | Q(push_queued_at__isnull=False)
            | Q(push_lease_until__isnull=False)
        ).values(
            "pk",
            "push_wanted_at",
            "push_queued_at",
            "push_lease_until",
            "failing_since",
        ),
        *DBTaskResult.objects.filter(
            task_path=PUSH_TASK, status__in=["READY", "RUNNING"]
        ).values("status", "args_kwargs", "run_after"),
    ]


def shown(body: bytes) -> dict:
    (event,) = icalendar.Calendar.from_ical(body).walk("VEVENT")
    return {name: event.get(name) for name in SHOWN}


def server_resources(server, account) -> dict[str, bytes]:
    """{resource name: body} of Tend's calendar, read with the caldav library."""
    dav = caldav.DAVClient(
        url=server.url, username=server.username, password=server.password
    )
    return {
        str(resource.url).rstrip("/").rsplit("/", 1)[-1]: resource.data.encode()
        for resource in dav.calendar(url=account.calendar_url).events()
    }


def assert_in_line(server, account) -> None:
    """The calendar shows exactly what the personal feed shows, Tend's record
    says what is there, and each version of each event was written once."""
    account = CalendarAccount.objects.select_related("practice", "user").get(
        pk=account.pk
    )
    assert account.failing_since is None, account.failure_message
    wanted = push.wanted_events(account, now=timezone.now())
    on_server = server_resources(server, account)
    assert set(on_server) == {f"{uid}.ics" for uid in wanted}
    for uid, want in wanted.items():
        assert shown(on_server[f"{uid}.ics"]) == shown(want.body), uid

    rows = {row.uid: row for row in PushedEvent.objects.filter(account=account)}
    assert set(rows) == set(wanted)
    assert all(rows[uid].fingerprint == w.fingerprint for uid, w in wanted.items())
    with push.client_for(account) as client:
        listing = {
            href.rstrip("/").rsplit("/", 1)[-1]: etag
            for href, etag in client.resources(account.calendar_url).items()
        }
    assert {f"{uid}.ics": row.etag for uid, row in rows.items()} == listing

    history = server.history(account.calendar_url)
    assert set(history) >= set(on_server)
    for name, states in history.items():
        # Each write changed the resource: none put the same version again.
        repeated = [a for a, b in zip(states, states[1:], strict=False) if a == b]
        assert not repeated, (name, states)
        assert (states[-1] == GONE) == (name not in on_server), (name, states)


def burst(changes) -> None:
    """Changes one after another, each its own transaction (as several users of
    the SCHEDULING tab make them), while the workers run."""
    for change in changes:
        change()


def move(appointment, *, days: int):
    def moved():
        appointment.refresh_from_db()
        change_appointment(
            appointment,
            start=appointment.start + timedelta(days=days),
            end=appointment.end + timedelta(days=days),
        )

    return moved


def book(user, *, days: int, hour: int = 9):
    return lambda: make_appointment(
        user, start=local(user.practice, days=days, hour=hour)
    )


def check_every_calendar(server, accounts, *, failed_runs: bool = False) -> None:
    """Every calendar in line (``assert_in_line``), and no task failed (nor,
    unless the server was down, any run)."""
    for account in accounts:
        assert_in_line(server, account)
    runs = DBTaskResult.objects.filter(task_path=PUSH_TASK)
    assert not runs.exclude(status="SUCCESSFUL").exists()
    if not failed_runs:
        assert all(run.return_value.get("error") is None for run in runs)


def test_two_workers_push_every_change_once(accounts, workers, server, practice):
    started = time.monotonic()
    # The first syncs of the new accounts (and the workers up).
    wait_settled(workers)
    office = make_location(practice, name="Main Street Office")
    staff = [account.user for account in accounts]
    first, second, third, fourth, fifth, sixth = staff
    booked = {
        user.pk: [
            make_appointment(user, start=local(practice, days=day, hour=9 + day))
            for day in range(1, 5)
        ]
        for user in staff
    }
    settle_times = [wait_settled(workers)]
    check_every_calendar(server, accounts)

    # Changes to events every calendar has: moves, a new length and room,
    # cancellations, a deletion, one handed to a colleague, new bookings.
    pass_the_clock()
    burst(
        [
            move(booked[first.pk][0], days=7),
            move(booked[second.pk][1], days=1),
            move(booked[third.pk][2], days=-1),
            lambda: change_appointment(
                booked[fourth.pk][0],
                end=booked[fourth.pk][0].end + timedelta(minutes=30),
                location=office,
            ),
            lambda: change_appointment(
                booked[fifth.pk][1], status=Appointment.Status.CANCELLED
            ),
            lambda: change_appointment(
                booked[sixth.pk][3], status=Appointment.Status.LATE_CANCELLED
            ),
            lambda: delete_appointment(booked[first.pk][3]),
            lambda: change_appointment(booked[second.pk][0], clinician=third),
            *[book(user, days=6, hour=15) for user in staff],
        ]
    )
    settle_times.append(wait_settled(workers))
    check_every_calendar(server, accounts)

    # Outside Tend, on the server: one event edited, one deleted.
    pass_the_clock()
    edited, removed = accounts[4], accounts[5]
    edited_uid = str(booked[fifth.pk][0].uid)
    removed_uid = str(booked[sixth.pk][0].uid)
    with push.client_for(edited) as client:
        href = push.resource_url(edited, edited_uid)
        body, etag = client.get(href)
        client.put(href, body.replace(b"SUMMARY:P.D.", b"SUMMARY:Lunch"), etag=etag)
    with push.client_for(removed) as client:
        client.delete(push.resource_url(removed, removed_uid), etag=None)
    # More changes, among them those two clinicians': their runs find their
    # calendars changed and put the events back.
    burst(
        [
            book(fifth, days=7, hour=10),
            book(sixth, days=7, hour=11),
            move(booked[fourth.pk][1], days=2),
            lambda: change_appointment(
                booked[third.pk][3], status=Appointment.Status.CANCELLED
            ),
            move(booked[first.pk][0], days=1),
            *[book(user, days=8) for user in staff],
        ]
    )
    settle_times.append(wait_settled(workers))
    check_every_calendar(server, accounts)

    restored = dict(
        CalendarAccount.objects.filter(restored_count__gt=0).values_list(
            "pk", "restored_count"
        )
    )
    assert restored == {edited.pk: 1, removed.pk: 1}
    events = server_resources(server, edited)
    assert b"SUMMARY:P.D." in events[f"{edited_uid}.ics"]
    assert f"{removed_uid}.ics" in server_resources(server, removed)

    # Tend's writes: every state in the servers' history but the two made
    # outside Tend. The tasks' own runs (not the ones they took beside them)
    # account for some of those, never more.
    written = sum(
        len(states)
        for account in accounts
        for states in server.history(account.calendar_url).values()
    )
    outcomes = [
        run.return_value for run in DBTaskResult.objects.filter(task_path=PUSH_TASK)
    ]
    own = sum(outcome.get("writes", 0) for outcome in outcomes)
    assert 0 < own <= written - 2
    # Both workers ran tasks.
    worker_ids = DBTaskResult.objects.filter(task_path=PUSH_TASK).values_list(
        "worker_ids", flat=True
    )
    assert len({ids[0] for ids in worker_ids}) == 2

    # A full run of each (listing the calendar, not trusting its tag) finds
    # nothing left to write.
    CalendarAccount.objects.update(calendar_tag="")
    for account in accounts:
        fresh = CalendarAccount.objects.select_related("practice", "user").get(
            pk=account.pk
        )
        assert push.reconcile(fresh).writes == 0
    print(
        f"settled in {', '.join(f'{t:.1f}' for t in settle_times)} s; "
        f"{written} writes on the server, {own} by tasks' own runs; "
        f"{len(outcomes)} tasks: "
        f"{sum(1 for o in outcomes if 'skipped' not in o)} ran, "
        f"{sum(o.get('others', 0) for o in outcomes)} others beside them, "
        f"{sorted(o['skipped'] for o in outcomes if 'skipped' in o)} skipped; "
        f"{time.monotonic() - started:.1f}s"
    )


# Runs of accounts that a sweep took while their own task waited fail, and
# their retries are lost (as test_a_retry_asked_while_a_task_waits_is_not_lost
# shows): whether that happens depends on which worker is first.
@pytest.mark.parametrize("server", ["radicale"], indirect=True)
def test_two_workers_catch_up_after_the_server_was_down(
    accounts, workers, server, practice
):
    started = time.monotonic()
    wait_settled(workers)
    staff = [account.user for account in accounts]
    booked = [book(user, days=1)() for user in staff]
    wait_settled(workers)

    server.stop()
    pass_the_clock()
    burst(
        [
            *[book(user, days=2, hour=10) for user in staff],
            move(booked[0], days=3),
            lambda: change_appointment(booked[1], status=Appointment.Status.CANCELLED),
            lambda: change_appointment(booked[2], clinician=staff[3]),
        ]
    )
    # Every run fails, and asks for a retry later.
    failing = CalendarAccount.objects.filter(failing_since__isnull=False)
    running = DBTaskResult.objects.filter(task_path=PUSH_TASK, status="RUNNING")
    wait_until(
        lambda: failing.count() == len(accounts) and not running.exists(),
        workers,
        what="every account failing",
    )
    assert not CalendarAccount.objects.filter(needs_attention=True).exists()

    # The server comes back, and the clock passes the retries' times.
    server.start()
    now = timezone.now()
    DBTaskResult.objects.filter(task_path=PUSH_TASK, status="READY").update(
        run_after=now
    )
    CalendarAccount.objects.filter(push_wanted_at__isnull=False).update(
        push_wanted_at=now
    )
    caught_up = wait_settled(workers)

    check_every_calendar(server, accounts, failed_runs=True)
    CalendarAccount.objects.update(calendar_tag="")
    for account in accounts:
        fresh = CalendarAccount.objects.select_related("practice", "user").get(
            pk=account.pk
        )
        assert push.reconcile(fresh).writes == 0
    print(f"caught up in {caught_up:.1f}s; {time.monotonic() - started:.1f}s")


def take_and_run_beside(account) -> dict:
    """What another worker's sweep does: take the account's due run and run it."""
    assert pushqueue.push_take_due(1) == [account.pk]
    return push.push_one(account.pk, leased=True)


def later_run_waits(account, waiting: DBTaskResult) -> None:
    """The account's task that waited starts before the later run is due; a
    task must still be waiting for that run."""
    account.refresh_from_db()
    assert account.push_wanted_at > timezone.now()
    args = waiting.args_kwargs
    assert push.push_account.call(*args["args"], **args["kwargs"]) == {
        "skipped": "taken"
    }
    account.refresh_from_db()
    assert account.push_wanted_at is not None
    assert account.push_queued_at is not None, "no task waits for the wanted run"
    assert (
        DBTaskResult.objects.filter(task_path=PUSH_TASK, status="READY")
        .exclude(pk=waiting.pk)
        .exists()
    )


def quiet(account) -> None:
    push.reconcile(account)
    DBTaskResult.objects.all().delete()
    CalendarAccount.objects.update(push_queued_at=None, push_wanted_at=None)


def test_a_run_for_held_back_dates_asked_while_a_task_waits_is_not_lost(
    clinician, radicale, settings
):
    settings.TASKS = DATABASE_QUEUE
    account = connect_calendar_account_to(clinician, radicale)
    quiet(account)
    # Booked and moved three times within a second: the last change is dated
    # seconds ahead. The first commit queued a task; the others found it waiting.
    appointment = make_appointment(clinician)
    for _ in range(3):
        move(appointment, days=1)()
    (waiting,) = DBTaskResult.objects.filter(status="READY")
    # Another worker's sweep runs the account first: it writes the dates held
    # back to the clock and asks for a run once they are real.
    assert take_and_run_beside(account)["writes"] == 1

    later_run_waits(account, waiting)


def test_a_retry_asked_while_a_task_waits_is_not_lost(clinician, settings, tmp_path):
    settings.TASKS = DATABASE_QUEUE
    server = RadicaleServer(tmp_path)
    server.start()
    try:
        account = connect_calendar_account_to(clinician, server)
        quiet(account)
        server.stop()
        make_appointment(clinician)
        (waiting,) = DBTaskResult.objects.filter(status="READY")
        # Another worker's sweep runs the account first: the server is down,
        # and the run asks for a retry later.
        assert take_and_run_beside(account)["error"] == "network"

        later_run_waits(account, waiting)
    finally:
        server.stop()
