"""Read an iCalendar stream with real client parsers and compare what each one saw.

Drivers, one per parser, each `parse_with_<name>(ics) -> ParsedCalendar`:

- ical.js, the parser inside Thunderbird (npm, run with node),
- libical, the library inside Evolution/GNOME (Debian's GObject bindings, run with the
  system /usr/bin/python3, the only interpreter that can import them),
- node-ical, the parser inside MagicMirror and Node-RED dashboards (npm, run with
  node),
- ical, Home Assistant's parser (PyPI),
- icalendar, the library the feed is written with,
- recurring-ical-events after x-wr-timezone (PyPI): the calendar read the way Google
  Calendar reads a subscription, X-WR-TIMEZONE applied to every UTC time first, then
  every occurrence computed,
- vdirsyncer + khal: a subscriber that syncs the feed over HTTP into a local folder and
  lists it, the way a phone subscribes.

Every driver reports each VEVENT as `ParsedEvent(uid, summary, status, start_utc,
end_utc)` with instants normalised identically: an aware UTC datetime for absolute
times, a naive datetime for a floating time (a parser that lost the zone), a date for
all-day values. Errors and warnings the parser reported are kept, never swallowed.

Checks, each with a `*_problems(ics)` twin that returns the messages:

- `assert_all_parsers_agree(ics, expected=None)`: no parser reports an error or
  warning, and all see the same events (and `expected`, built with `expected_event`).
- `assert_byte_level_ok(ics)`: RFC 5545 content lines (CRLF, 75 octets, folds between
  characters, no stray control characters, UTF-8).
- `assert_feed_structure_ok(ics)`: none of the valid constructs that a real client
  was measured to misread.

For a subscription over time use `Subscriber(url, folder)` (fixture `subscriber`) with
a live_server URL, or `IcsServer` (fixture `ics_server`) to serve bytes without Django.

A missing tool is a failure with the command that installs it, never a skip.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NODE_MODULES = REPO / "node_modules"
SYSTEM_PYTHON = "/usr/bin/python3"
INSTALL_HINT = "run ./scripts/test-deps and `.venv/bin/pip install -e '.[test]'`"
TOOL_TIMEOUT = 120
NPM_PACKAGES = ("ical.js", "node-ical")
PYTHON_PACKAGES = ("ical", "icalendar", "recurring_ical_events", "x_wr_timezone")

Instant = datetime | date


class ToolMissing(RuntimeError):
    """A parser the conformance tests drive is not installed."""


@dataclass(frozen=True, order=True)
class ParsedEvent:
    uid: str
    summary: str | None
    status: str
    start_utc: Instant | None
    end_utc: Instant | None


@dataclass
class ParsedCalendar:
    parser: str
    events: list[ParsedEvent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # vdirsyncer's http storage replaces every UID with a hash of the item's content, so
    # that subscriber is compared on what a user sees: summary, status, start and end.
    keeps_uids: bool = True

    @property
    def problems(self) -> list[str]:
        return [f"error: {e}" for e in self.errors] + [
            f"warning: {w}" for w in self.warnings
        ]

    def sorted_events(self, *, with_uids: bool = True) -> list[ParsedEvent]:
        events = self.events
        if not with_uids:
            events = [replace(event, uid="") for event in events]
        return sorted(events, key=_sort_key)


def _sort_key(event: ParsedEvent) -> tuple[str, str, str, str, str]:
    return (
        describe(event.start_utc),
        describe(event.end_utc),
        event.uid,
        event.summary or "",
        event.status,
    )


# -- normalisation ------------------------------------------------------------------


def instant(value: object) -> Instant | None:
    """Normalise a parser's value: aware -> UTC; naive (floating) and dates kept."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return value.replace(tzinfo=None)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return value
    raise TypeError(f"not a date or datetime: {value!r}")


