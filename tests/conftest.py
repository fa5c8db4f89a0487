"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from hall import config as hall_config

# Real Redis servers for any test folder: redis_url, redis_prefix (see tests/support/redis.py).
pytest_plugins = ("tests.support.redis",)

# In CI the property tests draw the same examples every run: a red build then means a change
# broke something, not that a new seed found an old bug. Local runs keep exploring new seeds.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def default_config() -> hall_config.HallConfig:
    """The demo county hall of config/default.toml."""
    return hall_config.load(ROOT / "config" / "default.toml")


@pytest.fixture(scope="session", autouse=True)
def voice_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache of spoken segments for the run (``HALL_VOICE_CACHE``, which ``hall serve`` and
    tests.api.conftest.make_app read): each server renders only what none before it did, where a
    cold cache costs every app started about a second of background synthesis. Tests of the
    cache itself give their service a directory of its own."""
    path = tmp_path_factory.mktemp("voice-cache")
    before = os.environ.get("HALL_VOICE_CACHE")
    os.environ["HALL_VOICE_CACHE"] = str(path)
    yield path
    if before is None:
        os.environ.pop("HALL_VOICE_CACHE", None)
    else:
        os.environ["HALL_VOICE_CACHE"] = before
