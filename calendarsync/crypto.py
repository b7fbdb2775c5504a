"""Calendar account credentials, encrypted at rest.

Each password is a Fernet token under ``CALENDAR_ACCOUNT_KEY`` (earlier keys in
``CALENDAR_ACCOUNT_KEY_FALLBACKS`` still decrypt, for rotation). The key lives in
the environment only, so a copy of the database alone cannot use a credential.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

NO_KEY = (
    "Calendar accounts cannot be connected on this server yet: its operator has "
    "not set CALENDAR_ACCOUNT_KEY."
)
# Written to follow "Failing since 10:42: " (a push run records it).
UNREADABLE = "the saved password can no longer be read — enter it again"


class CredentialError(Exception):
    """No key is configured, or the stored credential was encrypted under a key
    that is no longer configured."""


def _fernet(key: str) -> Fernet:
    # Any long random string works as a key, as for the other keys.
    digest = hashlib.sha256(key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> MultiFernet:
    key = settings.CALENDAR_ACCOUNT_KEY
    if not key:
        raise CredentialError(NO_KEY)
    fallbacks = [k for k in settings.CALENDAR_ACCOUNT_KEY_FALLBACKS if k]
    return MultiFernet([_fernet(k) for k in [key, *fallbacks]])


def configured() -> bool:
    return bool(settings.CALENDAR_ACCOUNT_KEY)


def encrypt(secret: str) -> str:
    return _keys().encrypt(secret.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _keys().decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise CredentialError(UNREADABLE) from None


def reencrypt(token: str) -> str:
    """The token under the current key (after a rotation)."""
    return _keys().rotate(token.encode("ascii")).decode("ascii")
