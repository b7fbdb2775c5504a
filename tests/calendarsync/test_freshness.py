"""What users see of their subscribed clients: who read each link and when, in the
words of the sync page, with client-specific advice; and the fetch audit that
administrators (only they, only their practice's) can read."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from calendarsync.models import FeedFetch, FeedLink, FeedScope
from calendarsync.services import address_network
from calendarsync.templatetags.calendarsync import ago
from practice.models import AuditEvent
from tests.factories import feed_links

SYNC = "/settings/sync/"
AUDIT = "/settings/audit/"


def fetched(link, client, *, hours=0, minutes=0, first_days=30):
    """A fetch record from weeks of polling (straight to the table: time passes)."""
    now = timezone.now()
    return FeedFetch.objects.create(
        link=link,
        client=client,
        first_fetched_at=now - timedelta(days=first_days),
        last_fetched_at=now - timedelta(hours=hours, minutes=minutes),
        fetch_count=12,
        last_address="203.0.113.9",
    )


@pytest.mark.parametrize(
    ("elapsed", "words"),
    [
        (timedelta(hours=7, minutes=3), "7\xa0hours ago"),
        (timedelta(minutes=12, seconds=5), "12\xa0minutes ago"),
        (timedelta(seconds=20), "just now"),
        (timedelta(days=3, hours=2), "3\xa0days ago"),
    ],
)
def test_ago_names_the_largest_unit_only(elapsed, words):
    assert ago(timezone.now() - elapsed) == words


def test_each_link_says_who_reads_it_and_gives_honest_advice(login, clinician):
    feed_links(clinician)
    link = FeedLink.objects.get(scope=FeedScope.PERSONAL, clinician=clinician)
    fetched(link, FeedFetch.Client.GOOGLE, hours=7, minutes=3)
    fetched(link, FeedFetch.Client.APPLE_IOS, minutes=12, first_days=2)
    fetched(link, FeedFetch.Client.OUTLOOK, hours=1)
    html = login(clinician).get(SYNC).content.decode()

    assert "<strong>Google Calendar</strong> · last fetched 7\xa0hours ago" in html
    assert "<strong>iPhone or iPad</strong> · last fetched 12\xa0minutes ago" in html
    # Newest first, whatever order the applications first appeared in.
    names = ["<strong>iPhone or iPad</strong>", "<strong>Outlook</strong>"]
    names.append("<strong>Google Calendar</strong>")
    assert [html.index(name) for name in names] == sorted(
        html.index(name) for name in names
    )
    assert "often only every 8 to 24 hours" in html
    assert "cannot be made to refresh sooner" in html
    assert "subscribe on your phone itself and set it to fetch every 15 minutes" in html
    assert "Outlook on a computer follows our refresh hint" in html
    # Only the iPhone is new this week: one badge, with what to do about it.
    assert html.count('<span class="badge warn">new client</span>') == 1
    assert "If it wasn't you, use Reset Access below." in html


def test_a_link_nobody_read_says_never_fetched(login, clinician):
    html = login(clinician).get(SYNC).content.decode()
    assert "Never fetched" in html
    assert "last fetched" not in html


def test_a_real_poll_appears_on_the_page_and_in_the_audit(
    client, login, admin_user, clinician
):
    path = feed_links(clinician)[(FeedScope.PERSONAL, clinician.pk)]
    client.get(
        path,
        headers={"User-Agent": "Google-Calendar-Importer"},
        REMOTE_ADDR="192.0.2.44",
    )
    html = login(clinician).get(SYNC).content.decode()
    assert "<strong>Google Calendar</strong> · last fetched just now" in html
    assert '<span class="badge warn">new client</span>' in html

    (event,) = AuditEvent.objects.filter(kind=AuditEvent.Kind.FEED_FETCHED)
    assert event.target_user == clinician
    assert event.client_ip == "192.0.2.44"
    assert event.details["client_name"] == "Google Calendar"
    assert event.details["calendar_name"] == clinician.label
    assert event.details["status"] == 200
    audit = login(admin_user).get(AUDIT).content.decode()
    assert "A calendar app fetched a calendar link of Dana Rivera, LCSW" in audit
    assert "client name: Google Calendar" in audit
    assert "192.0.2.44" in audit


def test_only_administrators_of_the_practice_read_the_fetch_audit(
    client, login, clinician, scheduler, outsider_admin
):
    path = feed_links(clinician)[(FeedScope.PERSONAL, clinician.pk)]
    client.get(path, headers={"User-Agent": "Google-Calendar-Importer"})
    assert login(scheduler).get(AUDIT).status_code == 403
    assert login(clinician).get(AUDIT).status_code == 403
    other = login(outsider_admin).get(AUDIT)
    assert other.status_code == 200
    assert "Calendar feed fetched</td>" not in other.content.decode()


def test_a_known_client_from_a_new_network_is_flagged(client, login, clinician):
    path = feed_links(clinician)[(FeedScope.PERSONAL, clinician.pk)]
    iphone = {"User-Agent": "iOS/18.1 (22B83) dataaccessd/1.0"}
    client.get(path, headers=iphone, REMOTE_ADDR="198.51.100.7")
    fetch = FeedFetch.objects.get()
    assert fetch.networks == ["198.51.0.0/16"]
    # Old enough not to be new any more (straight to the table: time passes).
    FeedFetch.objects.update(first_fetched_at=timezone.now() - timedelta(days=30))
    html = login(clinician).get(SYNC).content.decode()
    assert "new client" not in html

    cache.clear()  # the next poll may be recorded at once
    client.get(path, headers=iphone, REMOTE_ADDR="198.51.200.8")  # same /16
    fetch.refresh_from_db()
    assert fetch.new_network_at is None
    assert not fetch.is_new_client

    cache.clear()
    client.get(path, headers=iphone, REMOTE_ADDR="203.0.113.50")
    fetch.refresh_from_db()
    assert fetch.networks == ["198.51.0.0/16", "203.0.0.0/16"]
    assert fetch.is_new_client
    assert (
        '<span class="badge warn">new client</span>'
        in login(clinician).get(SYNC).content.decode()
    )
    latest = AuditEvent.objects.filter(kind=AuditEvent.Kind.FEED_FETCHED).first()
    assert latest.details["new_network"] is True
    assert latest.client_ip == "203.0.113.50"


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("192.0.2.1", "192.0.0.0/16"),
        ("2001:db8:1234::1", "2001:db8::/32"),
        (None, None),
        ("not an address", None),
    ],
)
def test_address_network(address, network):
    assert address_network(address) == network
