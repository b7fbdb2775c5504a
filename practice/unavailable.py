"""The answer to any request while the database cannot be reached: a 503 page with
Retry-After, never a 500. ``practice.views.server_error`` (Django's handler500)
gives it for every exception that comes from the database, wherever it was raised:
a view, a middleware reading the session or the user, or a session save."""

from django.db import DatabaseError, connection
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers

RETRY_AFTER_SECONDS = 120


def database_ping() -> None:
    """One round trip to the database; DatabaseError when it does not answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def caused_by_database(error: BaseException | None) -> bool:
    """Whether ``error`` is a database error, or was raised from or while handling
    one."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, DatabaseError):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def unavailable_response() -> HttpResponse:
    """The 503 page. Rendered without the request, so that nothing on it (the
    signed-in user, messages, tabs) reads the session or the database."""
    page: str
    try:
        page = render_to_string(
            "503.html", {"retry_minutes": RETRY_AFTER_SECONDS // 60}
        )
    except Exception:  # noqa: BLE001 - the 503 itself must never fail
        page = "Tend is temporarily unavailable. Please try again in a few minutes.\n"
    response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    add_never_cache_headers(response)
    return response
