"""Fixtures for calendar sync: the practice's locations, made by ``tests.factories``."""

import pytest

from tests.factories import make_location
from tests.servers import RadicaleServer, XandikosServer


@pytest.fixture
def office(practice):
    return make_location(practice, name="Main Street Office")


@pytest.fixture
def telehealth(practice):
    return make_location(practice, name="Telehealth", telehealth=True)


@pytest.fixture(scope="session")
def radicale(tmp_path_factory):
    server = RadicaleServer(tmp_path_factory.mktemp("radicale"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def xandikos(tmp_path_factory):
    server = XandikosServer(tmp_path_factory.mktemp("xandikos"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["radicale", "xandikos"])
def caldav_server(request):
    """Each real CalDAV server in turn."""
    return request.getfixturevalue(request.param)
