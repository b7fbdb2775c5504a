"""``make bench``: seed a fresh bench database, run S1–S7, print the figures and
write them into bench/README.md.

Usage: bench/run.py [--tiny] [--seconds N] [--push-seconds N] [--no-wrk]
                    [--push-concurrency N]
                    [--no-push] [--only s6|s7] [--no-readme]

The database is the bench's own: BENCH_DATABASE_URL if set, else a fresh
``tend_bench`` on the local PostgreSQL when it answers, else a fresh SQLite file
under var/bench/. Never the development database."""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FOLDER = ROOT / "var" / "bench"
README = ROOT / "bench" / "README.md"
START = "<!-- figures: written by bench/run.py -->"
END = "<!-- /figures -->"
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432"
BENCH_REDIS = "redis://127.0.0.1:6379/11"
PUSH_TARGET_P95 = 5.0  # seconds (S6)


def choose_database() -> str:
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    try:
        import psycopg

        with psycopg.connect(
            LOCAL_POSTGRES + "/postgres", connect_timeout=3, autocommit=True
        ) as admin:
            admin.execute("DROP DATABASE IF EXISTS tend_bench WITH (FORCE)")
            admin.execute("CREATE DATABASE tend_bench")
        return LOCAL_POSTGRES + "/tend_bench"
    except Exception as error:  # noqa: BLE001 - fall back to SQLite
        print(f"PostgreSQL not available ({error}); using SQLite")
    database = FOLDER / "bench.sqlite3"
    database.unlink(missing_ok=True)
    return f"sqlite:///{database}"


def choose_server_cache() -> str:
    try:
        import redis

        client = redis.Redis.from_url(BENCH_REDIS, socket_connect_timeout=2)
        client.ping()
        client.flushdb()
        return BENCH_REDIS
    except Exception:  # noqa: BLE001 - fall back to per-process memory
        return "locmemcache://bench"


TARGETS = [
    (
        "Queries per feed request ≤ 4 and constant in feed size",
        lambda r: (
            all(
                r[s][k] <= 4
                for s in ("s1", "s2")
                for k in (
                    "unchanged_200_queries",
                    "unchanged_304_queries",
                    "rebuild_queries",
                )
            )
            and all(
                r["s1"][k] == r["s2"][k]
                for k in (
                    "unchanged_200_queries",
                    "unchanged_304_queries",
                    "rebuild_queries",
                )
            )
        ),
    ),
    (
        "Unchanged polls (200 and 304) ≥ 0.5× B0 throughput (S5, wrk)",
        lambda r: (
            r["s5"]["unchanged_200"]["ratio_vs_b0"] >= 0.5
            and r["s5"]["unchanged_304"]["ratio_vs_b0"] >= 0.5
        ),
    ),
    (
        "Rebuild after one change ≥ 10× faster than N (S1)",
        lambda r: r["s1"]["ratio_naive_vs_rebuild"] >= 10,
    ),
    (
        "gzip ≥ 8× smaller (S1 and S2)",
        lambda r: r["s1"]["gzip_ratio"] >= 8 and r["s2"]["gzip_ratio"] >= 8,
    ),
    (
        "Peak memory of a rebuild ≤ 4× the feed's size (S1 and S2)",
        lambda r: (
            r["s1"]["rebuild_peak_ratio"] <= 4 and r["s2"]["rebuild_peak_ratio"] <= 4
        ),
    ),
    (
        "Direct push: change to readable on the CalDAV server, p95 < 5 s with one "
        "worker, at 1 and at 50 changes a second (S6)",
        lambda r: all(
            phase["p95_s"] is not None
            and phase["p95_s"] < PUSH_TARGET_P95
            and phase["not_readable"] == 0
            for phase in (
                r["s6"]["at_1_per_s"],
                r["s6"][f"at_{r['s6']['clinicians']}_per_s"],
            )
        ),
    ),
    (
        "Week view queries constant in clinicians and appointments (S4)",
        lambda r: r["s4"]["small_queries"] == r["s4"]["large_queries"],
    ),
    (
        "SCHEDULING pages at 300 clinicians: queries as at 2 clinicians (S4)",
        lambda r: all(
            r["s4"][key.removesuffix("_at_2")] == value
            for key, value in r["s4"].items()
            if key.endswith("_queries_at_2")
        ),
    ),
    (
        "Reading a personal calendar of 2,000 events, 100 series, < 1 s (S7)",
        lambda r: r["s7"]["read_ms"] < 1000,
    ),
    (
        "SCHEDULING pages at 300 clinicians ≤ 150 ms and ≤ 200 KB of HTML (S4)",
        lambda r: all(
            r["s4"][f"{name}_ms"] <= 150 and r["s4"][f"{name}_bytes"] <= 200 * 1024
            for name in (
                key.removesuffix("_queries_at_2")
                for key in r["s4"]
                if key.endswith("_queries_at_2")
            )
        ),
    ),
]


