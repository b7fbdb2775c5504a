"""Django's database sessions (``SESSION_ENGINE = "practice.sessions"``), failing
with the database's own error, and remembering that they did.

Django loads a session inside an ``except AttributeError`` block (no cached session
yet), so a database outage there is reported as "AttributeError: 'SessionStore'
object has no attribute '_session_cache'" followed by the real error. Loading
first, outside that block, leaves only the database error. ``load_failed`` tells
``practice.middleware.SessionMiddleware`` not to read the session again on the
way out.

Also the absolute lifetime of a signed-in session (``SESSION_ABSOLUTE_HOURS``):
stamped at sign-in, checked by ``practice.middleware.SessionLifetimeMiddleware``."""

import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends import db
from django.db import DatabaseError

# When the user signed in (seconds since the epoch): the absolute lifetime
# (SESSION_ABSOLUTE_HOURS) counts from here, however active the session is since.
SIGNED_IN_AT = "tend_signed_in_at"


class SessionStore(db.SessionStore):
    load_failed = False

    def load(self):
        try:
            return super().load()
        except DatabaseError:
            self.load_failed = True
            raise

    # Django's own (undocumented) loader: tests/practice/test_database_down.py fails
    # loudly if an upgrade changes it (the AttributeError would be back in the log).
    def _get_session(self, no_load=False):
        if (
            not no_load
            and self.session_key is not None
            and "_session_cache" not in vars(self)
        ):
            self._session_cache = self.load()
        return super()._get_session(no_load=no_load)  # type: ignore[misc]

    _session = property(_get_session)


def session_signed_in(session) -> None:
    """Start the session's absolute lifetime: the user has just signed in."""
    session[SIGNED_IN_AT] = int(time.time())


def session_outlived(session) -> bool:
    """Whether a signed-in session has passed ``SESSION_ABSOLUTE_HOURS`` since
    sign-in. A signed-in session without the stamp (from before it existed) starts
    counting now."""
    if SESSION_KEY not in session:
        return False
    signed_in_at = session.get(SIGNED_IN_AT)
    if not isinstance(signed_in_at, int):
        session_signed_in(session)
        return False
    lifetime = settings.SESSION_ABSOLUTE_HOURS * 3600
    return time.time() - signed_in_at >= lifetime