def instant_from_text(text: str | None) -> Instant | None:
    """Read the drivers' wire form: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS[Z]."""
    if text is None:
        return None
    if len(text) == 10:
        return date.fromisoformat(text)
    if text.endswith("Z"):
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    return datetime.fromisoformat(text)


def describe(value: Instant | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat() + " (floating)"
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def expected_event(
    *, uid: str, summary: str, start: Instant, end: Instant, status: str = ""
) -> ParsedEvent:
    """What every parser should report for one event; aware datetimes in any zone."""
    return ParsedEvent(uid, summary, status.upper(), instant(start), instant(end))


def _from_wire(parser: str, payload: dict) -> ParsedCalendar:
    return ParsedCalendar(
        parser=parser,
        events=[
            ParsedEvent(
                uid=event["uid"],
                summary=event["summary"],
                status=(event["status"] or "").upper(),
                start_utc=instant_from_text(event["start"]),
                end_utc=instant_from_text(event["end"]),
            )
            for event in payload["events"]
        ],
        errors=list(payload["errors"]),
        warnings=_unique(payload["warnings"]),
    )


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _run(cmd: list[str], *, stdin: bytes | None = None, env=None, cwd=None):
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        cmd,
        input=stdin,
        capture_output=True,
        timeout=TOOL_TIMEOUT,
        env=env,
        cwd=cwd,
        check=False,
    )


def _run_json_driver(
    parser: str, cmd: list[str], ics: bytes, **kwargs
) -> ParsedCalendar:
    done = _run(cmd, stdin=ics, **kwargs)
    stderr = done.stderr.decode("utf-8", "replace").strip()
    try:
        payload = json.loads(done.stdout)
    except ValueError:
        return ParsedCalendar(
            parser,
            errors=[
                f"driver exited {done.returncode} without a result: {stderr[-2000:]}"
            ],
        )
    result = _from_wire(parser, payload)
    if done.returncode != 0:
        result.errors.append(f"driver exited {done.returncode}")
    if stderr:
        result.warnings.append(f"stderr: {stderr[-2000:]}")
    return result


# -- tool discovery -----------------------------------------------------------------


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise ToolMissing(f"node is not installed; {INSTALL_HINT}")
    for package in NPM_PACKAGES:
        if not (NODE_MODULES / package / "package.json").exists():
            raise ToolMissing(
                f"npm package {package} missing from {NODE_MODULES}; {INSTALL_HINT}"
            )
    return node


def system_python_with_libical() -> str:
    probe = (
        "import gi; gi.require_version('ICalGLib', '3.0'); "
        "from gi.repository import ICalGLib"
    )
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        raise ToolMissing(f"{SYSTEM_PYTHON} not found; {INSTALL_HINT}")
    done = _run([SYSTEM_PYTHON, "-c", probe])
    if done.returncode != 0:
        raise ToolMissing(
            "libical's Python bindings are missing (Debian: libical3 gir1.2-ical-3.0 "
            f"python3-gi); {INSTALL_HINT}: {done.stderr.decode()[-500:]}"
        )
    return SYSTEM_PYTHON


def venv_tool(name: str) -> str:
    """A console script installed beside the interpreter running the tests."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} is not installed; {INSTALL_HINT}")
    return found


def check_tools() -> None:
    """Raise ToolMissing naming every parser that cannot run here."""
    missing = []
    for check in (
        node_binary,
        system_python_with_libical,
        lambda: venv_tool("vdirsyncer"),
        lambda: venv_tool("khal"),
    ):
        try:
            check()
        except ToolMissing as error:
            missing.append(str(error))
    for module in PYTHON_PACKAGES:
        try:
            __import__(module)
        except ImportError:
            missing.append(f"Python package {module} is not installed; {INSTALL_HINT}")
    if missing:
        raise ToolMissing("\n".join(missing))


# -- drivers ------------------------------------------------------------------------


def parse_with_icaljs(ics: bytes) -> ParsedCalendar:
    """Thunderbird's parser: every VTIMEZONE registered, instants converted to UTC."""
    return _run_json_driver(
        "ical.js", [node_binary(), str(HERE / "icaljs_parse.mjs")], ics, cwd=REPO
    )


