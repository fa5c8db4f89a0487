"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from hall import config as hall_config

# Real Redis servers for any test folder: redis_url, redis_prefix (see tests/support/redis.py).
pytest_plugins = ("tests.support.redis",)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def default_config() -> hall_config.HallConfig:
    """The demo county hall of config/default.toml."""
    return hall_config.load(ROOT / "config" / "default.toml")
