"""S1–S5. Each scenario returns a dict of figures; ``run.py`` prints them and
writes them to bench/README.md. Requests S1–S4 go through Django's whole request
path in this process (so queries can be counted); S5 goes over loopback to
gunicorn, driven by wrk."""

import gzip
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

from django.core.cache import cache
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.seed import Seeded, Size
from bench.views import prerendered_store
from calendarsync import freshness, ical
from scheduling.models import Appointment

ROOT = Path(__file__).resolve().parents[1]
GZIP = {"Accept-Encoding": "gzip", "User-Agent": "Google-Calendar-Importer"}
PLAIN = {"User-Agent": "Google-Calendar-Importer"}


def median_ms(samples: list[int]) -> float:
    return round(statistics.median(samples) / 1e6, 3)


def timed(client: Client, path: str, headers: dict, repeats: int, before=None):
    """Median milliseconds of ``repeats`` requests (``before`` runs untimed before
    each one) and the last response."""
    samples = []
    response = None
    for _ in range(repeats):
        if before:
            before()
        started = time.perf_counter_ns()
        response = client.get(path, headers=headers)
        samples.append(time.perf_counter_ns() - started)
    return median_ms(samples), response


def count_queries(client: Client, path: str, headers: dict, before=None):
    if before:
        before()
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, headers=headers)
    statements = [
        query["sql"]
        for query in captured.captured_queries
        if "SAVEPOINT" not in query["sql"]
    ]
    return len(statements), response


def toucher(appointment_ids: list[int]):
    """What the SCHEDULING tab does to one appointment per call, round robin."""
    state = {"next": 0}

    def touch():
        pk = appointment_ids[state["next"] % len(appointment_ids)]
        state["next"] += 1
        Appointment.objects.filter(pk=pk).update(
            sequence=F("sequence") + 1, updated_at=timezone.now()
        )

    return touch


def _complete(raw: bytes) -> tuple[str, str]:
    unfolded = raw.replace(b"\r\n ", b"").decode()
    found = re.search(r"Complete from (\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d)", unfolded)
    return found[1], found[2]