def parse_with_node_ical(ics: bytes) -> ParsedCalendar:
    """node-ical: instants as JavaScript Dates; all-day values read in UTC."""
    env = {**os.environ, "TZ": "UTC"}
    return _run_json_driver(
        "node-ical",
        [node_binary(), str(HERE / "nodeical_parse.mjs")],
        ics,
        cwd=REPO,
        env=env,
    )


def parse_with_libical(ics: bytes) -> ParsedCalendar:
    """Evolution's library: X-LIC-ERROR lines are errors, undefined TZIDs warnings."""
    return _run_json_driver(
        "libical", [system_python_with_libical(), str(HERE / "libical_parse.py")], ics
    )


@contextlib.contextmanager
def _captured(*logger_names: str) -> Iterator[list[str]]:
    """Collect Python warnings and WARNING+ log records the libraries emit."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(f"log {record.name}: {record.getMessage()}")

    handler = Collect(level=logging.WARNING)
    loggers = [logging.getLogger(name) for name in logger_names]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        messages.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def _decode(ics: bytes, result: ParsedCalendar) -> str | None:
    try:
        return ics.decode("utf-8")
    except UnicodeDecodeError as error:
        result.errors.append(f"not UTF-8: {error}")
        return None


def parse_with_ical(ics: bytes) -> ParsedCalendar:
    """Home Assistant's parser: strict pydantic models; any exception is an error."""
    from ical.calendar_stream import IcsCalendarStream

    result = ParsedCalendar("ical")
    text = _decode(ics, result)
    if text is None:
        return result
    with _captured("ical") as messages:
        try:
            calendar = IcsCalendarStream.calendar_from_ics(text)
        except Exception as error:  # noqa: BLE001 - any failure is the finding
            result.errors.append(f"{type(error).__name__}: {error}")
            calendar = None
        if calendar is not None:
            for event in calendar.events:
                result.events.append(
                    ParsedEvent(
                        uid=event.uid or "",
                        summary=event.summary,
                        status="" if event.status is None else str(event.status.value),
                        start_utc=instant(event.dtstart),
                        end_utc=instant(event.end),
                    )
                )
    result.warnings.extend(_unique(messages))
    return result


def parse_with_icalendar(ics: bytes) -> ParsedCalendar:
    """The library the feed is written with, read back: component errors are errors."""
    from icalendar import Calendar

    result = ParsedCalendar("icalendar")
    with _captured("icalendar") as messages:
        try:
            calendars = Calendar.from_ical(ics, multiple=True)
        except Exception as error:  # noqa: BLE001 - any failure is the finding
            result.errors.append(f"{type(error).__name__}: {error}")
            calendars = []
        if len(calendars) != 1 and not result.errors:
            result.errors.append(
                f"{len(calendars)} VCALENDARs in the stream, expected 1"
            )
        for calendar in calendars:
            for component in calendar.walk():
                for name, message in getattr(component, "errors", []):
                    result.errors.append(f"{component.name} {name}: {message}")
            for event in calendar.walk("VEVENT"):
                status = event.get("STATUS")
                try:
                    start, end = event.start, event.end
                except Exception as error:  # noqa: BLE001
                    result.errors.append(f"{event.get('UID')}: {error}")
                    start = end = None
                result.events.append(
                    ParsedEvent(
                        uid=str(event.get("UID", "")),
                        summary=None
                        if "SUMMARY" not in event
                        else str(event["SUMMARY"]),
                        status="" if status is None else str(status).upper(),
                        start_utc=instant(start),
                        end_utc=instant(end),
                    )
                )
    result.warnings.extend(_unique(messages))
    return result


