"""A gunicorn logger whose access log never contains a calendar feed token."""

from gunicorn.glogging import Logger

from calendarsync.logging import redact


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in list(atoms.items()):
            if isinstance(value, str) and "/calendar/" in value:
                atoms[key] = redact(value)
        return atoms
