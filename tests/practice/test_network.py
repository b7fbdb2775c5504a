"""Network restrictions: client address, the middleware, login, exemptions, settings."""

import re

import pytest
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from practice.models import AllowedNetwork, AuditEvent
from practice.net import NETWORK_EXEMPT_URL_NAMES, address_allowed, client_ip
from tests.factories import PASSWORD
from tests.support import ELSEWHERE_IP, OFFICE, OFFICE_IP

# -- The client address -------------------------------------------------------------


def request_from(remote, forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request_from("203.0.113.5", OFFICE_IP)) == "203.0.113.5"


@pytest.mark.parametrize(
    ("count", "forwarded", "expected"),
    [
        # One proxy appends the address it saw; whatever the client wrote is left of it.
        (1, "198.51.100.7", "198.51.100.7"),
        (1, f"{OFFICE_IP}, 198.51.100.7", "198.51.100.7"),
        (1, f"{OFFICE_IP},198.51.100.7", "198.51.100.7"),
        # Two proxies: the outer one appended the client, the inner one the outer.
        (2, f"{OFFICE_IP}, 198.51.100.7, 192.0.2.1", "198.51.100.7"),
        # Fewer entries than proxies: a proxy was bypassed, nobody is vouched for.
        (2, "198.51.100.7", None),
        (1, "", None),
        (1, None, None),
        # Garbage is never an address.
        (1, "not-an-ip", None),
        (1, "2001:DB8::0001", "2001:db8::1"),
        # Proxies that add the client's port.
        (1, "198.51.100.7:51234", "198.51.100.7"),
        (1, "[2001:db8::1]:443", "2001:db8::1"),
    ],
)
def test_trusted_proxies_vouch_only_for_what_they_appended(
    settings, count, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = count
    settings.TRUSTED_PROXY_NETWORKS = ["127.0.0.1", "192.0.2.0/24"]
    assert client_ip(request_from("127.0.0.1", forwarded)) == expected


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        # Not a proxy of ours: its header is its own writing.
        ("203.0.113.5", OFFICE_IP, "203.0.113.5"),
        ("127.0.0.1", OFFICE_IP, "127.0.0.1"),
        # Our nginx (10.0.1.5) appended what connected to it.
        ("10.0.1.5", f"{OFFICE_IP}, 198.51.100.7", "198.51.100.7"),
        ("::ffff:10.0.1.5", "198.51.100.7", "198.51.100.7"),
        ("not-an-ip", OFFICE_IP, None),
    ],
)
def test_only_connections_from_trusted_proxy_networks_are_believed(
    settings, remote, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.1.0/24"]
    assert client_ip(request_from(remote, forwarded)) == expected


def test_a_client_that_went_round_the_outer_proxy_is_seen_as_itself(settings):
    """Two proxies: a load balancer (192.0.2.0/24) in front of nginx (10.0.1.5).
    A client that reaches nginx directly is what nginx appended, not what it wrote."""
    settings.TRUSTED_PROXY_COUNT = 2
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.1.5", "192.0.2.0/24"]
    through_both = request_from("10.0.1.5", f"{OFFICE_IP}, 198.51.100.7, 192.0.2.1")
    assert client_ip(through_both) == "198.51.100.7"
    round_the_balancer = request_from("10.0.1.5", f"{OFFICE_IP}, 203.0.113.9")
    assert client_ip(round_the_balancer) == "203.0.113.9"


@pytest.mark.parametrize(
    ("proxies", "expected_status"), [(["10.0.1.0/24"], 403), (["127.0.0.1"], 200)]
)
def test_forwarded_for_counts_only_from_a_trusted_proxy(
    login, admin_user, practice, restrict, settings, proxies, expected_status
):
    """A client at 127.0.0.1 that writes a restricted practice's address into the
    header gets in only if 127.0.0.1 is one of our proxies."""
    restrict(practice, "10.9.9.0/24")
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_NETWORKS = proxies
    response = login(admin_user).get(
        "/settings/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    assert response.status_code == expected_status


def test_forwarded_for_from_an_untrusted_peer_does_not_move_the_lockout(
    client, clinician, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.1.0/24"]
    for number in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/login/",
            {"username": clinician.email, "password": "wrong"},
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{number}",
        )
    refused = client.post(
        "/login/",
        {"username": clinician.email, "password": PASSWORD},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.200",
    )
    assert refused.status_code == 429
    lockout = AuditEvent.objects.get(kind=AuditEvent.Kind.LOCKOUT)
    assert lockout.client_ip == "127.0.0.1"


@pytest.mark.parametrize(
    ("remote", "expected_status"), [("203.0.113.5", 301), ("10.0.1.5", 200)]
)
def test_forwarded_proto_counts_only_from_a_trusted_proxy(
    client, db, settings, remote, expected_status
):
    """Django believes X-Forwarded-Proto from anyone once SECURE_PROXY_SSL_HEADER is
    set: a direct client must not pass for HTTPS (and get secure-only treatment)."""
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_NETWORKS = ["10.0.1.0/24"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    response = client.get(
        "/robots.txt", REMOTE_ADDR=remote, HTTP_X_FORWARDED_PROTO="https"
    )
    assert response.status_code == expected_status


@pytest.mark.parametrize(
    ("address", "cidrs", "allowed"),
    [
        ("203.0.113.5", [], True),
        (None, [], True),
        (None, [OFFICE], False),
        (OFFICE_IP, [OFFICE], True),
        (ELSEWHERE_IP, [OFFICE], False),
        (f"::ffff:{OFFICE_IP}", [OFFICE], True),
        ("2001:db8:1::5", ["2001:db8::/32"], True),
        ("2001:db9::5", ["2001:db8::/32"], False),
        (OFFICE_IP, ["2001:db8::/32", "10.20.0.7/32"], True),
    ],
)
def test_address_allowed(address, cidrs, allowed):
    assert address_allowed(address, cidrs) is allowed


# -- Pages and login from inside and outside ----------------------------------------


def test_restricted_practice_blocks_pages_from_elsewhere(
    login, admin_user, practice, restrict
):
    restrict(practice, OFFICE)
    client = login(admin_user)
    assert client.get("/settings/", REMOTE_ADDR=OFFICE_IP).status_code == 200
    blocked = client.get("/settings/", REMOTE_ADDR=ELSEWHERE_IP)
    assert blocked.status_code == 403
    assert "practice/network_blocked.html" in [t.name for t in blocked.templates]
    html = blocked.content.decode()
    assert "Tend is not available from this network" in html
    assert ELSEWHERE_IP in html
    # No tabs (each would be refused too); signing out is the one thing left to do.
    assert ">SCHEDULING<" not in html and ">Settings<" not in html
    assert "Sign out" in html
    # Writes are blocked before the view runs.
    response = client.post(
        "/settings/practice/",
        {"name": "Taken over", "time_zone": "UTC"},
        REMOTE_ADDR=ELSEWHERE_IP,
    )
    assert response.status_code == 403
    practice.refresh_from_db()
    assert practice.name == "Riverside Counseling"


def test_unrestricted_practice_is_reachable_from_anywhere(
    login, outsider_admin, practice, restrict
):
    restrict(practice, OFFICE)  # Riverside's rule is not Harbor's.
    response = login(outsider_admin).get("/settings/", REMOTE_ADDR=ELSEWHERE_IP)
    assert response.status_code == 200


def test_forged_forwarded_header_does_not_get_in(
    login, admin_user, practice, restrict, settings
):
    restrict(practice, OFFICE)
    client = login(admin_user)
    settings.TRUSTED_PROXY_COUNT = 0
    forged = client.get(
        "/settings/", REMOTE_ADDR=ELSEWHERE_IP, HTTP_X_FORWARDED_FOR=OFFICE_IP
    )
    assert forged.status_code == 403

    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_NETWORKS = ["127.0.0.0/8"]
    # The client wrote the office address; our proxy appended the real one.
    forged = client.get(
        "/settings/",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR=f"{OFFICE_IP}, {ELSEWHERE_IP}",
    )
    assert forged.status_code == 403
    # No header at all from the proxy: unknown address, not let in.
    assert client.get("/settings/", REMOTE_ADDR="127.0.0.1").status_code == 403
    # Someone who reaches Tend directly is taken for the address they connect from.
    assert client.get("/settings/", REMOTE_ADDR=OFFICE_IP).status_code == 200
    forged = client.get(
        "/settings/", REMOTE_ADDR=ELSEWHERE_IP, HTTP_X_FORWARDED_FOR=OFFICE_IP
    )
    assert forged.status_code == 403
    real = client.get(
        "/settings/",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR=f"{ELSEWHERE_IP}, {OFFICE_IP}",
    )
    assert real.status_code == 200


def login_page(response) -> str:
    """The page without what differs on every render (the CSRF token's mask, the
    script nonce), so that two answers can be compared byte for byte."""
    html = response.content.decode()
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)
    return re.sub(r'nonce="[^"]+"', "NONCE", html)


def test_from_elsewhere_the_right_password_gets_the_wrong_passwords_answer(
    client, clinician, restrict
):
    """Outside the allowed networks nothing tells a right password from a wrong one:
    otherwise the network page confirms a guessed password from anywhere."""
    restrict(clinician.practice, OFFICE)
    answers = {}
    for password in (PASSWORD, "wrong-password"):
        answers[password] = client.post(
            "/login/",
            {"username": clinician.email, "password": password},
            REMOTE_ADDR=ELSEWHERE_IP,
        )
    right, wrong = answers[PASSWORD], answers["wrong-password"]
    assert right.status_code == wrong.status_code == 200
    assert login_page(right) == login_page(wrong)
    assert b"do not match an active account" in right.content
    assert b"not available from this network" not in right.content
    assert "_auth_user_id" not in client.session
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGIN).exists()
    # The audit log, which only the practice's administrators read, says why.
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.NETWORK_BLOCKED)
    assert event.target_user == clinician
    assert event.practice == clinician.practice
    assert event.client_ip == ELSEWHERE_IP

    inside = client.post(
        "/login/",
        {"username": clinician.email, "password": PASSWORD},
        REMOTE_ADDR=OFFICE_IP,
    )
    assert inside.status_code == 302
    assert client.session["_auth_user_id"] == str(clinician.pk)