def parse_with_recurring_ical_events(ics: bytes) -> ParsedCalendar:
    """Google Calendar's reading: x-wr-timezone moves every UTC (and floating) time
    into the calendar's X-WR-TIMEZONE, then recurring-ical-events lists every
    occurrence. Any exception is an error."""
    import recurring_ical_events
    import x_wr_timezone
    from icalendar import Calendar

    result = ParsedCalendar("recurring-ical-events")
    with _captured("recurring_ical_events", "x_wr_timezone", "icalendar") as messages:
        try:
            calendar = Calendar.from_ical(ics)
            # What icalendar could not read, the events lack: reported as it is.
            for component in calendar.walk():
                for name, message in getattr(component, "errors", []):
                    result.errors.append(f"{component.name} {name}: {message}")
            calendar = x_wr_timezone.to_standard(calendar)
            occurrences = list(recurring_ical_events.of(calendar).all())
        except Exception as error:  # noqa: BLE001 - any failure is the finding
            result.errors.append(f"{type(error).__name__}: {error}")
            occurrences = []
        for event in occurrences:
            if event.name != "VEVENT":
                continue
            status = event.get("STATUS")
            result.events.append(
                ParsedEvent(
                    uid=str(event.get("UID", "")),
                    summary=None if "SUMMARY" not in event else str(event["SUMMARY"]),
                    status="" if status is None else str(status).upper(),
                    start_utc=instant(event.decoded("DTSTART", None)),
                    end_utc=instant(event.decoded("DTEND", None)),
                )
            )
    result.warnings.extend(_unique(messages))
    return result


# -- subscriber round trip ----------------------------------------------------------


class _BytesHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = self.server.body  # type: ignore[attr-defined]
        self.server.requests += 1  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


class IcsServer:
    """Serve bytes at http://127.0.0.1:<port>/feed.ics; set `.body` to change them."""

    def __init__(self, body: bytes = b""):
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BytesHandler)
        self._httpd.body = body  # type: ignore[attr-defined]
        self._httpd.requests = 0  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/feed.ics"

    @property
    def body(self) -> bytes:
        return self._httpd.body  # type: ignore[attr-defined]

    @body.setter
    def body(self, value: bytes) -> None:
        self._httpd.body = value  # type: ignore[attr-defined]

    @property
    def requests(self) -> int:
        return self._httpd.requests  # type: ignore[attr-defined]

    def __enter__(self) -> IcsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


@contextlib.contextmanager
def serve_bytes(ics: bytes) -> Iterator[str]:
    """A loopback URL serving `ics`, for tools that only read over HTTP."""
    with IcsServer(ics) as server:
        yield server.url


FIELD = "\x1f"
RECORD = "\x1e"
KHAL_FORMAT = (
    FIELD.join(
        ["{uid}", "{title}", "{status}", "{all-day}", "{start-long}", "{end-long}"]
    )
    + RECORD
)
KHAL_DATETIME = "%Y-%m-%dT%H:%M:%S"
KHAL_DATE = "%Y-%m-%d"


