"""A gunicorn logger that never writes a calendar feed token, in the access log or
in the error log.

The error log matters as much as the access log: gunicorn reports a malformed
request line (no HTTP version, a double space, a tab) as a warning that quotes
the whole line, token included, before Django ever sees the request."""

from gunicorn.glogging import Logger

from calendarsync.logging import RedactFeedTokens, redact


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        # On the loggers themselves, so every handler gunicorn (or a --log-config)
        # gives them writes only redacted records.
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactFeedTokens) for f in log.filters):
                log.addFilter(RedactFeedTokens())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in list(atoms.items()):
            if isinstance(value, str):
                atoms[key] = redact(value)
        return atoms
