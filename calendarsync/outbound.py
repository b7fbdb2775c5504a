"""The rules for every connection Tend opens to a server someone else names (a
calendar account's CalDAV server).

- https only, except to the networks an operator allows in
  ``OUTBOUND_ALLOWED_NETWORKS`` (comma-separated CIDRs), where http is allowed too;
- a name that resolves to a private, loopback, link-local, multicast, reserved or
  cloud metadata address is refused unless that address is in those networks;
- the name is resolved once and the connection is pinned to that address (TLS
  still checks the certificate against the name, and the Host header names it),
  so a second, different answer from DNS cannot redirect it;
- redirects are followed here, at most ``MAX_REDIRECTS``, each one checked the
  same way (and the credentials are dropped when one leaves the host);
- every read has a timeout, an answer is read in pieces and refused beyond
  ``MAX_RESPONSE_BYTES``, and no cookie is ever kept or sent;
- a session sends at most ``MAX_REQUESTS_PER_SECOND``.

``OutboundError.message`` is written for the person who typed the address.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from django.conf import settings

TIMEOUT_SECONDS = 10.0
# The longest one answer may take in all, however slowly it trickles in.
DEADLINE_SECONDS = 60.0
MAX_RESPONSE_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK_BYTES = 64 * 1024
MAX_REQUESTS_PER_SECOND = 50.0

# Cloud metadata services, refused like any other internal address.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
    }
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundError(Exception):
    """A connection Tend would not open, or that failed.

    ``kind``: ``refused`` (against the rules above), ``network`` (no answer, a
    timeout, a certificate that does not check out), ``too_large``."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


REFUSED_HTTP = (
    "Tend connects to calendar servers only over https: use an address that "
    "starts with https://."
)
REFUSED_PRIVATE = (
    "The server's address is on a private network, which Tend does not connect to."
)
REFUSED_LOOPBACK = (
    "The server's address is this machine itself, which Tend does not connect to."
)
REFUSED_METADATA = (
    "The server's address is a cloud metadata or link-local address, which Tend "
    "does not connect to."
)
REFUSED_RESERVED = (
    "The server's address is a multicast or reserved address, which Tend does "
    "not connect to."
)
REFUSED_URL = "That is not a web address Tend can connect to."
NO_SUCH_HOST = "No server answers to that name: check the address."
UNREACHABLE = "The server could not be reached; Tend will try again."
TIMED_OUT = "The server did not answer in time; Tend will try again."
BAD_CERTIFICATE = (
    "The server's certificate could not be verified, so Tend did not send "
    "anything to it."
)
TOO_MANY_REDIRECTS = "The server redirected Tend too many times."
TOO_LARGE = "The server's answer was larger than Tend accepts."


def allowed_networks() -> list[Network]:
    """The operator's ``OUTBOUND_ALLOWED_NETWORKS``."""
    return [
        ipaddress.ip_network(entry.strip(), strict=False)
        for entry in settings.OUTBOUND_ALLOWED_NETWORKS
        if entry.strip()
    ]