class Subscriber:
    """A phone subscribed to one feed URL: vdirsyncer (http -> folder), then khal.

    State persists between `sync()` calls like a real subscription, so updates,
    cancellations and removals are seen as a phone would see them.
    """

    def __init__(self, url: str, workdir: Path):
        self.url = url
        self.workdir = workdir
        self.calendar_dir = workdir / "calendar"
        self.calendar_dir.mkdir(parents=True, exist_ok=True)
        (workdir / "status").mkdir(exist_ok=True)
        self.vdirsyncer_config = workdir / "vdirsyncer.conf"
        self.vdirsyncer_config.write_text(
            "[general]\n"
            f'status_path = "{workdir / "status"}/"\n\n'
            "[pair subscription]\n"
            'a = "feed"\nb = "folder"\ncollections = null\n'
            'conflict_resolution = "a wins"\n\n'
            "[storage feed]\n"
            f'type = "http"\nurl = "{url}"\n\n'
            "[storage folder]\n"
            f'type = "filesystem"\npath = "{self.calendar_dir}/"\nfileext = ".ics"\n'
        )
        self.khal_config = workdir / "khal.conf"
        self.khal_config.write_text(
            "[calendars]\n[[subscription]]\n"
            f"path = {self.calendar_dir}\ntype = calendar\n\n"
            "[locale]\nlocal_timezone = UTC\ndefault_timezone = UTC\n"
            f"timeformat = %H:%M:%S\ndateformat = {KHAL_DATE}\n"
            f"longdateformat = {KHAL_DATE}\n"
            f"datetimeformat = {KHAL_DATETIME}\n"
            f"longdatetimeformat = {KHAL_DATETIME}\n\n"
            f"[sqlite]\npath = {workdir / 'khal.db'}\n"
        )
        self._discovered = False

    def _env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
        }
        env.update(
            HOME=str(self.workdir),
            XDG_CONFIG_HOME=str(self.workdir / "config"),
            XDG_DATA_HOME=str(self.workdir / "data"),
            NO_PROXY="127.0.0.1,localhost",
            LC_ALL="C.UTF-8",
            LANG="C.UTF-8",
            TZ="UTC",
        )
        return env

    def _vdirsyncer(self, *args: str, result: ParsedCalendar) -> None:
        cmd = [venv_tool("vdirsyncer"), "-c", str(self.vdirsyncer_config), *args]
        done = _run(cmd, env=self._env(), stdin=b"")
        output = done.stderr.decode("utf-8", "replace") + done.stdout.decode(
            "utf-8", "replace"
        )
        if done.returncode != 0:
            result.errors.append(
                f"vdirsyncer {args[0]} exited {done.returncode}: {output[-2000:]}"
            )
        for line in output.splitlines():
            lowered = line.lower()
            if (
                lowered.startswith(("warning", "error", "critical"))
                or "traceback" in lowered
            ):
                result.warnings.append(f"vdirsyncer {args[0]}: {line}")

    def sync(self) -> ParsedCalendar:
        """Fetch the feed into the folder; the result carries only problems."""
        result = ParsedCalendar("vdirsyncer")
        if not self._discovered:
            self._vdirsyncer("discover", "subscription", result=result)
            self._discovered = True
        self._vdirsyncer("sync", "subscription", result=result)
        return result

    def list(self, start: date, end: date) -> ParsedCalendar:
        """khal's view of the synced folder between two dates (UTC)."""
        result = ParsedCalendar("vdirsyncer+khal", keeps_uids=False)
        cmd = [
            venv_tool("khal"),
            "-c",
            str(self.khal_config),
            "list",
            "--once",
            "--day-format",
            "",
            "--format",
            KHAL_FORMAT,
            start.isoformat(),
            end.isoformat(),
        ]
        done = _run(cmd, env=self._env())
        stderr = done.stderr.decode("utf-8", "replace").strip()
        if done.returncode != 0:
            result.errors.append(f"khal exited {done.returncode}: {stderr[-2000:]}")
        elif stderr:
            result.warnings.append(f"khal: {stderr[-2000:]}")
        for record in done.stdout.decode("utf-8").split(RECORD):
            record = record.strip("\n")
            if not record.strip():
                continue
            fields = record.split(FIELD)
            if len(fields) != 6:
                result.errors.append(f"khal printed an unreadable line: {record!r}")
                continue
            uid, title, status, all_day, start_text, end_text = fields
            if all_day == "True":
                first = datetime.strptime(start_text, KHAL_DATE).date()
                # khal shows the last day of an all-day event; DTEND is the day after.
                last = datetime.strptime(end_text, KHAL_DATE).date()
                begin, finish = first, last + timedelta(days=1)
            else:
                begin = datetime.strptime(start_text, KHAL_DATETIME).replace(tzinfo=UTC)
                finish = datetime.strptime(end_text, KHAL_DATETIME).replace(tzinfo=UTC)
            result.events.append(ParsedEvent(uid, title, status.strip(), begin, finish))
        return result

    def sync_and_list(self, start: date, end: date) -> ParsedCalendar:
        synced = self.sync()
        listed = self.list(start, end)
        listed.errors[:0] = synced.errors
        listed.warnings[:0] = synced.warnings
        return listed


