"""The README and .env.example name every environment variable the settings read."""

import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def settings_variables() -> set[str]:
    source = (BASE_DIR / "config" / "settings.py").read_text()
    return set(re.findall(r'env\.[a-z_]+\(\s*"([A-Z][A-Z0-9_]+)"', source))


def test_settings_read_the_expected_core_variables():
    found = settings_variables()
    assert {"SECRET_KEY", "DATABASE_URL", "CACHE_URL", "TRUSTED_PROXY_COUNT"} <= found


def test_readme_table_lists_every_variable():
    readme = (BASE_DIR / "README.md").read_text()
    rows = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.MULTILINE))
    assert settings_variables() - rows == set()
    assert rows - settings_variables() == set(), "README documents a stale variable"


def test_env_example_lists_every_variable_with_a_placeholder():
    example = (BASE_DIR / ".env.example").read_text()
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", example, re.MULTILINE))
    assert settings_variables() - set(values) == set()
    assert values["DEBUG"] == "false"
    assert values["DEMO_DATA_ALLOWED"] == "false"
    assert values["SECURE_SSL_REDIRECT"] == "true"
    assert values["SECRET_KEY"].startswith("replace-")
    assert values["CALENDAR_FEED_KEY"].startswith("replace-")
