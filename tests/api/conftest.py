"""An app on the default hall with a real SQLite journal in a temp dir, and ways to act in it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from hall.api.app import create_app
from hall.settings import DEFAULT_CONFIG, Settings

HALL = "demo-county"
BASE = f"/api/halls/{HALL}"
KIOSK = {"Authorization": "Bearer demo-kiosk-token"}
PASSWORD = "hall-demo"


def make_app(data_dir: Path, config: Path = DEFAULT_CONFIG) -> Litestar:
    cache = os.environ.get("HALL_VOICE_CACHE")  # the run's (tests/conftest.py)
    voice_cache = Path(cache) if cache else None
    return create_app(Settings(configs=(config,), data_dir=data_dir, voice_cache=voice_cache))


@pytest.fixture
def app(tmp_path: Path) -> Litestar:
    return make_app(tmp_path)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app) as client:
        yield client


def issue(client: TestClient[Litestar], category: str = "general", **extra: Any) -> Any:
    response = client.post(f"{BASE}/tickets", json={"category": category, **extra}, headers=KIOSK)
    assert response.status_code == 201, response.text
    return response.json()


def login(client: TestClient[Litestar], window: str, username: str = "zhangwei") -> dict[str, str]:
    response = client.post(
        f"{BASE}/windows/{window}/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def act(
    client: TestClient[Litestar],
    window: str,
    action: str,
    auth: dict[str, str],
    body: Any = None,
    status: int = 200,
) -> Any:
    response = client.post(f"{BASE}/windows/{window}/{action}", json=body, headers=auth)
    assert response.status_code == status, response.text
    return response.json()
