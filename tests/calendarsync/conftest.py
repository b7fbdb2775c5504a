"""Fixtures for calendar sync: the practice's locations, made by ``tests.factories``."""

import pytest

from tests.factories import make_location


@pytest.fixture
def office(practice):
    return make_location(practice, name="Main Street Office")


@pytest.fixture
def telehealth(practice):
    return make_location(practice, name="Telehealth", telehealth=True)


@pytest.fixture
def calendar_server():
    """A calendar host on loopback whose answers each test sets
    (``tests.calendarsync.busy_support``)."""
    from tests.calendarsync.busy_support import CalendarServer

    server = CalendarServer()
    yield server
    server.close()
