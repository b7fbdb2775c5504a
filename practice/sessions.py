"""Django's database sessions (``SESSION_ENGINE = "practice.sessions"``), failing
with the database's own error, and remembering that they did.

Django loads a session inside an ``except AttributeError`` block (no cached session
yet), so a database outage there is reported as "AttributeError: 'SessionStore'
object has no attribute '_session_cache'" followed by the real error. Loading
first, outside that block, leaves only the database error. ``load_failed`` tells
``practice.middleware.SessionMiddleware`` not to read the session again on the
way out."""

from django.contrib.sessions.backends import db
from django.db import DatabaseError


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
