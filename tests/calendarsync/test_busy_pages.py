"""Settings → Sync: "Personal calendars as busy time" — adding, the state in words,
Refresh now, Remove, and a calendar of the connected account (real Radicale)."""

import re
from datetime import timedelta

import caldav
from django.utils import timezone

from calendarsync.models import BusySource
from calendarsync.selectors import busy_source_state
from scheduling.models import BusyCalendar, BusyTime
from tests.calendarsync.busy_support import Answer, vcalendar, vevent
from tests.factories import connect_calendar_account_to, local

SYNC = "/settings/sync/"
ADD = "/settings/sync/busy-time/"
ACCOUNT = "/settings/sync/busy-time/account/"
SECRET_PATH = "/calendar/ical/dana%40example.com/private-0f9e8d7c6b5a/basic.ics"


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def personal(practice) -> bytes:
    start = local(practice, days=1, hour=18)
    return vcalendar(
        vevent(
            "choir@example.org",
            start,
            start + timedelta(hours=2),
            extra=("SUMMARY:Choir rehearsal", "RRULE:FREQ=WEEKLY;COUNT=3"),
        ),
        name="Family",
    )


def add(client, calendar_server, clinician, **data):
    calendar_server.routes[SECRET_PATH] = Answer(body=personal(clinician.practice))
    return client.post(ADD, {"url": calendar_server.url(SECRET_PATH), **data})


def test_the_section_is_for_clinicians_and_says_only_busy_times_are_kept(
    login, clinician, scheduler
):
    html = text(login(clinician).get(SYNC))
    assert "Personal calendars as busy time" in html
    assert "never titles, places, people or notes" in html
    assert "Secret address in iCal format" in html
    assert "Public Calendar" in html and "ICS" in html

    assert "Personal calendars as busy time" not in text(login(scheduler).get(SYNC))


def test_adding_an_address_reads_it_and_shows_its_state(
    login, clinician, calendar_server
):
    client = login(clinician)

    response = add(client, calendar_server, clinician)

    assert response.status_code == 302
    page = text(client.get(SYNC))
    assert "“Family” is read as busy time: 3 busy times in the next 90 days." in page
    assert "Read just now · 3 busy times" in page
    assert "127.0.0.1:" in page and "/…" in page
    assert "private-0f9e8d7c6b5a" not in page and "Choir" not in page
    assert BusyTime.objects.filter(clinician=clinician).count() == 3


def test_a_given_name_is_kept(login, clinician, calendar_server):
    client = login(clinician)
    add(client, calendar_server, clinician, name="Kids' school")
    assert BusyCalendar.objects.get().name == "Kids' school"


def test_a_bad_address_is_refused_plainly_and_nothing_saved(
    login, clinician, calendar_server, settings
):
    client = login(clinician)
    calendar_server.routes["/gone.ics"] = Answer(404, b"Not found")

    cases = {
        "ftp://example.org/cal.ics": "starts with https:// or webcal://",
        calendar_server.url("/gone.ics"): (
            "Tend could not read that calendar: 404 — the address may have been "
            "reset: copy the new one."
        ),
    }
    for url, message in cases.items():
        response = client.post(ADD, {"url": url})
        assert response.status_code == 400
        assert message in text(response)

    settings.OUTBOUND_ALLOWED_NETWORKS = []
    response = add(client, calendar_server, clinician)
    assert response.status_code == 400
    assert "this machine itself, which Tend does not connect to" in text(response)
    assert not BusySource.objects.exists() and not BusyCalendar.objects.exists()


def test_the_state_says_when_a_calendar_fails_and_when_it_is_stale(
    login, clinician, calendar_server
):
    client = login(clinician)
    add(client, calendar_server, clinician)
    source = BusySource.objects.select_related("calendar", "practice", "owner").get()
    calendar_server.routes[SECRET_PATH] = Answer(404, b"Not found")

    client.post(f"/settings/sync/busy-time/{source.pk}/refresh/")

    source.refresh_from_db()
    when = timezone.localtime(source.failing_since, clinician.practice.zone)
    page = text(client.get(SYNC))
    assert (
        f"Failing since {when:%H:%M}: 404 — the address may have been reset: "
        "copy the new one · keeping the 3 busy times last read"
    ) in page
    assert BusyTime.objects.filter(clinician=clinician).count() == 3

    later = source.calendar.read_at + timedelta(days=1, hours=1)
    state = busy_source_state(source, now=later)
    assert state.startswith("Failing since ")
    assert "· Stale: not read since " in state


def test_refresh_now_reads_again_and_remove_forgets_everything(
    login, clinician, calendar_server
):
    client = login(clinician)
    add(client, calendar_server, clinician)
    source = BusySource.objects.get()
    reads = len(calendar_server.requests)

    client.post(f"/settings/sync/busy-time/{source.pk}/refresh/")
    assert len(calendar_server.requests) == reads + 1

    response = client.post(f"/settings/sync/busy-time/{source.pk}/remove/")
    assert response.status_code == 302
    assert "“Family” was removed" in text(client.get(SYNC))
    assert not BusySource.objects.exists()
    assert not BusyCalendar.objects.exists() and not BusyTime.objects.exists()


def test_nobody_else_can_refresh_or_remove_a_calendar(
    login, clinician, other_clinician, outsider_admin, calendar_server, client
):
    add(login(clinician), calendar_server, clinician)
    source = BusySource.objects.get()
    for someone in (other_clinician, outsider_admin):
        other = login(someone)
        for action in ("refresh", "remove"):
            response = other.post(f"/settings/sync/busy-time/{source.pk}/{action}/")
            assert response.status_code == 404
        assert "busy times" not in text(other.get(SYNC))
    assert BusySource.objects.filter(pk=source.pk).exists()


def test_a_calendar_of_the_account_is_chosen_from_a_list_without_tends_own(
    login, clinician, radicale
):
    account = connect_calendar_account_to(clinician, radicale)
    dav = caldav.DAVClient(
        url=radicale.url, username=radicale.username, password=radicale.password
    )
    partner = dav.principal().make_calendar(name="Partner's shifts")
    client = login(clinician)
    assert "Choose a calendar…" in text(client.get(SYNC))

    page = text(client.get(ACCOUNT))
    assert "Partner&#x27;s shifts" in page
    assert account.calendar_url not in page

    response = client.post(ACCOUNT, {"calendar": account.calendar_url})
    assert response.status_code == 400
    assert "never read back as busy time" in text(response)

    response = client.post(ACCOUNT, {"calendar": str(partner.url)})
    assert response.status_code == 302
    source = BusySource.objects.get()
    assert source.kind == "caldav" and source.calendar.name == "Partner's shifts"
    assert "Read just now · 0 busy times" in text(client.get(SYNC))


def test_the_page_makes_as_many_queries_for_five_calendars_as_for_one(
    login, clinician, calendar_server
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(clinician)
    add(client, calendar_server, clinician)
    client.get(SYNC)
    with CaptureQueriesContext(connection) as one:
        client.get(SYNC)
    for _ in range(4):
        add(client, calendar_server, clinician)
    with CaptureQueriesContext(connection) as five:
        page = text(client.get(SYNC))
    assert page.count("· 3 busy times") == 5
    assert len(five) == len(one)