def feed_scenario(
    client: Client,
    *,
    name: str,
    path: str,
    appointment_ids: list[int],
    size: Size,
) -> dict:
    """Cold build, unchanged polls (200 and 304), rebuild after one change, the B0
    and N baselines, bytes and peak memory for one feed."""
    figures: dict = {}
    cache.clear()
    freshness.forget_all()
    ical.render_event.cache_clear()
    started = time.perf_counter_ns()
    queries, response = count_queries(client, path, GZIP)
    figures["cold_ms"] = round((time.perf_counter_ns() - started) / 1e6, 3)
    assert response.status_code == 200, response.status_code
    figures["cold_queries"] = queries  # includes the first fetch record's writes
    raw = client.get(path, headers=PLAIN).content
    figures["raw_bytes"] = len(raw)
    figures["gzip_bytes"] = len(response.content)
    figures["gzip_ratio"] = round(len(raw) / len(response.content), 1)
    figures["events"] = raw.count(b"BEGIN:VEVENT")
    etag = response["ETag"]

    figures["unchanged_200_queries"], _ = count_queries(client, path, GZIP)
    figures["unchanged_200_ms"], _ = timed(client, path, GZIP, size.repeats)
    conditional = {**GZIP, "If-None-Match": etag}
    figures["unchanged_304_queries"], answer = count_queries(client, path, conditional)
    assert answer.status_code == 304
    figures["unchanged_304_ms"], _ = timed(client, path, conditional, size.repeats)

    touch = toucher(appointment_ids)
    stale = {**GZIP, "If-None-Match": etag}
    figures["rebuild_queries"], answer = count_queries(
        client, path, stale, before=touch
    )
    assert answer.status_code == 200
    figures["rebuild_ms"], answer = timed(
        client, path, stale, size.repeats, before=touch
    )

    # The same request without the per-event fragments: every event rendered anew.
    def forget():
        touch()
        ical.render_event.cache_clear()

    figures["rebuild_cold_fragments_ms"], _ = timed(
        client, path, stale, max(2, size.repeats // 4), before=forget
    )

    touch()
    client.get(path, headers=GZIP)  # the fragments of the current state, once
    touch()
    tracemalloc.start()
    tracemalloc.reset_peak()
    answer = client.get(path, headers=stale)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    current_raw = gzip.decompress(answer.content)
    figures["rebuild_peak_bytes"] = peak
    figures["rebuild_peak_ratio"] = round(peak / len(current_raw), 2)

    prerendered_store(name, current_raw, answer["ETag"])
    figures["b0_ms"], b0 = timed(client, f"/bench/b0/{name}.ics", GZIP, size.repeats)
    assert b0.status_code == 200

    naive_path = path.replace("/calendar/", "/bench/naive/")
    first, last = _complete(current_raw)
    naive_path += f"?from={first}&until={last}"
    figures["naive_queries"], naive = count_queries(client, naive_path, GZIP)
    figures["naive_ms"], naive = timed(client, naive_path, GZIP, size.naive_repeats)
    figures["naive_events"] = gzip.decompress(naive.content).count(b"BEGIN:VEVENT")

    figures["ratio_200_vs_b0"] = round(
        figures["b0_ms"] / figures["unchanged_200_ms"], 2
    )
    figures["ratio_304_vs_b0"] = round(
        figures["b0_ms"] / figures["unchanged_304_ms"], 2
    )
    figures["ratio_naive_vs_rebuild"] = round(
        figures["naive_ms"] / figures["rebuild_ms"], 1
    )
    return figures


def s1(client: Client, seeded: Seeded, size: Size) -> dict:
    clinician = seeded.clinicians[0]
    ids = _future_ids(clinician_id=clinician.pk)
    figures = feed_scenario(
        client,
        name="s1",
        path=seeded.personal_paths[clinician.pk],
        appointment_ids=ids,
        size=size,
    )
    figures["appointments_in_db"] = seeded.s1_events
    return figures


def s2(client: Client, seeded: Seeded, size: Size) -> dict:
    ids = _future_ids(practice_id=seeded.practice.pk, days=7)
    figures = feed_scenario(
        client,
        name="s2",
        path=seeded.practice_path,
        appointment_ids=ids,
        size=size,
    )
    figures["clinicians"] = len(seeded.clinicians)
    return figures


def _future_ids(days: int = 60, **scope) -> list[int]:
    now = timezone.now()
    return list(
        Appointment.objects.filter(
            start__gt=now,
            start__lt=now + timedelta(days=days),
            status=Appointment.Status.SCHEDULED,
            deleted_at__isnull=True,
            **scope,
        )
        .order_by("start")
        .values_list("pk", flat=True)[:50]
    )


def _dated(client: Client, path: str, patience: float = 60.0):
    """The feed once its date validates it: the changes made just before may have
    dated it ahead of the clock (a later second for each), and a date is never
    sent before the clock reaches it."""
    deadline = time.monotonic() + patience
    while True:
        first = client.get(path, headers=GZIP)
        by_date = {**GZIP, "If-Modified-Since": first["Last-Modified"]}
        if client.get(path, headers=by_date).status_code == 304:
            return first
        if time.monotonic() > deadline:
            raise AssertionError("the feed's date never validated it")
        time.sleep(0.25)


def s3(client: Client, seeded: Seeded, size: Size) -> dict:
    """Conditional requests by ETag and by If-Modified-Since, and a stale ETag
    after a change, on the one-clinician and the practice-wide feed."""
    figures = {}
    for label, path in (
        ("s1", seeded.personal_paths[seeded.clinicians[0].pk]),
        ("s2", seeded.practice_path),
    ):
        first = _dated(client, path)
        by_etag = {**GZIP, "If-None-Match": first["ETag"]}
        by_date = {**GZIP, "If-Modified-Since": first["Last-Modified"]}
        figures[f"{label}_etag_queries"], answer = count_queries(client, path, by_etag)
        assert answer.status_code == 304
        figures[f"{label}_etag_ms"], _ = timed(client, path, by_etag, size.repeats)
        figures[f"{label}_ims_queries"], answer = count_queries(client, path, by_date)
        assert answer.status_code == 304
        figures[f"{label}_ims_ms"], _ = timed(client, path, by_date, size.repeats)
    figures["b0_ms"], _ = timed(client, "/bench/b0/s1.ics", GZIP, size.repeats)
    return figures


# The SCHEDULING pages S4 measures, all clinicians; {team} and {location} are the
# practice's own.
S4_PAGES = {
    "week": "view=week",
    "week_last_page": "view=week&page=999",
    "week_team": "view=week&team={team}",
    "week_location": "view=week&location={location}",
    "day": "view=day",
    "month": "view=month",
    "agenda": "view=agenda",
    "phone_week": "view=week&days=1",
}
S4_MS = 150
S4_BYTES = 200 * 1024


def _s4_day(practice) -> str:
    """A day with appointments in ``practice`` (tiny sizes leave gaps)."""
    first = (
        Appointment.objects.filter(
            practice=practice, start__gt=timezone.now() + timedelta(days=1)
        )
        .order_by("start")
        .first()
    )
    return first.start.astimezone(practice.zone).date().isoformat()


def s4(client: Client, seeded: Seeded, size: Size) -> dict:
    """The SCHEDULING tab's all-clinicians pages: the week view at 2 and 50
    clinicians, then every view, filter and page at the group practice's 300,
    each against its 2-clinician twin: queries must not depend on how many
    clinicians or appointments there are, and each page must stay within
    S4_MS and S4_BYTES."""
    figures = {}
    # A week with appointments in both practices (tiny sizes leave gaps).
    first = (
        Appointment.objects.filter(
            practice=seeded.practice, start__gt=timezone.now() + timedelta(days=1)
        )
        .order_by("start")
        .first()
    )
    day = first.start.astimezone(seeded.practice.zone).date().isoformat()
    path = f"/scheduling/?view=week&clinician=all&date={day}"
    for label, user in (("small", seeded.small_scheduler), ("large", seeded.scheduler)):
        client.force_login(user)
        client.get(path)  # the session is saved once
        figures[f"{label}_queries"], response = count_queries(client, path, {})
        assert response.status_code == 200
        figures[f"{label}_ms"], response = timed(client, path, {}, size.repeats)
        figures[f"{label}_bytes"] = len(response.content)
        client.logout()
    figures["large_clinicians"] = len(seeded.clinicians)
    figures["small_clinicians"] = 2
    for label, practice in (
        ("small", seeded.small_practice),
        ("large", seeded.practice),
    ):
        figures[f"{label}_appointments_that_week"] = Appointment.objects.filter(
            practice=practice,
            start__gte=first.start - timedelta(days=7),
            start__lt=first.start + timedelta(days=7),
        ).count()  # the fortnight around it: an upper bound

    figures["group_clinicians"] = seeded.group_clinicians
    runs = (
        (
            "group",
            seeded.group_scheduler,
            seeded.group_practice,
            seeded.group_team,
            seeded.group_location,
        ),
        (
            "twin",
            seeded.small_scheduler,
            seeded.small_practice,
            seeded.small_team,
            seeded.small_location,
        ),
    )
    for label, user, practice, team, location in runs:
        day = _s4_day(practice)
        client.force_login(user)
        client.get("/scheduling/")  # the session is saved once
        for name, query in S4_PAGES.items():
            query = query.format(team=team.pk, location=location.pk)
            page = f"/scheduling/?{query}&clinician=all&date={day}"
            queries, response = count_queries(client, page, {})
            assert response.status_code == 200, page
            if label == "twin":
                figures[f"{name}_queries_at_2"] = queries
                continue
            figures[f"{name}_queries"] = queries
            figures[f"{name}_ms"], response = timed(client, page, {}, size.page_repeats)
            figures[f"{name}_bytes"] = len(response.content)
        client.logout()
    return figures


# S5 -----------------------------------------------------------------------------

LUA = ROOT / "bench" / "mixed.lua"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def _wrk(port: int, urls: Path, seconds: int, connections: int) -> dict:
    done = subprocess.run(  # noqa: S603 - fixed argv
        [
            shutil.which("wrk"),
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}",
            "--",
            str(urls),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> dict:
    """Requests per second, median latency and status counts from wrk's report."""
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])}
    latency = re.search(r"\s50%\s+([\d.]+)(us|ms|s)\b", output)
    if latency:
        scale = {"us": 0.001, "ms": 1, "s": 1000}[latency[2]]
        figures["p50_ms"] = round(float(latency[1]) * scale, 3)
    statuses = re.search(r"^STATUSES (\{.*\})$", output, re.MULTILINE)
    figures["statuses"] = json.loads(statuses[1]) if statuses else {}
    return figures


