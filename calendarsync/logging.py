"""Keep calendar feed secrets out of every log line."""

import logging
import re

# A feed path is /calendar/<token>.ics and the token is the credential. Redact
# whatever follows /calendar/ (also in malformed or truncated paths, in any case
# and with the slashes percent-encoded, as a mistyped or re-encoded link arrives),
# up to the end of the path.
FEED_TOKEN_PATTERN = re.compile(
    r"((?:/|%2f)calendar(?:/|%2f))(?!\[redacted\])[^\s\"'?#<>]+", re.IGNORECASE
)
REDACTED = r"\1[redacted]"


def redact(text: str) -> str:
    return FEED_TOKEN_PATTERN.sub(REDACTED, text)


class RedactFeedTokens(logging.Filter):
    """Rewrite a record's message, arguments and traceback so no feed token
    survives."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            # A formatter prints the cached text rather than formatting again; the
            # exception's message may quote the request line.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        request = getattr(record, "request", None)
        path = getattr(request, "path", "")
        if request is not None and isinstance(path, str) and redact(path) != path:
            # django.request attaches the request; formatters may print it.
            record.request = "<feed request>"
        return True
