"""The region file (hall/region.py): the demo region loads as a tree; each kind of mistake is a
ConfigError naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hall.config import ConfigError
from hall.region import load_region
from hall.settings import ROOT

CONFIG = ROOT / "config"
HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$++4A9HKpCkhU2DpdbklB9w"
    "$wqrwiBF7j0hhL9sj0H0bNN9lAJsX7LYgNEyG8vC+o6Y"
)
HEAD = '[region]\nid = "r"\nname = "区"\nname_en = "R"\n'


def region_file(directory: Path, body: str, halls: dict[str, str] | None = None) -> Path:
    for name, source in (halls or {"a.toml": "villages/east.toml"}).items():
        (directory / name).write_text((CONFIG / source).read_text(encoding="utf-8"), "utf-8")
    path = directory / "region.toml"
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def test_the_demo_region_is_a_tree_of_its_halls() -> None:
    region = load_region(CONFIG / "region.toml")
    assert [c.hall.id for c in region.configs] == [
        "demo-county",
        "demo-town",
        "demo-east",
        "demo-xishan",
    ]
    assert [u.id for u in region.unit_of("demo-xishan")] == ["demo-city", "demo-town", "xishan"]
    assert [u.kind for u in region.unit_of("demo-town")] == ["city", "town"]
    assert region.unit_of("demo-county") == (region.city,)
    with pytest.raises(KeyError):
        region.unit_of("nowhere")
    supervisor = region.supervisor("city")
    assert supervisor is not None and supervisor.password_hash.startswith("$argon2id$")
    assert region.supervisor("manager") is None


@pytest.mark.parametrize(
    ("body", "halls", "key", "reason"),
    [
        ('[city]\nhalls = ["a.toml"]\ncolour = "red"\n', None, "city.colour", "unknown field"),
        ('[city]\nhalls = ["missing.toml"]\n', None, "city.halls[0]", "no hall file at"),
        ('[city]\nhalls = ["a.toml", "./a.toml"]\n', None, "city.halls[1]", "named twice"),
        (
            '[city]\nhalls = ["a.toml"]\n[[towns]]\nid = "t"\nname = "镇"\nname_en = "T"\n'
            'halls = ["b.toml"]\n',
            {"a.toml": "villages/east.toml", "b.toml": "villages/east.toml"},
            "towns[0].halls[0]",
            "hall id 'demo-east'",
        ),
        (
            '[city]\nhalls = ["a.toml"]\n[[towns]]\nid = "t"\nname = "镇"\nname_en = "T"\n'
            '[[towns.villages]]\nid = "t"\nname = "村"\nname_en = "V"\n',
            None,
            "towns[0].villages[0].id",
            "also the id of",
        ),
        (
            '[city]\nhalls = ["a.toml"]\n[[supervisors]]\nusername = "c"\nname = "C"\n'
            'password_hash = "hall-demo"\n',
            None,
            "supervisors[0].password_hash",
            "matching regex",
        ),
        (
            f'[city]\nhalls = ["a.toml"]\n[[supervisors]]\nusername = "c"\nname = "C"\n'
            f'password_hash = "{HASH}"\n[[supervisors]]\nusername = "c"\nname = "D"\n'
            f'password_hash = "{HASH}"\n',
            None,
            "supervisors[1].username",
            "listed twice",
        ),
        ("[city]\nhalls = []\n", None, "city.halls", "names no hall file"),
    ],
    ids=[
        "unknown-key",
        "missing-file",
        "hall-named-twice",
        "duplicate-hall-id",
        "duplicate-node-id",
        "bad-hash",
        "duplicate-supervisor",
        "no-halls",
    ],
)
def test_a_bad_region_is_refused_naming_the_key(
    tmp_path: Path, body: str, halls: dict[str, str] | None, key: str, reason: str
) -> None:
    path = region_file(tmp_path, body, halls)
    with pytest.raises(ConfigError) as caught:
        load_region(path)
    assert caught.value.file == str(path)
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_a_bad_hall_file_is_named_itself(tmp_path: Path) -> None:
    path = region_file(tmp_path, '[city]\nhalls = ["a.toml"]\n')
    (tmp_path / "a.toml").write_text('[hall]\nid = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_region(path)
    assert caught.value.file == str(tmp_path / "a.toml")


def test_a_region_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "region.toml"
    path.write_bytes(b"#" * (4 * 1024 * 1024 + 1))
    with pytest.raises(ConfigError, match="larger than 4 MiB"):
        load_region(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_region(tmp_path / "absent.toml")