def subscriber_window(*calendars: ParsedCalendar) -> tuple[date, date]:
    """Dates khal should list so every event the other parsers saw falls inside."""
    days = []
    for calendar in calendars:
        for event in calendar.events:
            for value in (event.start_utc, event.end_utc):
                if isinstance(value, datetime):
                    days.append(value.date())
                elif isinstance(value, date):
                    days.append(value)
    if not days:
        today = datetime.now(UTC).date()
        return today - timedelta(days=400), today + timedelta(days=400)
    return min(days) - timedelta(days=2), max(days) + timedelta(days=2)


def parse_with_vdirsyncer_khal(
    ics: bytes, *, window: tuple[date, date] | None = None
) -> ParsedCalendar:
    """A fresh subscription to `ics` served over loopback HTTP, listed by khal."""
    if window is None:
        window = subscriber_window(parse_with_icalendar(ics))
    with (
        tempfile.TemporaryDirectory(prefix="tend-subscriber-") as workdir,
        serve_bytes(ics) as url,
    ):
        return Subscriber(url, Path(workdir)).sync_and_list(*window)


# -- comparison ---------------------------------------------------------------------

IN_PROCESS: dict[str, Callable[[bytes], ParsedCalendar]] = {
    "icalendar": parse_with_icalendar,
    "ical": parse_with_ical,
    "recurring-ical-events": parse_with_recurring_ical_events,
}


def parse_everywhere(ics: bytes) -> dict[str, ParsedCalendar]:
    """Every parser's reading of `ics`, keyed by parser name."""
    results = {name: parse(ics) for name, parse in IN_PROCESS.items()}
    window = subscriber_window(*results.values())
    # The external tools are separate processes: run them side by side.
    external = {
        "ical.js": lambda: parse_with_icaljs(ics),
        "node-ical": lambda: parse_with_node_ical(ics),
        "libical": lambda: parse_with_libical(ics),
        "vdirsyncer+khal": lambda: parse_with_vdirsyncer_khal(ics, window=window),
    }
    with ThreadPoolExecutor(max_workers=len(external)) as pool:
        futures = {name: pool.submit(run) for name, run in external.items()}
        results.update({name: future.result() for name, future in futures.items()})
    return results


def _render(event: ParsedEvent) -> str:
    return (
        f"uid={event.uid!r} summary={event.summary!r} status={event.status or '-'} "
        f"start={describe(event.start_utc)} end={describe(event.end_utc)}"
    )


def disagreements(
    results: dict[str, ParsedCalendar], expected: list[ParsedEvent] | None = None
) -> list[str]:
    """Human-readable differences between parsers (and against `expected`)."""
    names = list(results)
    if expected is not None:
        reference_name = "expected"
        reference = ParsedCalendar("expected", events=list(expected))
    else:
        reference_name = next(
            (name for name in names if results[name].keeps_uids), names[0]
        )
        reference = results[reference_name]
    found = []
    for name in names:
        if name == reference_name:
            continue
        with_uids = results[name].keeps_uids
        theirs = results[name].sorted_events(with_uids=with_uids)
        ours = reference.sorted_events(with_uids=with_uids)
        if theirs == ours:
            continue
        missing = [event for event in ours if event not in theirs]
        extra = [event for event in theirs if event not in ours]
        lines = [f"{name} differs from {reference_name}:"]
        if not missing and not extra:
            lines.append(f"  {len(theirs)} events against {len(ours)} (duplicates)")
        lines += [f"  {reference_name} only: {_render(event)}" for event in missing]
        lines += [f"  {name} only: {_render(event)}" for event in extra]
        found.append("\n".join(lines))
    return found


