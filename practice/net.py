"""Client addresses and network restrictions.

The client address is ``REMOTE_ADDR`` unless ``TRUSTED_PROXY_COUNT`` reverse proxies
sit in front of Tend and the connection comes from one of them (an address in
``TRUSTED_PROXY_NETWORKS``); then it is the entry that the outermost trusted proxy
appended to ``X-Forwarded-For``. Entries further left were written by the client and
are never believed, and neither is the header of anyone who reaches Tend without
passing through the proxies, so a forged header cannot get anyone in.
"""

import functools
import ipaddress
from collections.abc import Iterable

from django.conf import settings

# Views that answer whatever the practice's network restrictions say. Keep this list
# short and tested: the calendar feed must work from phones anywhere (the secret link
# is its credential), the health check serves load balancers, robots.txt is public,
# and signing out only ever takes access away (someone who left a session open must be
# able to end it from the network that is refused).
# Static files never reach the middleware (WhiteNoise answers them first).
NETWORK_EXEMPT_URL_NAMES = frozenset(
    {
        "healthz",
        "robots_txt",
        "logout",
        "calendarsync:feed",
    }
)


def client_ip(request) -> str | None:
    """The client's address as far as the configured proxies can vouch for it."""
    remote = _valid_ip(request.META.get("REMOTE_ADDR") or None)
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted <= 0 or not is_trusted_proxy(remote):
        # Whoever connected reached us directly: their header is their own writing.
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    entries = [entry.strip() for entry in forwarded.split(",") if entry.strip()]
    if len(entries) < trusted:
        # The request did not pass through every proxy we expect: we cannot tell
        # who the client is, and an unknown address is never allowed in.
        return None
    # Each proxy appended the address that connected to it. Walking back from the
    # proxy that connected to us, an address that is not one of our proxies is
    # where the request entered the chain: a client that went round the outer
    # proxies, whatever it wrote further left.
    for hop in range(1, trusted):
        address = _valid_ip(entries[-hop])
        if not is_trusted_proxy(address):
            return address
    return _valid_ip(entries[-trusted])


def from_trusted_proxy(request) -> bool:
    """True when the connection comes from one of the configured reverse proxies,
    whose forwarding headers (``X-Forwarded-For``, ``X-Forwarded-Proto``) count."""
    if settings.TRUSTED_PROXY_COUNT <= 0:
        return False
    return is_trusted_proxy(_valid_ip(request.META.get("REMOTE_ADDR") or None))


def is_trusted_proxy(address: str | None) -> bool:
    """True when ``address`` is inside ``TRUSTED_PROXY_NETWORKS``."""
    if address is None:
        return False
    networks = _proxy_networks(tuple(settings.TRUSTED_PROXY_NETWORKS))
    return _inside(ipaddress.ip_address(address), networks)


@functools.lru_cache(maxsize=8)
def _proxy_networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def axes_client_ip(request) -> str:
    return client_ip(request) or "0.0.0.0"  # noqa: S104 - a placeholder, not a bind


def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    # Some proxies add the port: "203.0.113.7:51234", "[2001:db8::1]:443".
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def address_allowed(address: str | None, cidrs: Iterable[str]) -> bool:
    """True when no networks are listed, or when the address is inside one of them."""
    cidrs = list(cidrs)
    if not cidrs:
        return True
    if address is None:
        return False
    networks = [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]
    return _inside(ipaddress.ip_address(address), networks)


def _inside(ip, networks) -> bool:
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)