def test_from_elsewhere_the_right_password_counts_towards_the_lockout(
    client, clinician, restrict, settings
):
    """Were a right password not counted, the lock that never comes would give it
    away."""
    restrict(clinician.practice, OFFICE)
    answers = set()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(
            "/login/",
            {"username": clinician.email, "password": PASSWORD},
            REMOTE_ADDR=ELSEWHERE_IP,
        )
        answers.add(response.status_code)
    assert answers == {200, 429}
    assert response.status_code == 429


# -- The exemption list --------------------------------------------------------------

SAMPLE_CANDIDATES = [
    "1",
    "x",
    "2026-03-08",
    "2026-03",
    "00000000-0000-4000-8000-000000000000",
    "a" * 55,
]


def sample_value(converter) -> str:
    """A value the route's converter accepts, so every route can be requested."""
    for candidate in SAMPLE_CANDIDATES:
        if re.fullmatch(converter.regex, candidate):
            return candidate
    raise AssertionError(
        f"add a sample for {type(converter).__name__} to SAMPLE_CANDIDATES"
    )


def every_url_name(resolver=None, namespace=""):
    """(view name, sample path) for every named route Tend serves."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}{entry.namespace}:"
            yield from every_url_name(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            name = f"{namespace}{entry.name}"
            converters = getattr(entry.pattern, "converters", {})
            if entry.pattern.regex.groups and not converters:
                continue  # admin's regex routes; /operator/ itself is covered
            kwargs = {}
            for key, converter in converters.items():
                kwargs[key] = sample_value(converter)
            yield name, reverse(name, kwargs=kwargs)


def test_the_exemption_list_is_exactly_these():
    assert frozenset({"healthz", "robots_txt", "logout", "calendarsync:feed"}) == (
        NETWORK_EXEMPT_URL_NAMES
    )
    names = {name for name, _ in every_url_name()}
    assert NETWORK_EXEMPT_URL_NAMES <= names, "every exempt name is a real route"


def test_every_other_page_is_blocked_from_elsewhere(
    login, admin_user, practice, restrict
):
    restrict(practice, OFFICE)
    client = login(admin_user)
    checked = []
    for name, path in every_url_name():
        response = client.get(path, REMOTE_ADDR=ELSEWHERE_IP)
        blocked = response.status_code == 403 and (
            "practice/network_blocked.html" in [t.name for t in response.templates]
        )
        if name in NETWORK_EXEMPT_URL_NAMES:
            assert not blocked, f"{name} ({path}) must answer from anywhere"
        else:
            assert blocked, f"{name} ({path}) answered {response.status_code}"
        checked.append(name)
    for must_block in (
        "login",
        "home",
        "practice:settings",
        "practice:settings_network",
        "practice:users",
        "practice:audit_log",
        "password_change",
        "admin:index",
    ):
        assert must_block in checked


def test_exempt_endpoints_answer_from_elsewhere(login, admin_user, practice, restrict):
    restrict(practice, OFFICE)
    client = login(admin_user)
    assert client.get("/healthz", REMOTE_ADDR=ELSEWHERE_IP).status_code == 200
    assert client.get("/robots.txt", REMOTE_ADDR=ELSEWHERE_IP).status_code == 200


def test_a_signed_in_user_can_sign_out_from_a_refused_network(
    login, admin_user, practice, restrict
):
    restrict(practice, OFFICE)
    client = login(admin_user)
    page = client.get("/settings/", REMOTE_ADDR=ELSEWHERE_IP)
    assert page.status_code == 403
    assert b'action="/logout/"' in page.content
    response = client.post("/logout/", REMOTE_ADDR=ELSEWHERE_IP)
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    # Signed out, the same address now meets the login page, not the shell.
    assert client.get("/settings/", REMOTE_ADDR=ELSEWHERE_IP).status_code == 302


def test_static_files_are_served_from_elsewhere(login, admin_user, practice, restrict):
    restrict(practice, OFFICE)
    response = login(admin_user).get("/static/css/tend.css", REMOTE_ADDR=ELSEWHERE_IP)
    assert response.status_code == 200


# -- Settings → Network restrictions -------------------------------------------------


def post_networks(client, text, address=OFFICE_IP):
    return client.post("/settings/network/", {"networks": text}, REMOTE_ADDR=address)


def saved_networks(practice):
    return list(practice.allowed_networks.values_list("cidr", flat=True))


def test_network_page_shows_the_current_address(login, admin_user):
    response = login(admin_user).get("/settings/network/", REMOTE_ADDR=OFFICE_IP)
    html = response.content.decode()
    assert OFFICE_IP in html
    assert "Not restricted" in html


def test_saving_networks_is_normalised_and_audited(login, admin_user, practice):
    client = login(admin_user)
    response = post_networks(
        client,
        "10.20.0.9/16   # the office\n\n2001:DB8::/32\n10.20.0.0/16\n198.51.100.7\n",
    )
    assert response.status_code == 302
    assert saved_networks(practice) == [OFFICE, "2001:db8::/32", "198.51.100.7/32"]
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.NETWORKS_CHANGED)
    assert event.actor == admin_user
    assert event.practice == practice
    assert event.client_ip == OFFICE_IP
    assert event.details == {
        "before": [],
        "after": [OFFICE, "2001:db8::/32", "198.51.100.7/32"],
    }
    page = client.get("/settings/network/", REMOTE_ADDR=OFFICE_IP).content.decode()
    assert "Restricted" in page and "2001:db8::/32" in page

    # Saving the same list again changes nothing and records nothing.
    post_networks(client, f"{OFFICE}\n2001:db8::/32\n198.51.100.7/32")
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.NETWORKS_CHANGED).count() == 1

    # An empty list lifts the restriction.
    assert post_networks(client, "").status_code == 302
    assert saved_networks(practice) == []
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.NETWORKS_CHANGED).count() == 2


@pytest.mark.parametrize(
    "bad", ["10.20.0.0/33", "300.1.2.3", "office", "10.20.0.0/16/1", "2001:db8::/129"]
)
def test_invalid_network_is_refused_and_nothing_saved(
    login, admin_user, practice, restrict, bad
):
    restrict(practice, "192.0.2.0/24", OFFICE)
    response = post_networks(login(admin_user), f"{OFFICE}\n{bad}")
    assert response.status_code == 200
    errors = response.context["form"].errors["networks"]
    assert any(bad in error and "is not a valid" in error for error in errors)
    assert bad in response.content.decode()
    assert saved_networks(practice) == ["192.0.2.0/24", OFFICE]
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.NETWORKS_CHANGED).exists()


def test_a_list_that_locks_out_the_admin_is_refused(login, admin_user, practice):
    response = post_networks(login(admin_user), "192.0.2.0/24", address=ELSEWHERE_IP)
    assert response.status_code == 200
    html = response.content.decode()
    assert "would lock you out" in html
    assert ELSEWHERE_IP in html
    assert saved_networks(practice) == []
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.NETWORKS_CHANGED).exists()


def test_behind_a_misconfigured_proxy_no_restriction_can_be_saved(
    login, admin_user, practice, settings
):
    """Unknown address (proxy count wrong): any list could lock everyone out."""
    settings.TRUSTED_PROXY_COUNT = 1
    settings.TRUSTED_PROXY_NETWORKS = ["127.0.0.1"]
    response = login(admin_user).post(
        "/settings/network/", {"networks": OFFICE}, REMOTE_ADDR="127.0.0.1"
    )
    assert response.status_code == 200
    assert b"would lock you out" in response.content
    assert not AllowedNetwork.objects.exists()