def assert_all_parsers_agree(
    ics: bytes, expected: list[ParsedEvent] | None = None
) -> dict[str, ParsedCalendar]:
    """Every parser reads `ics` without error or warning and sees the same events."""
    results = parse_everywhere(ics)
    report = [
        f"{name}: {problem}"
        for name, result in results.items()
        for problem in result.problems
    ]
    report += disagreements(results, expected)
    if report:
        raise AssertionError(
            "real parsers do not read this calendar cleanly and identically:\n"
            + "\n".join(report)
        )
    return results


# -- byte level ---------------------------------------------------------------------

MAX_OCTETS = 75


def byte_level_problems(ics: bytes) -> list[str]:
    """RFC 5545 §3.1 content-line rules a strict client enforces, as messages."""
    problems: list[str] = []
    try:
        ics.decode("utf-8")
    except UnicodeDecodeError as error:
        problems.append(f"not valid UTF-8: {error}")
    if not ics.endswith(b"\r\n"):
        problems.append("stream does not end with CRLF")
    lines = ics.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_OCTETS:
            problems.append(f"line {number} is {len(line)} octets (max {MAX_OCTETS})")
        if b"\r" in line or b"\n" in line:
            problems.append(f"line {number} has a bare CR or LF: {line[:60]!r}")
        for octet in line:
            if (octet < 0x20 and octet != 0x09) or octet == 0x7F:
                problems.append(
                    f"line {number} has control character 0x{octet:02X}: {line[:60]!r}"
                )
                break
        if number > 1 and line[:1] in (b" ", b"\t") and _starts_mid_character(line[1:]):
            problems.append(f"fold before line {number} splits a UTF-8 character")
        if _ends_mid_character(line):
            problems.append(f"line {number} ends inside a UTF-8 character")
    return problems


def _starts_mid_character(rest: bytes) -> bool:
    return bool(rest) and 0x80 <= rest[0] <= 0xBF


def _ends_mid_character(line: bytes) -> bool:
    """True if the last character of the line is cut short."""
    tail = line[-4:]
    for back in range(1, len(tail) + 1):
        octet = tail[-back]
        if octet < 0x80:
            return False
        if octet >= 0xC0:
            needed = 2 if octet < 0xE0 else 3 if octet < 0xF0 else 4
            return back < needed
    return False


def assert_byte_level_ok(ics: bytes) -> None:
    """CRLF only, lines <= 75 octets, no fold inside a character, no stray controls."""
    problems = byte_level_problems(ics)
    if problems:
        raise AssertionError("feed bytes break RFC 5545 §3.1:\n" + "\n".join(problems))


# -- structure: what real clients were measured to misread --------------------------


