"""Fixtures for calendar sync: the practice's locations, made by ``tests.factories``."""

import pytest

from tests.factories import make_location


@pytest.fixture
def office(practice):
    return make_location(practice, name="Main Street Office")


@pytest.fixture
def telehealth(practice):
    return make_location(practice, name="Telehealth", telehealth=True)
