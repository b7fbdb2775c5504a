"""The demo practices' personal busy time: blocks in the coming days for every
clinician, one stale calendar, refreshed without change on a second run, and
refused under production settings like the rest of the demo data."""

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from practice.models import User
from scheduling.models import BusyCalendar, BusyTime

pytestmark = pytest.mark.django_db


def busy_rows():
    return sorted(
        BusyTime.objects.values_list(
            "calendar__name", "clinician__email", "start", "end", "tentative"
        )
    )


def test_demo_clinicians_have_personal_busy_time_in_the_coming_days(login):
    call_command("seed_demo")
    now = timezone.now()
    clinicians = User.objects.filter(
        practice__name="Riverside Counseling", is_clinician=True, is_active=True
    )
    assert clinicians.count() >= 3
    for clinician in clinicians:
        times = BusyTime.objects.filter(
            clinician=clinician, practice=clinician.practice
        )
        assert times.filter(start__gt=now).count() >= 4, clinician.email
        assert times.filter(tentative=True).exists()
    stale = [c for c in BusyCalendar.objects.all() if c.is_stale()]
    assert [calendar.name for calendar in stale] == ["Family", "Family"]
    before = busy_rows()
    call_command("seed_demo")
    assert busy_rows() == before
    # The agenda of a demo clinician shows the blocks.
    rivera = User.objects.get(email="rivera@riverside.test")
    html = login(rivera).get("/scheduling/?view=agenda").content.decode()
    assert "Busy (personal)" in html and "Busy (personal, tentative)" in html


def test_demo_busy_time_is_refused_in_production(settings):
    settings.SECURE_SSL_REDIRECT = True  # a production configuration
    with pytest.raises(CommandError):
        call_command("seed_demo")
    assert not BusyCalendar.objects.exists()
