"""Calendar account passwords at rest (``calendarsync.crypto``)."""

import pytest

from calendarsync import crypto


def test_a_password_is_stored_encrypted_and_only_the_key_opens_it(settings):
    token = crypto.encrypt("app-password-1")
    assert "app-password-1" not in token
    assert crypto.decrypt(token) == "app-password-1"

    # The database alone (another installation's key) cannot use it.
    settings.CALENDAR_ACCOUNT_KEY = "some-other-installations-key-0123456789"
    with pytest.raises(crypto.CredentialError, match="enter it again"):
        crypto.decrypt(token)


def test_rotating_the_key_keeps_stored_passwords_readable(settings):
    settings.CALENDAR_ACCOUNT_KEY = "the-old-key-0123456789-0123456789"
    token = crypto.encrypt("app-password-2")

    settings.CALENDAR_ACCOUNT_KEY = "the-new-key-0123456789-0123456789"
    settings.CALENDAR_ACCOUNT_KEY_FALLBACKS = ["the-old-key-0123456789-0123456789"]
    assert crypto.decrypt(token) == "app-password-2"
    rotated = crypto.reencrypt(token)

    settings.CALENDAR_ACCOUNT_KEY_FALLBACKS = []
    assert crypto.decrypt(rotated) == "app-password-2"
    with pytest.raises(crypto.CredentialError):
        crypto.decrypt(token)


def test_without_a_key_nothing_is_encrypted(settings):
    settings.CALENDAR_ACCOUNT_KEY = ""
    assert not crypto.configured()
    with pytest.raises(crypto.CredentialError, match="CALENDAR_ACCOUNT_KEY"):
        crypto.encrypt("app-password-3")
