"""Fixtures for the practice app: network restrictions and client addresses."""

import pytest

from practice.models import AllowedNetwork

OFFICE = "10.20.0.0/16"
OFFICE_IP = "10.20.0.7"
ELSEWHERE_IP = "203.0.113.50"


@pytest.fixture
def restrict():
    """Limit a practice to the given networks (straight to the table, no audit)."""

    def do_restrict(practice, *cidrs):
        AllowedNetwork.objects.bulk_create(
            [AllowedNetwork(practice=practice, cidr=cidr) for cidr in cidrs]
        )

    return do_restrict


@pytest.fixture
def second_admin(practice, make_user):
    from practice.models import Role

    return make_user(practice, Role.ADMINISTRATOR, email="owner2@riverside.test")
