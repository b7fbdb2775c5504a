"""Every sign-in, however it happened, notes whether the session owes a second
step. The receiver only hands the signal to the session helpers."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from practice.twofactor.session import sign_in_mark


@receiver(user_logged_in)
def note_second_step(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        sign_in_mark(request, user)
