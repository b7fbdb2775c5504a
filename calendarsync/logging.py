"""Keep calendar feed secrets out of every log line."""

import logging
import re

# A feed path is /calendar/<token>.ics; the token is the credential.
FEED_TOKEN_PATTERN = re.compile(r"(/calendar/)[^/\s\"'?]+?(\.ics)")
REDACTED = r"\1[redacted]\2"


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
        if request is not None and FEED_TOKEN_PATTERN.search(
            getattr(request, "path", "")
        ):
            # django.request attaches the request; formatters may print it.
            record.request = "<feed request>"
        return True