def write_urls(path: Path, lines: list[tuple[str, str]]) -> None:
    """One request a line: path, tab, If-None-Match value (may be empty)."""
    path.write_text("".join(f"{url}\t{etag}\n" for url, etag in lines))


def s5(client: Client, seeded: Seeded, size: Size, env: dict, seconds: int) -> dict:
    """gunicorn + wrk: B0, unchanged 200s, unchanged 304s, then the mixed load of
    90% unchanged (half conditional), 9% changed, 1% never-seen links."""
    if not shutil.which("wrk"):
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    folder = Path(env["BENCH_DIR"])
    # A few clinicians whose schedules change during the run; the rest are stable.
    churn = seeded.clinicians[-max(1, len(seeded.clinicians) // 12) :]
    stable = seeded.clinicians[1 : -len(churn)] or seeded.clinicians[:1]
    etags = {}
    for clinician in [*stable, *churn, seeded.clinicians[0]]:
        path = seeded.personal_paths[clinician.pk]
        etags[path] = client.get(path, headers=GZIP)["ETag"]
    s1_path = seeded.personal_paths[seeded.clinicians[0].pk]

    files = {
        "b0": [("/bench/b0/s1.ics", "")],
        "unchanged_200": [(s1_path, "")],
        "unchanged_304": [(s1_path, etags[s1_path])],
    }
    mixed = []
    for index in range(900):
        path = seeded.personal_paths[stable[index % len(stable)].pk]
        mixed.append((path, etags[path] if index % 2 else ""))
    for index in range(90):
        mixed.append((seeded.personal_paths[churn[index % len(churn)].pk], '"old"'))
    for index in range(10):
        mixed.append((f"/calendar/{'neverSeen' + str(index):A<55}.ics", ""))
    files["mixed"] = mixed
    for name, lines in files.items():
        write_urls(folder / f"urls-{name}.txt", lines)

    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 - our own gunicorn and arguments
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "bench.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    figures: dict = {"seconds": seconds, "workers": 2, "connections": 16}
    try:
        _wait(port)
        for name in ("b0", "unchanged_200", "unchanged_304"):
            _wrk(port, folder / f"urls-{name}.txt", 1, 4)  # warm both workers
            figures[name] = _wrk(port, folder / f"urls-{name}.txt", seconds, 16)
        _wrk(port, folder / "urls-mixed.txt", 1, 4)
        churn_ids = [
            pk
            for clinician in churn
            for pk in _future_ids(clinician_id=clinician.pk)[:5]
        ]
        stop = threading.Event()
        writes = {"n": 0}

        def writer():
            touch = toucher(churn_ids)
            try:
                while not stop.is_set():
                    touch()
                    writes["n"] += 1
                    stop.wait(0.1)
            finally:
                connection.close()

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            figures["mixed"] = _wrk(port, folder / "urls-mixed.txt", seconds, 16)
        finally:
            stop.set()
            thread.join()
        figures["mixed"]["appointment_changes"] = writes["n"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    b0 = figures["b0"]["rps"]
    for name in ("unchanged_200", "unchanged_304", "mixed"):
        figures[name]["ratio_vs_b0"] = round(figures[name]["rps"] / b0, 2)
    return figures


def environment_for_server(database_url: str, cache_url: str, folder: str) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_DATABASE_URL": database_url,
        "BENCH_CACHE_URL": cache_url,
        "BENCH_DIR": folder,
    }
