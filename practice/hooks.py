"""Signals through which the apps above ``practice`` react to it.

``practice`` is the ground floor: it imports no other Tend app. Where one of its
actions concerns the apps built on it, it sends a signal here and they connect
their receivers in their ``AppConfig.ready`` (in ``INSTALLED_APPS`` order), as
``django.contrib.auth`` announces sign-ins without knowing who listens. Where a page
of its own must show their data (the audit log's patients), it asks through a signal
and the receivers answer with their return value.
"""

from dataclasses import dataclass

from django.dispatch import Signal


@dataclass(frozen=True)
class AuditPatient:
    """A patient as the audit log page shows one: a name and the patient's page."""

    name: str
    url: str


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

# The audit log names patients by id only (``AuditEvent.patient_ids``); the app that
# owns patients tells the log page who they are. sender: None; practice, patient_ids.
# A receiver returns {patient id: AuditPatient}; ids it does not know are left out.
audit_patients_described = Signal()

# The audit log's patient filter: which patients of the practice match this text.
# sender: None; practice, text, limit. A receiver returns a list of at most ``limit``
# + 1 patient ids (one more than asked says "too many").
audit_patients_matching = Signal()

# Settings → Users shows each user's effective calendar sync state; the app that owns
# calendar access says whose is turned off. sender: None; practice. A receiver
# returns the set of ids of the practice's users whose access is disabled.
calendar_sync_disabled_users = Signal()
