"""A run lists the calendar only when something may have changed there
(``CalendarAccount.calendar_tag``, the server's sync-token or ctag), against both
real CalDAV servers: a change in Tend alone costs one small request and the
writes; a change made on the server still makes the run list and restore it;
after a failure and at the nightly reconcile a run lists whatever the tag."""

from django.core.management import call_command
from django.utils import timezone

from calendarsync import push
from calendarsync.models import CalendarAccount, PushedEvent
from tests.calendarsync.test_push import age
from tests.factories import (
    change_appointment,
    connect_calendar_account_to,
    local,
    make_appointment,
)


def test_a_run_lists_the_calendar_only_when_it_may_have_changed_there(
    clinician, caldav_server
):
    account = connect_calendar_account_to(clinician, caldav_server)
    practice = clinician.practice
    appointment = make_appointment(clinician, start=local(practice, days=1, hour=9))
    other = make_appointment(clinician, start=local(practice, days=2, hour=9))
    age()

    first = push.reconcile(account)
    assert first.listed and first.created == 2
    account.refresh_from_db()
    assert account.calendar_tag

    # A change in Tend only: Tend's record stands for the listing.
    change_appointment(
        appointment,
        start=local(practice, days=1, hour=11),
        end=local(practice, days=1, hour=12),
    )
    age()
    moved = push.reconcile(account)
    assert not moved.listed and moved.updated >= 1
    assert not push.reconcile(account).listed

    # A change on the server moves the tag: the run lists, and puts it back.
    row = PushedEvent.objects.get(account=account, uid=str(other.uid))
    with push.client_for(account) as client:
        client.delete(row.href, etag=None)
    restored = push.reconcile(account)
    assert restored.listed and restored.restored == 1

    # The nightly reconcile lists whatever the tag says.
    call_command("push_reconcile_all", verbosity=0)
    assert CalendarAccount.objects.get(pk=account.pk).calendar_tag
    account.calendar_tag = "stale"
    account.save(update_fields=["calendar_tag"])
    assert push.reconcile(account).listed
    account.refresh_from_db()
    assert account.calendar_tag not in ("", "stale")


def test_after_a_failure_the_next_run_lists(clinician, radicale):
    account = connect_calendar_account_to(clinician, radicale)
    make_appointment(clinician)
    age()
    push.reconcile(account)
    account.refresh_from_db()
    assert account.calendar_tag

    CalendarAccount.objects.filter(pk=account.pk).update(
        calendar_url=account.calendar_url.replace("/tend-", "/gone-")
    )
    account.refresh_from_db()
    assert push.reconcile(account, now=timezone.now()).error is not None
    account.refresh_from_db()
    assert account.calendar_tag == ""
