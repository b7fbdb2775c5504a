"""Signals through which the apps above ``practice`` react to it.

``practice`` is the ground floor: it imports no other Tend app. Where one of its
actions concerns the apps built on it, it sends a signal here and they connect
their receivers in their ``AppConfig.ready`` (in ``INSTALLED_APPS`` order), as
``django.contrib.auth`` announces sign-ins without knowing who listens.
"""

from django.dispatch import Signal

# A user's label (display name and credentials, as calendars name a clinician)
# changed. sender: the User class; user: the saved user.
user_label_changed = Signal()

# A user was deactivated or their roles changed: what they may reach, and who may
# reach their calendar, may have shrunk. Whatever stopped working must stay
# stopped if the change is undone later (reactivation, a role given back).
# sender: the User class; user: the saved user.
user_authority_changed = Signal()

# The demo practices were created or refreshed; each app adds its part.
# sender: None; riverside, harbor: the two practices.
demo_practices_seeded = Signal()
