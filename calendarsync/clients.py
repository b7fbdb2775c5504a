"""Which kind of application fetched a feed, from its User-Agent."""

from calendarsync.models import FeedFetch

# First match wins; the order puts specific products before generic libraries.
PATTERNS = [
    ("google-calendar-importer", FeedFetch.Client.GOOGLE),
    ("googlebot", FeedFetch.Client.GOOGLE),
    ("dataaccessd", FeedFetch.Client.APPLE_IOS),
    ("ios/", FeedFetch.Client.APPLE_IOS),
    ("calendaragent", FeedFetch.Client.APPLE_MAC),
    ("macos", FeedFetch.Client.APPLE_MAC),
    ("outlook", FeedFetch.Client.OUTLOOK),
    ("microsoft office", FeedFetch.Client.OUTLOOK),
    ("exchange", FeedFetch.Client.OUTLOOK),
    ("thunderbird", FeedFetch.Client.THUNDERBIRD),
]


def client_family(user_agent: str) -> str:
    """Google Calendar, iPhone, Mac, Outlook, Thunderbird or other."""
    agent = (user_agent or "").lower()
    for needle, family in PATTERNS:
        if needle in agent:
            return family
    return FeedFetch.Client.OTHER
