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


BUSY_UID_SALT = "tend.calendarsync.busy-uid"
BUSY_UID_HEX = 32


def busy_uid_stem(uid: str) -> str:
    """The stem of an appointment's UID in busy-only calendars (``ical.event_uid``
    adds ``@busy.tend``): 128 bits of an HMAC of the appointment's uid under the
    current ``CALENDAR_FEED_KEY``. The same for every request and every busy-only
    link, and unlike the appointment's own UID, so a phone subscribed to both the
    personal and the busy-only calendar keeps both events, and nobody holding the
    busy-only calendar can tell which appointment a block is. Rotating the key
    renews every busy-only UID once: subscribed clients drop the old blocks and
    take the new ones with the next fetch."""
    digest = salted_hmac(
        BUSY_UID_SALT, uid, secret=settings.CALENDAR_FEED_KEY, algorithm="sha256"
    ).hexdigest()
    return digest[:BUSY_UID_HEX]
