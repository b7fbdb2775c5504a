"""Real-client conformance: every parser must be installed; a missing one fails."""

import pytest

from tests.conformance.harness import IcsServer, Subscriber, ToolMissing, check_tools


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "conformance: drives real calendar parsers (node, libical, vdirsyncer, khal); "
        "a few seconds each",
    )


@pytest.fixture(scope="session", autouse=True)
def _parsers_installed():
    try:
        check_tools()
    except ToolMissing as error:
        pytest.fail(f"calendar parsers missing:\n{error}", pytrace=False)


@pytest.fixture
def ics_server():
    """A loopback HTTP server whose `.body` is the feed; `.url` to subscribe to."""
    with IcsServer() as server:
        yield server


@pytest.fixture
def subscriber(tmp_path):
    """Make a vdirsyncer+khal subscription to a URL, kept in a temporary folder."""

    def subscribe(url: str) -> Subscriber:
        return Subscriber(url, tmp_path / "subscriber")

    return subscribe
