"""Real Chromium: a passkey from registration to sign-in through the browser's
virtual authenticator, and an authenticator app set up and used on a phone."""

from base64 import b32decode

import pytest
from django_otp_webauthn.models import WebAuthnCredential

from practice.models import AuditEvent
from tests.support import browser_login, totp_code

pytestmark = pytest.mark.browser


def console_errors(page) -> list[str]:
    """Script errors and Content-Security-Policy violations on the console (not
    the browser's own request for /favicon.ico, which Tend does not serve)."""
    errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "Failed to load resource" not in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_a_passkey_from_registration_to_sign_in(page, live_server, settings, clinician):
    # The relying party is SITE_URL's host: here the live server, on localhost
    # (a secure context over plain http).
    settings.SITE_URL = live_server.url
    errors = console_errors(page)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    browser_login(page, clinician.email)
    page.wait_for_url("**/scheduling/")
    page.goto("/settings/two-factor/")
    page.get_by_role("button", name="Add a passkey").click()
    # The page reloads with the passkey listed and the recovery codes, once.
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    assert page.get_by_text("Passkey added").is_visible()
    passkey = WebAuthnCredential.objects.get(user=clinician)
    assert passkey.confirmed
    held = cdp.send(
        "WebAuthn.getCredentials",
        {"authenticatorId": authenticator["authenticatorId"]},
    )["credentials"]
    assert [(c["rpId"], c["isResidentCredential"]) for c in held] == [
        ("localhost", True)
    ]

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")
    browser_login(page, clinician.email)
    page.wait_for_url("**/login/verify/")
    page.get_by_role("button", name="Use your passkey").click()
    page.wait_for_url("**/scheduling/")
    assert page.get_by_role("link", name="Settings").is_visible()
    passed = AuditEvent.objects.filter(
        kind=AuditEvent.Kind.TWO_FACTOR_PASSED, actor=clinician
    ).get()
    assert passed.details == {"method": "passkey", "for": "sign-in"}
    assert errors == []


def test_an_authenticator_app_on_a_phone(phone_page, clinician):
    page = phone_page
    errors = console_errors(page)
    browser_login(page, clinician.email)
    page.wait_for_url("**/scheduling/")
    page.goto("/settings/")
    page.locator(".tile", has_text="Two-factor sign-in").click()
    page.wait_for_url("**/settings/two-factor/")
    assert page.get_by_role("img", name="QR code").is_visible()
    # Typing the key instead of scanning it.
    page.get_by_text("Can't scan? Type this key").click()
    key = b32decode(page.locator("#totp-key").inner_text().replace(" ", "")).hex()
    page.get_by_label("Code from the app").fill(totp_code(key, steps_ahead=0))
    page.get_by_role("button", name="Turn on").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    assert page.get_by_text("Your authenticator app is set up.").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login/")
    browser_login(page, clinician.email)
    page.wait_for_url("**/login/verify/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.get_by_label("Code").fill(totp_code(key))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/scheduling/")
    assert errors == []
