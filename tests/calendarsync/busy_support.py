"""A calendar server on loopback for the busy-time tests: each path answers what
the test sets (a calendar, a 404, a redirect, a page of HTML), honours ETag and
Last-Modified like a real host, and remembers the requests it got."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SAMPLES = Path(__file__).parent / "busy_samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    last_modified: str = ""


class _Handler(BaseHTTPRequestHandler):
    server: CalendarServer._Server

    def log_message(self, *args):
        pass

    def do_GET(self):
        owner = self.server.owner
        owner.requests.append((self.path, dict(self.headers.items())))
        answer = owner.routes.get(self.path, Answer(404, b"Not found"))
        if (answer.etag and self.headers.get("If-None-Match") == answer.etag) or (
            answer.last_modified
            and self.headers.get("If-Modified-Since") == answer.last_modified
        ):
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(answer.status)
        headers = {"Content-Type": "text/calendar; charset=utf-8", **answer.headers}
        if answer.etag:
            headers["ETag"] = answer.etag
        if answer.last_modified:
            headers["Last-Modified"] = answer.last_modified
        headers["Content-Length"] = str(len(answer.body))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)


class CalendarServer:
    class _Server(ThreadingHTTPServer):
        daemon_threads = True
        owner: CalendarServer

    def __init__(self):
        self.routes: dict[str, Answer] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._server = self._Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self._server.server_port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def vevent(
    uid: str,
    start,
    end,
    *,
    extra: tuple[str, ...] = (),
) -> str:
    """One VEVENT between two aware datetimes (written in UTC)."""
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20261101T000000Z",
        f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        f"DTEND:{end.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        *extra,
        "END:VEVENT",
    ]
    return "\r\n".join(lines) + "\r\n"


def vcalendar(*events: str, name: str = "") -> bytes:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Example Corp//Cal 1.0//EN"]
    if name:
        head.append(f"X-WR-CALNAME:{name}")
    return ("\r\n".join(head) + "\r\n" + "".join(events) + "END:VCALENDAR\r\n").encode()
