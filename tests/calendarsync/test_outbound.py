"""The rules for connections Tend opens (``calendarsync.outbound``), against real
servers on loopback. Only DNS is faked, and only for names that are not ours:
``resolver`` answers from a fixed table."""

import datetime
import http.server
import ipaddress
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from calendarsync import outbound
from calendarsync.caldav_client import AUTH_REFUSED, CalDAVClient, CalDAVError


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers by path; remembers what each request carried."""

    protocol_version = "HTTP/1.1"
    seen: list
    routes: dict

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append(
            {
                "path": self.path,
                "host": self.headers.get("Host"),
                "cookie": self.headers.get("Cookie"),
                "authorization": self.headers.get("Authorization"),
            }
        )
        route = self.routes.get(self.path.split("?")[0], (404, {}, b"missing"))
        status, headers, body = route(self) if callable(route) else route
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if body is not None and "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    do_PROPFIND = do_GET


class Server:
    def __init__(self, routes: dict, tls: ssl.SSLContext | None = None):
        handler = type("Handler", (Recorder,), {"seen": [], "routes": routes})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.seen = handler.seen
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/", host: str = "127.0.0.1", scheme="http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    started = []

    def start(routes, tls=None):
        server = Server(routes, tls)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def resolver(table: dict[str, list[str]]):
    calls = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        if host not in table:
            raise OSError("no such name")
        return table[host]

    resolve.calls = calls
    return resolve


def get(url: str, **kwargs) -> outbound.Response:
    resolve = kwargs.pop("resolve", outbound.system_resolve)
    with outbound.Session(resolve=resolve, **kwargs) as session:
        return session.request("GET", url)


def refused(url: str, **kwargs) -> outbound.OutboundError:
    with pytest.raises(outbound.OutboundError) as raised:
        get(url, **kwargs)
    return raised.value


# -- addresses --------------------------------------------------------------------


def test_plain_http_to_a_public_server_is_refused_before_connecting():
    resolve = resolver({"calendar.example": ["93.184.216.34"]})
    error = refused("http://calendar.example/dav/", resolve=resolve)
    assert (error.kind, error.message) == ("refused", outbound.REFUSED_HTTP)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("10.0.0.5", outbound.REFUSED_PRIVATE),
        ("192.168.1.20", outbound.REFUSED_PRIVATE),
        ("100.64.0.1", outbound.REFUSED_PRIVATE),
        ("fd12:3456::1", outbound.REFUSED_PRIVATE),
        ("::ffff:10.1.2.3", outbound.REFUSED_PRIVATE),
        ("127.0.0.1", outbound.REFUSED_LOOPBACK),
        ("::1", outbound.REFUSED_LOOPBACK),
        ("0.0.0.0", outbound.REFUSED_LOOPBACK),  # noqa: S104 - the address refused
        ("169.254.169.254", outbound.REFUSED_METADATA),
        ("fd00:ec2::254", outbound.REFUSED_METADATA),
        ("fe80::1", outbound.REFUSED_METADATA),
        ("224.0.0.251", outbound.REFUSED_RESERVED),
        ("240.0.0.1", outbound.REFUSED_RESERVED),
    ],
)
def test_names_resolving_to_internal_addresses_are_refused(settings, address, message):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    resolve = resolver({"calendar.example": [address]})
    error = refused("https://calendar.example/", resolve=resolve)
    assert (error.kind, error.message) == ("refused", message)
    literal = f"[{address}]" if ":" in address else address
    assert refused(f"https://{literal}/").message == message


def test_loopback_is_refused_unless_an_operator_allows_it(settings, serve):
    server = serve({"/": (200, {}, b"hello")})
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    assert refused(server.url()).message == outbound.REFUSED_LOOPBACK
    assert server.seen == []

    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    # Allowed networks may be reached over http too.
    assert get(server.url()).body == b"hello"


def test_a_name_is_resolved_once_and_the_connection_pinned_to_it(serve):
    server = serve({"/": (200, {}, b"one")})
    # A second answer for the same name would point elsewhere: never asked.
    resolve = resolver({"calendar.test": ["127.0.0.1"]})
    with outbound.Session(resolve=resolve) as session:
        for _ in range(3):
            assert session.request("GET", server.url(host="calendar.test")).status
    assert resolve.calls == ["calendar.test"]
    assert {seen["host"] for seen in server.seen} == {f"calendar.test:{server.port}"}


def test_an_unknown_name_is_a_network_error():
    error = refused("https://nowhere.example/", resolve=resolver({}))
    assert (error.kind, error.message) == ("network", outbound.NO_SUCH_HOST)


def test_other_schemes_and_credentials_in_the_address_are_refused():
    for url in ("ftp://calendar.example/", "https://user:pw@calendar.example/"):
        assert refused(url).message == outbound.REFUSED_URL


# -- redirects ----------------------------------------------------------------------


def test_redirects_are_followed_and_each_checked(serve):
    server = serve(
        {
            "/a": (301, {"Location": "/b"}, b""),
            "/b": (302, {"Location": "/c"}, b""),
            "/c": (200, {}, b"arrived"),
            "/inside": (307, {"Location": "https://intranet.example/"}, b""),
        }
    )
    answer = get(server.url("/a"))
    assert (answer.status, answer.body) == (200, b"arrived")
    assert answer.url == server.url("/c")

    resolve = resolver({"intranet.example": ["10.20.30.40"]})
    error = refused(server.url("/inside"), resolve=resolve)
    assert error.message == outbound.REFUSED_PRIVATE


def test_a_redirect_to_metadata_is_refused(serve):
    server = serve(
        {"/": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")}
    )
    assert refused(server.url()).message == outbound.REFUSED_METADATA


def test_redirects_stop_after_five(serve):
    server = serve({"/loop": (302, {"Location": "/loop"}, b"")})
    assert refused(server.url("/loop")).message == outbound.TOO_MANY_REDIRECTS
    assert len(server.seen) == outbound.MAX_REDIRECTS + 1


def test_credentials_do_not_follow_a_redirect_to_another_host(serve):
    other = serve({"/": (200, {}, b"elsewhere")})
    first = serve({"/": (302, {"Location": other.url(host="elsewhere.test")}, b"")})
    resolve = resolver(
        {"calendar.test": ["127.0.0.1"], "elsewhere.test": ["127.0.0.1"]}
    )
    with outbound.Session(resolve=resolve) as session:
        answer = session.request(
            "GET", first.url(host="calendar.test"), authorization="Basic c2VjcmV0"
        )
    assert answer.body == b"elsewhere"
    assert first.seen[0]["authorization"] == "Basic c2VjcmV0"
    assert other.seen[0]["authorization"] is None


# -- answers --------------------------------------------------------------------------


def test_answers_larger_than_the_cap_are_refused(serve):
    big = b"x" * 4096
    server = serve(
        {
            "/declared": (200, {}, big),
            # No Content-Length: read in pieces and stopped at the cap.
            "/streamed": (200, {"Connection": "close", "Content-Length": ""}, big),
        }
    )
    for path in ("/declared", "/streamed"):
        error = refused(server.url(path), max_bytes=1024)
        assert (error.kind, error.message) == ("too_large", outbound.TOO_LARGE)
    assert get(server.url("/declared"), max_bytes=4096).body == big


def test_a_server_that_never_answers_times_out(silent_server):
    url = f"http://127.0.0.1:{silent_server.port}/"
    error = refused(url, timeout=0.3)
    assert (error.kind, error.message) == ("network", outbound.TIMED_OUT)


def test_cookies_are_never_sent_back(serve):
    server = serve({"/": (200, {"Set-Cookie": "session=abc; Path=/"}, b"ok")})
    with outbound.Session() as session:
        session.request("GET", server.url())
        session.request("GET", server.url())
    assert [seen["cookie"] for seen in server.seen] == [None, None]


# -- TLS to a pinned address ---------------------------------------------------


def _certificate(name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


@pytest.fixture
def tls_server(serve, tmp_path):
    certificate, key = _certificate("calendar.test")
    cert_file = tmp_path / "cert.pem"
    key_file = tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert_file, key_file)
    server = serve({"/": (200, {}, b"secure")}, tls=server_side)
    client_side = ssl.create_default_context(cafile=str(cert_file))
    return server, client_side


def test_tls_to_the_pinned_address_checks_the_certificate_against_the_name(
    settings, tls_server
):
    server, trust = tls_server
    # Not an allowed network for plain http: https is what makes this work.
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    resolve = resolver({"calendar.test": ["127.0.0.1"], "wrong.test": ["127.0.0.1"]})
    answer = get(
        server.url(host="calendar.test", scheme="https"),
        resolve=resolve,
        tls_context=trust,
    )
    assert answer.body == b"secure"

    error = refused(
        server.url(host="wrong.test", scheme="https"),
        resolve=resolve,
        tls_context=trust,
    )
    assert error.message == outbound.BAD_CERTIFICATE


def test_the_caldav_client_classifies_a_refused_password(serve):
    server = serve({"/": (401, {"WWW-Authenticate": 'Basic realm="x"'}, b"")})
    with pytest.raises(CalDAVError) as raised:
        CalDAVClient(url=server.url(), username="u", password="p").principal()
    assert raised.value.kind == "auth"
    assert raised.value.message == AUTH_REFUSED
    assert raised.value.needs_attention


def test_the_caldav_client_passes_on_refusals_in_its_own_words(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    resolve = resolver({"calendar.example": ["10.0.0.1"]})
    client = CalDAVClient(
        url="https://calendar.example/",
        username="u",
        password="p",
        session=outbound.Session(resolve=resolve),
    )
    with pytest.raises(CalDAVError) as raised:
        client.discover()
    assert raised.value.kind == "refused"
    assert raised.value.message == (
        "the server's address is on a private network, which Tend does not connect to"
    )


def test_allowed_networks_are_parsed_as_cidrs(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["10.1.0.0/16", " 192.168.5.7 "]
    assert outbound.allowed_networks() == [
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("192.168.5.7/32"),
    ]
    assert outbound.refusal(ipaddress.ip_address("10.1.200.3")) is None
    assert outbound.refusal(ipaddress.ip_address("10.2.0.1")) is not None


def test_a_session_spaces_its_requests_out(serve):
    server = serve({"/": (200, {}, b"ok")})
    waits = []
    clock = [100.0]

    def sleep(seconds):
        waits.append(round(seconds, 6))
        clock[0] += seconds

    with outbound.Session(
        max_per_second=4, clock=lambda: clock[0], sleep=sleep
    ) as session:
        for _ in range(3):
            session.request("GET", server.url())
        clock[0] += 10  # a pause: the next request is due at once
        session.request("GET", server.url())

    assert waits == [0.25, 0.25]
    assert len(server.seen) == 4
