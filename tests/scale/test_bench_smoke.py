"""The bench's code paths at tiny size, so ``make bench`` cannot rot between runs:
seeding, S1–S4 through the real request path, the wrk report parser and the
README writer. (The figures themselves come only from ``make bench``.)"""

import pytest
from django.test import Client

from bench import run, scenarios
from bench.busy import s7
from bench.seed import TINY, seed

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:8001
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    24.10ms    5.01ms  61.00ms   80.00%
  Latency Distribution
     50%   23.13ms
     75%   26.00ms
  3121 requests in 5.01s, 1.10MB read
Requests/sec:    622.39
Transfer/sec:    224.11KB
STATUSES {"304": 3121}
"""


@pytest.fixture
def bench_urls(settings):
    settings.ROOT_URLCONF = "bench.urls"


@pytest.mark.django_db
def test_bench_scenarios_run_at_tiny_size(bench_urls):
    seeded = seed(TINY)
    client = Client()
    results = {
        name: getattr(scenarios, name)(client, seeded, TINY)
        for name in ("s1", "s2", "s3", "s4")
    }
    results["s5"] = {"skipped": "smoke test"}
    results["s7"] = s7(seeded, TINY)
    for name in ("s1", "s2"):
        figures = results[name]
        assert figures["events"] > 0
        assert figures["events"] == figures["naive_events"]
        # The link and its calendar's version; a rebuild adds the events and what
        # was served.
        assert figures["unchanged_200_queries"] == 2
        assert figures["unchanged_304_queries"] == 2
        assert figures["rebuild_queries"] == 4
        assert figures["gzip_bytes"] < figures["raw_bytes"]
    assert results["s3"]["s1_etag_queries"] == results["s3"]["s1_ims_queries"] == 2
    assert results["s4"]["small_queries"] == results["s4"]["large_queries"]
    pages = [key for key in results["s4"] if key.endswith("_queries_at_2")]
    assert len(pages) == len(scenarios.S4_PAGES)
    for key in pages:
        assert results["s4"][key] == results["s4"][key.removesuffix("_at_2")], key

    busy = results["s7"]
    assert busy["events"] == TINY.busy_events
    assert 0 < busy["intervals_kept"] <= busy["occurrences_in_window"]
    assert busy["read_peak_bytes"] > 0

    text = run.report(results, {"when": "now", "database": "test"})
    assert text.startswith(run.START) and text.endswith(run.END)
    assert "not measured" in text  # S5 was skipped: no throughput verdict


def test_wrk_report_is_read():
    figures = scenarios.parse_wrk(WRK_OUTPUT)
    assert figures == {"rps": 622.39, "p50_ms": 23.13, "statuses": {"304": 3121}}


def test_url_file_for_the_lua_script(tmp_path):
    target = tmp_path / "urls.txt"
    scenarios.write_urls(target, [("/calendar/a.ics", '"etag"'), ("/b.ics", "")])
    assert target.read_text() == '/calendar/a.ics\t"etag"\n/b.ics\t\n'


def test_s6_poller_counts_a_change_once_the_server_serves_it(radicale):
    """S6's measurement: a sighting in Radicale's storage, confirmed by a GET."""
    import time

    import requests

    from bench.push import Poller

    auth = (radicale.username, radicale.password)
    calendar = f"{radicale.url.rstrip('/')}/{radicale.username}/bench-poller/"
    assert requests.request("MKCALENDAR", calendar, auth=auth, timeout=10).ok
    href = calendar + "change.ics"

    def put(sequence: int) -> None:
        body = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tend//bench//EN\r\n"
            "BEGIN:VEVENT\r\nUID:change\r\nDTSTAMP:20261201T100000Z\r\n"
            f"DTSTART:20261201T100000Z\r\nSEQUENCE:{sequence}\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        answer = requests.put(
            href,
            data=body,
            auth=auth,
            timeout=10,
            headers={"Content-Type": "text/calendar"},
        )
        assert answer.ok

    poller = Poller({calendar: auth}, radicale.folder / "collections")
    poller.start()
    try:
        poller.expect((time.monotonic(), time.time()), calendar, href, 2)
        put(1)
        time.sleep(0.5)
        # An older SEQUENCE is not the change.
        assert poller.left() == 1 and poller.seconds == []
        put(2)
        deadline = time.monotonic() + 10
        while poller.left() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert poller.left() == 0
        assert len(poller.seconds) == 1 and poller.unconfirmed == 0
        assert len(poller.written) == 1
    finally:
        poller.running = False
        poller.join(timeout=15)
