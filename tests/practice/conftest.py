"""Fixtures for the practice app: network restrictions and a second administrator."""

import pytest

from practice.models import AllowedNetwork, Role
from tests.factories import make_user


@pytest.fixture
def restrict():
    """Limit a practice to the given networks (straight to the table, no audit)."""

    def do_restrict(practice, *cidrs):
        AllowedNetwork.objects.bulk_create(
            [AllowedNetwork(practice=practice, cidr=cidr) for cidr in cidrs]
        )

    return do_restrict


@pytest.fixture
def second_admin(practice):
    return make_user(
        practice, roles=[Role.ADMINISTRATOR], email="owner2@riverside.test"
    )
