"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
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