def table(figures: dict) -> str:
    rows = ["| figure | value |", "|---|---|"]
    for key, value in figures.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        rows.append(f"| {key} | {value} |")
    return "\n".join(rows)


def report(results: dict, meta: dict) -> str:
    parts = [START, "", "Measured by `make bench` on " + meta["when"] + ".", ""]
    parts.append(
        ", ".join(f"{key}: {value}" for key, value in meta.items() if key != "when")
    )
    parts.append("")
    parts.append("### Targets")
    parts.append("")
    for label, check in TARGETS:
        try:
            met = check(results)
        except (KeyError, TypeError):
            met = None
        mark = {True: "met", False: "MISSED", None: "not measured"}[met]
        parts.append(f"- {label}: **{mark}**")
    titles = {
        "s1": "S1 — one clinician, one year",
        "s2": "S2 — practice-wide, 50 clinicians",
        "s3": "S3 — conditional requests",
        "s4": "S4 — SCHEDULING, all clinicians (2, 50 and 300)",
        "s7": "S7 — a personal calendar read as busy time",
    }
    for key, title in titles.items():
        if key in results:
            parts += ["", f"### {title}", "", table(results[key])]
    parts += ["", "### S5 — gunicorn + wrk, gzip accepted", ""]
    s5 = results["s5"]
    if "skipped" in s5:
        parts.append(f"Skipped: {s5['skipped']}")
    else:
        parts.append(
            f"{s5['workers']} sync workers, {s5['connections']} connections, "
            f"{s5['seconds']} s per run."
        )
        parts += [
            "",
            "| run | requests/s | p50 ms | × B0 | statuses |",
            "|---|---|---|---|---|",
        ]
        for name in ("b0", "unchanged_200", "unchanged_304", "mixed"):
            run = s5[name]
            parts.append(
                f"| {name} | {run['rps']} | {run.get('p50_ms', '')} | "
                f"{run.get('ratio_vs_b0', 1.0)} | {run['statuses']} |"
            )
        parts.append("")
        parts.append(
            f"Appointment changes during the mixed run: "
            f"{s5['mixed'].get('appointment_changes')}."
        )
    parts += ["", "### S6 — direct push to a CalDAV server (Radicale), one worker", ""]
    s6 = results.get("s6", {"skipped": "not run"})
    if "skipped" in s6:
        parts.append(f"Skipped: {s6['skipped']}")
    else:
        parts.append(
            f"{s6['clinicians']} clinicians, each with a connected account "
            f"({s6['events_pushed']} events; first full sync of all of them "
            f"{s6['first_full_sync_s']} s); {s6['worker']}."
        )
        parts += [
            "",
            "| rate | changes | p50 s | p95 s (target < 5) | max s | not readable "
            "| push runs | written p95 s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, phase in s6.items():
            if key.startswith("at_"):
                parts.append(
                    f"| {phase['changes_per_s']}/s | {phase['changes']} | "
                    f"{phase['p50_s']} | {phase['p95_s']} | {phase['max_s']} | "
                    f"{phase['not_readable']} | {phase['push_runs']} | "
                    f"{phase['written_p95_s']} |"
                )
    parts += ["", END]
    return "\n".join(parts)


def write_readme(text: str) -> None:
    current = (
        README.read_text() if README.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    )
    before, _, rest = current.partition(START)
    _, _, after = rest.partition(END)
    README.write_text(before + text + after)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes")
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run")
    parser.add_argument("--no-wrk", action="store_true")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument(
        "--push-seconds", type=int, default=30, help="per S6 rate (tiny: 3)"
    )
    parser.add_argument("--no-push", action="store_true", help="skip S6")
    parser.add_argument(
        "--only", choices=["s6", "s7"], help="run only this scenario (no README)"
    )
    parser.add_argument(
        "--worker-args",
        default="",
        help="extra db_worker arguments for S6, e.g. '--interval 0.2'",
    )
    parser.add_argument(
        "--push-concurrency",
        type=int,
        help="S6: accounts the worker pushes at once (PUSH_CONCURRENCY)",
    )
    options = parser.parse_args(argv)
    if options.push_concurrency:
        os.environ["PUSH_CONCURRENCY"] = str(options.push_concurrency)

    FOLDER.mkdir(parents=True, exist_ok=True)
    database_url = choose_database()
    server_cache = choose_server_cache()
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["BENCH_DATABASE_URL"] = database_url
    os.environ["BENCH_DIR"] = str(FOLDER)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from bench import push, scenarios
    from bench.seed import FULL, TINY, seed

    size = TINY if options.tiny else FULL
    started = time.monotonic()
    call_command("migrate", verbosity=0, interactive=False)
    # --only s6 or s7 needs nothing of S1–S5's data at full size.
    seeded = seed(TINY if options.only else size)
    with connection.cursor() as cursor:
        # Statistics, as autovacuum would have them in production.
        cursor.execute("ANALYZE")
    took = time.monotonic() - started
    print(f"Seeded {seeded.appointments} appointments in {took:.1f} s")
    client = Client()
    results = {}
    env = scenarios.environment_for_server(database_url, server_cache, str(FOLDER))
    if options.only:
        options.no_readme = True
    else:
        for name in ("s1", "s2", "s3", "s4"):
            results[name] = getattr(scenarios, name)(client, seeded, size)
            print(name.upper(), json.dumps(results[name], indent=1))
        if options.no_wrk:
            results["s5"] = {"skipped": "--no-wrk"}
        else:
            results["s5"] = scenarios.s5(client, seeded, size, env, options.seconds)
        print("S5", json.dumps(results["s5"], indent=1))
    if options.no_push or options.only == "s7":
        results["s6"] = {"skipped": "--no-push" if options.no_push else "--only s7"}
    else:
        results["s6"] = push.s6(
            size,
            env,
            3 if options.tiny else options.push_seconds,
            options.worker_args.split(),
        )
    print("S6", json.dumps(results["s6"], indent=1))
    if options.only in (None, "s7"):
        from bench.busy import s7

        results["s7"] = s7(seeded, size)
        print("S7", json.dumps(results["s7"], indent=1))
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "database": connection.vendor,
        "server cache": server_cache.split(":")[0],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "appointments": seeded.appointments,
        "total seconds": round(time.monotonic() - started, 1),
    }
    text = "" if options.only else report(results, meta)
    print(text)
    if not options.no_readme:
        write_readme(text)
    connection.close()
    if database_url.startswith("postgres") and not os.environ.get("BENCH_KEEP"):
        import psycopg

        if database_url == LOCAL_POSTGRES + "/tend_bench":
            with psycopg.connect(
                LOCAL_POSTGRES + "/postgres", autocommit=True
            ) as admin:
                admin.execute("DROP DATABASE IF EXISTS tend_bench WITH (FORCE)")
    return results


if __name__ == "__main__":
    main()
