"""Demo data: every demo user gets calendar sync, so `make run` shows working links."""

from calendarsync.services import feed_access_ensure
from practice.models import Practice, User


def seed_calendarsync(*, riverside: Practice, harbor: Practice) -> None:
    """Give every user of the demo practices sync access (idempotent: existing links
    stay as they are)."""
    for practice in (riverside, harbor):
        for user in User.objects.filter(practice=practice, is_active=True):
            feed_access_ensure(user=user)