def structure_problems(ics: bytes) -> list[str]:
    """Constructs that some real client reads wrongly even though they are valid
    RFC 5545, each found with the parsers above (see test_harness.py)."""
    from zoneinfo import available_timezones

    from icalendar import Calendar

    try:
        calendars = Calendar.from_ical(ics, multiple=True)
    except Exception as error:  # noqa: BLE001 - unreadable is the finding
        return [f"unreadable: {error}"]
    if len(calendars) != 1:
        return [f"{len(calendars)} VCALENDARs, expected exactly 1"]
    (calendar,) = calendars
    problems = []
    for name in ("VERSION", "PRODID"):
        if name not in calendar:
            problems.append(f"VCALENDAR has no {name}")
    if "UID" in calendar:
        problems.append(
            "VCALENDAR has a UID: vdirsyncer then keeps only one event of the feed"
        )
    defined = {str(zone["TZID"]) for zone in calendar.walk("VTIMEZONE")}
    iana = available_timezones()
    for zone in calendar.walk("VTIMEZONE"):
        tzid = str(zone["TZID"])
        if tzid not in iana:
            problems.append(f"VTIMEZONE {tzid!r} is not an IANA zone name")
        for observance in zone.subcomponents:
            rdates = observance.get("RDATE")
            if rdates is None:
                continue
            rdates = rdates if isinstance(rdates, list) else [rdates]
            values = [value.dt for rdate in rdates for value in rdate.dts]
            where = f"VTIMEZONE {tzid} {observance.name}"
            if any(len(rdate.dts) > 1 for rdate in rdates):
                problems.append(
                    f"{where}: an RDATE with several values (ical.js reads the first)"
                )
            if observance.DTSTART not in values:
                problems.append(
                    f"{where}: DTSTART is not repeated as an RDATE (ical.js then "
                    "skips that change)"
                )
    seen_uids: set[str] = set()
    for event in calendar.walk("VEVENT"):
        uid = str(event.get("UID", ""))
        label = f"VEVENT {uid or '(no UID)'}"
        for name in ("UID", "DTSTAMP", "DTSTART"):
            if name not in event:
                problems.append(f"{label} has no {name}")
        if "DTEND" not in event and "DURATION" not in event:
            problems.append(f"{label} has neither DTEND nor DURATION")
        if uid and "RECURRENCE-ID" not in event:
            if uid in seen_uids:
                problems.append(f"{label}: UID used twice")
            seen_uids.add(uid)
        for name in ("DTSTART", "DTEND"):
            prop = event.get(name)
            if prop is None:
                continue
            tzid = prop.params.get("TZID")
            value = prop.dt
            if tzid is not None:
                if tzid not in defined:
                    problems.append(f"{label} {name}: TZID {tzid!r} has no VTIMEZONE")
                if tzid not in iana:
                    problems.append(f"{label} {name}: TZID {tzid!r} is not IANA")
            elif isinstance(value, datetime) and value.tzinfo is None:
                problems.append(f"{label} {name} is a floating time")
        for name in ("SUMMARY", "LOCATION", "DESCRIPTION"):
            if name in event and str(event[name]) != str(event[name]).strip():
                problems.append(
                    f"{label} {name} has surrounding whitespace (libical trims it)"
                )
    return problems


def assert_feed_structure_ok(ics: bytes) -> None:
    """None of the constructs real clients were measured to misread."""
    problems = structure_problems(ics)
    if problems:
        raise AssertionError(
            "feed uses constructs real clients misread:\n" + "\n".join(problems)
        )


def assert_feed_conforms(ics: bytes) -> dict[str, ParsedCalendar]:
    """The whole check of one feed: bytes, structure, and every parser reading it
    cleanly and identically; each parser's reading."""
    assert_byte_level_ok(ics)
    assert_feed_structure_ok(ics)
    return assert_all_parsers_agree(ics)


def assert_cut_feed_conforms(client, settings, path: str) -> None:
    """The feed at ``path``, cut by a size limit of a third of its full size, stays
    within it and still parses everywhere, keeping some but not all events."""
    full = client.get(path).content
    settings.CALENDAR_FEED_MAX_BYTES = len(full) // 3

    ics = client.get(path).content

    assert len(ics) <= len(full) // 3
    results = assert_feed_conforms(ics)
    kept = len(results["icalendar"].events)
    assert 0 < kept < full.count(b"BEGIN:VEVENT")


def subscribed_events(
    phone: Subscriber, ics: bytes, window: tuple[date, date]
) -> list[tuple]:
    """(start, end, status, summary) of every event ``phone`` shows after a sync,
    sorted, once ``ics`` (the feed it syncs) conforms and the phone agrees with the
    parsers about it."""
    readings = assert_feed_conforms(ics)
    seen = phone.sync_and_list(*window)
    assert seen.problems == []
    assert disagreements({"icalendar": readings["icalendar"], "phone": seen}) == []
    return sorted(
        (event.start_utc, event.end_utc, event.status, event.summary)
        for event in seen.events
    )
