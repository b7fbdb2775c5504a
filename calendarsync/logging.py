"""Keep calendar feed secrets out of every log line."""

import logging
import re

# A feed path is /calendar/<token>.ics and the token is the credential. Redact
# whatever follows /calendar/ (also in malformed or truncated paths), up to the
# end of the path.
FEED_TOKEN_PATTERN = re.compile(r"(/calendar/)(?!\[redacted\])[^\s\"'?#<>]+")
REDACTED = r"\1[redacted]"


def redact(text: str) -> str:
    return FEED_TOKEN_PATTERN.sub(REDACTED, text)


class RedactFeedTokens(logging.Filter):
    """Rewrite a record's message and arguments so no feed token survives."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        request = getattr(record, "request", None)
        path = getattr(request, "path", "")
        if request is not None and isinstance(path, str) and "/calendar/" in path:
            # django.request attaches the request; formatters may print it.
            record.request = "<feed request>"
        return True
