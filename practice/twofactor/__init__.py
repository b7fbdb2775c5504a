"""Two-factor sign-in: the second step after the password (an authenticator app
code, a recovery code or a passkey), the practice's requirement, the lockout on
wrong codes, and re-authentication before sensitive administrator actions.

Built on django-otp (TOTP and static recovery codes) and django-otp-webauthn
(passkeys); nothing here does cryptography of its own."""
