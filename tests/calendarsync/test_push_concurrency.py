"""Two runs for one account at the same moment (each on its own database
connection, as two workers would be): nothing is written twice and nothing is
lost."""

import threading

import pytest

from calendarsync import push
from calendarsync.models import CalendarAccount, PushedEvent
from tests.factories import (
    connect_calendar_account_to,
    local,
    make_appointment,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_simultaneous_runs_write_each_event_once(clinician, radicale, settings):
    # The runs queued on commit are kept, not run, so the two below are the first.
    settings.TASKS = {
        "default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}
    }
    account = connect_calendar_account_to(clinician, radicale)
    uids = {
        str(make_appointment(clinician, start=local(clinician.practice, days=d)).uid)
        for d in range(1, 6)
    }
    barrier = threading.Barrier(2)
    results = []

    def run():
        from django.db import connections

        try:
            copy = CalendarAccount.objects.select_related("practice", "user").get(
                pk=account.pk
            )
            barrier.wait()
            results.append(push.reconcile(copy))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 2
    assert all(result.error is None for result in results)
    # One run wrote everything; the other found the account held, or ran after
    # it and found nothing to do.
    assert sorted(result.created for result in results) == [0, 5]
    assert sum(result.writes for result in results) == 5
    rows = PushedEvent.objects.filter(account=account)
    assert {row.uid for row in rows} == uids
    with push.client_for(account) as client:
        assert len(client.resources(account.calendar_url)) == 5
    assert push.reconcile(account).writes == 0
