from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions import middleware as sessions
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from practice.net import (
    NETWORK_EXEMPT_URL_NAMES,
    address_allowed,
    client_ip,
    from_trusted_proxy,
)
from practice.selectors import practice_allowed_cidrs
from practice.sessions import session_outlived

# Answered whatever the session: they never need a signed-in user, a calendar
# application holding a browser's cookie must still get its feed, and signing out
# signs out anyway.
SESSION_LIFETIME_EXEMPT_URL_NAMES = frozenset(
    {"healthz", "robots_txt", "calendarsync:feed", "logout"}
)

# What a reverse proxy tells us about the client. Django believes X-Forwarded-Proto
# from anyone once SECURE_PROXY_SSL_HEADER is set; the others are dropped as well so
# that no code can come to rely on them unchecked.
FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_FORWARDED",
)


class ForwardedHeadersMiddleware:
    """Drop the forwarding headers of a request that did not come from one of the
    trusted proxies (``TRUSTED_PROXY_NETWORKS``): whoever reaches gunicorn directly
    must not pass for an allowed network or for HTTPS."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not from_trusted_proxy(request):
            for header in FORWARDED_HEADERS:
                request.META.pop(header, None)
        return self.get_response(request)


class NoStoreMiddleware:
    """Ask browsers and caches to keep no copy of any answer to a signed-in user:
    pages show patients' details, and neither a shared computer's disk cache nor its
    back button may show them after signing out. A view that says how its answer
    may be cached keeps its own word (the calendar feed, which no one signs in to).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not response.has_header("Cache-Control") and _signed_in(request):
            add_never_cache_headers(response)
        return response


def _signed_in(request) -> bool:
    session = getattr(request, "session", None)
    if session is None or not session.accessed:
        # Nothing asked who is signed in, so nothing in the answer depends on it;
        # asking now would cost a query, or fail again with the database down.
        return False
    user = getattr(request, "user", None)
    return user is not None and user.is_authenticated


class NetworkRestrictionMiddleware:
    """Answer 403 to a signed-in user of a restricted practice who is not on one of
    the practice's allowed networks. Login applies the same rule (see LoginView)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is not None and match.view_name in NETWORK_EXEMPT_URL_NAMES:
            return None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.practice_id is None:
            return None
        address = client_ip(request)
        if address_allowed(
            address, practice_allowed_cidrs(practice_id=user.practice_id)
        ):
            return None
        return network_blocked_response(request, address)


def network_blocked_response(request, address):
    return render(
        request,
        "practice/network_blocked.html",
        # No tabs or sign-out button: from here every one of them would be refused.
        {"client_address": address or "unknown", "hide_shell": True},
        status=403,
    )


class PracticeTimezoneMiddleware:
    """Show every time in the signed-in user's practice zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.practice_id:
            timezone.activate(user.practice.zone)
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class NotModifiedMiddleware:
    """A 304 describes the representation the client already holds: it has no body,
    and a ``Content-Length`` on it (which CommonMiddleware would add as 0) would
    claim that representation is empty. Listed before CommonMiddleware so its
    response pass comes after."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 304 and response.has_header("Content-Length"):
            del response["Content-Length"]
        return response


class SessionMiddleware(sessions.SessionMiddleware):
    """Django's, except that a session the database could not load (see
    ``practice.sessions``) is left alone on the way out: there is nothing to save,
    and working out its cookie would only query the failed database again, turning
    one logged outage into two. The answer is already the 503 page."""

    def process_response(self, request, response):
        if getattr(getattr(request, "session", None), "load_failed", False):
            return response
        return super().process_response(request, response)


class SessionLifetimeMiddleware:
    """Sign the user out ``SESSION_ABSOLUTE_HOURS`` after they signed in, however
    active they have been since (the idle timeout alone lets a busy session, or a
    stolen one kept busy, live for ever), and send them to sign in again with a
    message saying why. Listed after authentication; acts before any view."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        view_name = match.view_name if match is not None else ""
        if view_name in SESSION_LIFETIME_EXEMPT_URL_NAMES:
            return None
        session = getattr(request, "session", None)
        if session is None or not session_outlived(session):
            return None
        logout(request)
        hours = settings.SESSION_ABSOLUTE_HOURS
        messages.info(
            request,
            f"You were signed out because you signed in more than {hours} "
            f"hour{'s' if hours != 1 else ''} ago, the longest a session lasts. "
            "Please sign in again.",
        )
        if request.method not in ("GET", "HEAD") or view_name == "login":
            # Coming back to a form's address (or to the login page itself) after
            # signing in would fail: the login page's own default follows.
            return redirect(settings.LOGIN_URL)
        return redirect_to_login(request.get_full_path())