def _plain(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def is_allowed_network(address: Address) -> bool:
    address = _plain(address)
    return any(address in network for network in allowed_networks())


def refusal(address: Address) -> str | None:
    """Why Tend does not connect to ``address`` (None: it does)."""
    address = _plain(address)
    if is_allowed_network(address):
        return None
    if address in METADATA_ADDRESSES or address.is_link_local:
        return REFUSED_METADATA
    if address.is_loopback or address.is_unspecified:
        return REFUSED_LOOPBACK
    if address.is_multicast or address.is_reserved:
        return REFUSED_RESERVED
    if address.is_private or not address.is_global:
        return REFUSED_PRIVATE
    return None


def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


# Replaced in tests that need a public name to resolve to a fixed answer.
Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class Target:
    """One checked URL: where it points and the address pinned for it."""

    scheme: str
    host: str
    port: int
    path: str  # with the query
    address: str

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def check_url(url: str, *, resolve: Resolver) -> Target:
    """``url`` resolved once and checked against every rule, or OutboundError."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundError("refused", REFUSED_URL) from None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host or parts.username is not None:
        raise OutboundError("refused", REFUSED_URL)
    port = port or (443 if scheme == "https" else 80)
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates = [str(literal)]
    else:
        try:
            candidates = resolve(host, port)
        except (OSError, UnicodeError):
            raise OutboundError("network", NO_SUCH_HOST) from None
        if not candidates:
            raise OutboundError("network", NO_SUCH_HOST)
    reasons = []
    for candidate in candidates:
        address = ipaddress.ip_address(candidate.split("%", 1)[0])
        reason = refusal(address)
        if reason is None:
            if scheme == "http" and not is_allowed_network(address):
                raise OutboundError("refused", REFUSED_HTTP)
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            return Target(scheme, host, port, path, str(_plain(address)))
        reasons.append(reason)
    raise OutboundError("refused", reasons[0])


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    url: str  # after redirects

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext):
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = target.address
        self._context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the name, not the pinned address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass
class Session:
    """Requests to one or a few servers, each name resolved once for the session
    and its connection kept open between requests."""

    resolve: Resolver = system_resolve
    timeout: float = TIMEOUT_SECONDS
    max_bytes: int = MAX_RESPONSE_BYTES
    tls_context: ssl.SSLContext | None = None
    # At most this many requests a second (a run of thousands of events must not
    # hammer someone's server); the clock and the sleep are replaceable in tests.
    max_per_second: float = MAX_REQUESTS_PER_SECOND
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next_at: float = 0.0
    _targets: dict[tuple[str, str, int], Target] = field(default_factory=dict)
    _connections: dict[tuple[str, str, int], http.client.HTTPConnection] = field(
        default_factory=dict
    )

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _target(self, url: str) -> Target:
        checked = check_url(url, resolve=self._pinned_resolve)
        self._targets.setdefault(checked.origin, checked)
        return checked

    def _pinned_resolve(self, host: str, port: int) -> list[str]:
        for (_scheme, known_host, known_port), target in self._targets.items():
            if known_host == host and known_port == port:
                return [target.address]
        return self.resolve(host, port)

    def _connection(self, target: Target) -> http.client.HTTPConnection:
        connection = self._connections.get(target.origin)
        if connection is None:
            if target.scheme == "https":
                context = self.tls_context or _tls_context()
                connection = _PinnedHTTPSConnection(target, self.timeout, context)
            else:
                connection = _PinnedHTTPConnection(target, self.timeout)
            self._connections[target.origin] = connection
        return connection

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        authorization: str | None = None,
    ) -> Response:
        """Send one request and follow redirects (each checked); the answer of the
        last one. ``authorization`` is sent only to the first URL's host."""
        target = self._target(url)
        first_host = (target.host, target.port)
        for _hop in range(MAX_REDIRECTS + 1):
            sent = dict(headers or {})
            if authorization and (target.host, target.port) == first_host:
                sent["Authorization"] = authorization
            response = self._send(target, method, sent, body)
            if response.status not in REDIRECTS or not response.header("location"):
                return response
            location = urljoin(response.url, response.header("location"))
            if response.status == 303:
                method, body = "GET", None
            target = self._target(location)
        raise OutboundError("network", TOO_MANY_REDIRECTS)

    def _send(
        self, target: Target, method: str, headers: dict, body: bytes | None
    ) -> Response:
        url = f"{target.scheme}://{_netloc(target)}{target.path}"
        self._throttle()
        for attempt in (1, 2):
            connection = self._connection(target)
            reused = connection.sock is not None
            try:
                connection.request(method, target.path, body=body, headers=headers)
                answer = connection.getresponse()
                status = answer.status
                received = {name.lower(): value for name, value in answer.getheaders()}
                data = self._read(answer)
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
            ):
                self._drop(target)
                # A kept connection the server had already closed: once more on
                # a new one. Anything else is the server's failure.
                if reused and attempt == 1:
                    continue
                raise OutboundError("network", UNREACHABLE) from None
            except ssl.SSLCertVerificationError:
                self._drop(target)
                raise OutboundError("network", BAD_CERTIFICATE) from None
            except TimeoutError:
                self._drop(target)
                raise OutboundError("network", TIMED_OUT) from None
            except OutboundError:
                self._drop(target)
                raise
            except (OSError, http.client.HTTPException):
                self._drop(target)
                raise OutboundError("network", UNREACHABLE) from None
            if received.get("connection", "").lower() == "close":
                self._drop(target)
            return Response(status, received, data, url)
        raise OutboundError("network", UNREACHABLE)  # pragma: no cover

    def _throttle(self) -> None:
        """Wait until the next request is due, then book the one after it."""
        now = self.clock()
        if self._next_at > now:
            self.sleep(self._next_at - now)
            now = self._next_at
        self._next_at = now + 1 / self.max_per_second

    def _read(self, answer: http.client.HTTPResponse) -> bytes:
        declared = answer.getheader("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise OutboundError("too_large", TOO_LARGE)
        deadline = time.monotonic() + DEADLINE_SECONDS
        chunks = []
        size = 0
        while True:
            chunk = answer.read1(CHUNK_BYTES) if hasattr(answer, "read1") else b""
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_bytes:
                raise OutboundError("too_large", TOO_LARGE)
            if time.monotonic() > deadline:
                raise TimeoutError
            chunks.append(chunk)
        return b"".join(chunks)

    def _drop(self, target: Target) -> None:
        connection = self._connections.pop(target.origin, None)
        if connection is not None:
            connection.close()


def _netloc(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"
