"""bench/region.py serves bench/city.py's halls from a region file of its own: the files it
writes load as a region whose halls are the city's, with the bench's logins added."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import msgspec
from argon2 import PasswordHasher

from hall.region import load_region

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import region as region_bench
from loadgen import KIOSK_TOKEN, PASSWORD


def test_the_city_s_halls_load_as_a_region_with_the_bench_s_logins(tmp_path: Path) -> None:
    configs = region_bench.write_region(tmp_path)
    region = load_region(tmp_path / "region.toml")
    assert sorted(c.hall.id for c in region.configs) == sorted(c.hall.id for c in configs)
    assert len(region.city.units) == 20  # the towns, with every village under one of them
    served = {c.hall.id: c for c in region.configs}
    hasher = PasswordHasher()
    for config in configs[:1] + configs[-1:]:  # the centre and a village
        loaded = served[config.hall.id]
        assert hasher.verify(loaded.staff[0].password_hash, PASSWORD)
        kiosk = loaded.device(region_bench.KIOSK)
        assert kiosk is not None
        assert kiosk.token_sha256 == hashlib.sha256(KIOSK_TOKEN.encode()).hexdigest()
        assert loaded.issuing.device_seconds == 0
        rest = {"staff": config.staff, "devices": config.devices, "issuing": config.issuing}
        assert msgspec.structs.replace(loaded, **rest) == config  # the hall itself unchanged
    supervisor = region.supervisor(region_bench.SUPERVISOR)
    assert supervisor is not None and hasher.verify(supervisor.password_hash, PASSWORD)
