"""Feed link tokens.

A token is ``<public id><secret>``: the public id (12 characters) finds the
``FeedLink`` row; the secret (43 characters, 256 bits) is an HMAC-SHA256, keyed by
``CALENDAR_FEED_KEY``, over the owner's id, the calendar's scope and clinician, the
link id and the owner's random ``secret_salt``.

Why a token stops working: Reset and Enable replace the salt and the link rows, so
every earlier token fails the HMAC or finds no row. Why a leaked database is not
enough: the key is not in it. Rotating ``SECRET_KEY`` changes nothing here; rotating
``CALENDAR_FEED_KEY`` keeps old links alive while the old key is listed in
``CALENDAR_FEED_KEY_FALLBACKS``.
"""

import base64
import re

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

PUBLIC_ID_LENGTH = 12
SECRET_LENGTH = 43
TOKEN_LENGTH = PUBLIC_ID_LENGTH + SECRET_LENGTH
TOKEN_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}")
KEY_SALT = "tend.calendarsync.feed-link"


def _secret(
    *,
    key: str,
    user_id: int,
    scope: str,
    clinician_id: int | None,
    public_id: str,
    salt: bytes,
) -> str:
    message = "|".join(
        [str(user_id), scope, str(clinician_id or ""), public_id, bytes(salt).hex()]
    )
    digest = salted_hmac(KEY_SALT, message, secret=key, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def make_token(
    *, user_id: int, scope: str, clinician_id: int | None, public_id: str, salt: bytes
) -> str:
    """The link token for one calendar, with the current key."""
    return public_id + _secret(
        key=settings.CALENDAR_FEED_KEY,
        user_id=user_id,
        scope=scope,
        clinician_id=clinician_id,
        public_id=public_id,
        salt=salt,
    )


def split_token(token: str) -> tuple[str, str] | None:
    """(public id, secret) of a well-formed token, or None."""
    if not TOKEN_PATTERN.fullmatch(token or ""):
        return None
    return token[:PUBLIC_ID_LENGTH], token[PUBLIC_ID_LENGTH:]


def check_secret(
    *,
    secret: str,
    user_id: int,
    scope: str,
    clinician_id: int | None,
    public_id: str,
    salt: bytes,
) -> bool:
    """True when ``secret`` matches under the current key or one of its fallbacks.
    Every key is tried, so the time taken does not depend on which one matched."""
    keys = [settings.CALENDAR_FEED_KEY, *settings.CALENDAR_FEED_KEY_FALLBACKS]
    matched = False
    for key in keys:
        expected = _secret(
            key=key,
            user_id=user_id,
            scope=scope,
            clinician_id=clinician_id,
            public_id=public_id,
            salt=salt,
        )
        matched |= constant_time_compare(expected, secret)
    return matched
