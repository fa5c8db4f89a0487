"""A region: the city's service center, its towns' centers and their villages' stations, each
naming the hall files it runs, and the supervisors who watch them all (the city view).

A region file (TOML, UTF-8)::

    [region]
    id = "demo-city"
    name = "示范市"
    name_en = "Demo City"

    [city]
    halls = ["default.toml"]           # paths relative to the region file

    [[towns]]
    id = "demo-town"
    name = "示范镇"
    name_en = "Demo Town"
    halls = ["town.toml"]

    [[towns.villages]]
    id = "east"
    name = "东村"
    name_en = "East Village"
    halls = ["villages/east.toml"]

    [[supervisors]]                    # argon2 hashes, like staff (``hall hash-password``)
    username = "city"
    name = "市政务服务管理办"
    password_hash = "$argon2id$..."

Every problem is a :class:`hall.config.ConfigError` naming the region file (or the hall file) and
the key, so a bad region stops start-up as a bad hall file does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from hall.config import (
    ConfigError,
    HallConfig,
    Ident,
    Struct,
    convert,
    read_file,
    read_toml,
)
from hall.settings import load_hall

Kind = Literal["city", "town", "village"]
HallPath = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class _Info(Struct, frozen=True):
    id: Ident
    name: str
    name_en: str


class _City(Struct, frozen=True):
    halls: tuple[HallPath, ...] = ()


class _Village(_Info, frozen=True):
    halls: tuple[HallPath, ...] = ()


class _Town(_Village, frozen=True):
    villages: tuple[_Village, ...] = ()


class Supervisor(Struct, frozen=True):
    """A region-level account: sees the city view (never a hall's commands)."""

    username: Ident
    name: str
    password_hash: Annotated[str, msgspec.Meta(pattern=r"^\$argon2(id|i|d)\$")]


class _RegionFile(Struct, frozen=True):
    region: _Info
    city: _City = _City()
    towns: tuple[_Town, ...] = ()
    supervisors: tuple[Supervisor, ...] = ()


@dataclass(frozen=True)
class Unit:
    """A node of the region: the city, a town or a village, its own halls (ids, in file order)
    and the units under it (a city's towns, a town's villages)."""

    kind: Kind
    id: str
    name: str
    name_en: str
    halls: tuple[str, ...]
    units: tuple[Unit, ...] = ()

    def walk(self) -> Iterator[tuple[Unit, ...]]:
        """Each unit under this one (itself first) as its path from this one."""
        yield (self,)
        for unit in self.units:
            for path in unit.walk():
                yield (self, *path)


@dataclass(frozen=True)
class Region:
    id: str
    name: str
    name_en: str
    city: Unit
    configs: tuple[HallConfig, ...]  # every hall, city's first, then each town's and its villages'
    supervisors: tuple[Supervisor, ...]
    file: Path

    def unit_of(self, hall: str) -> tuple[Unit, ...]:
        """The path from the city to the unit whose halls include ``hall``; KeyError if none."""
        for path in self.city.walk():
            if hall in path[-1].halls:
                return path
        raise KeyError(hall)

    def supervisor(self, username: str) -> Supervisor | None:
        return next((s for s in self.supervisors if s.username == username), None)

    @property
    def scope(self) -> str:
        """The sessions of its supervisors are of this scope: no hall id starts with ``@``."""
        return f"@{self.id}"

    def oversees(self, scope: str, hall: str) -> bool:
        """Whether a session of ``scope`` (a supervisor's) may look into ``hall``: its manager
        views and reports, read-only."""
        return scope == self.scope and any(c.hall.id == hall for c in self.configs)


def load_region(path: str | Path) -> Region:
    """Read a region file and every hall file it names; ConfigError on any problem."""
    path = Path(path)
    file = str(path)
    raw = read_file(path, "a region file")
    parsed = convert(read_toml(raw, file), _RegionFile, file)
    return _Loader(path).region(parsed)


class _Loader:
    """Loads the hall files named in one region file, checking the region as a whole."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = str(path)
        self.configs: list[HallConfig] = []
        self.by_file: dict[Path, str] = {}  # resolved hall file -> the key naming it first
        self.by_id: dict[str, str] = {}  # hall id -> the key naming its file
        self.units: dict[str, str] = {}  # unit id -> its key

    def region(self, parsed: _RegionFile) -> Region:
        info = parsed.region
        self._unit_id(info.id, "region.id")
        halls = self._halls(parsed.city.halls, "city.halls")
        towns = []
        for t, town in enumerate(parsed.towns):
            key = f"towns[{t}]"
            self._unit_id(town.id, f"{key}.id")
            halls_here = self._halls(town.halls, f"{key}.halls")
            villages = tuple(
                self._unit("village", village, f"{key}.villages[{v}]")
                for v, village in enumerate(town.villages)
            )
            towns.append(Unit("town", town.id, town.name, town.name_en, halls_here, villages))
        city = Unit("city", info.id, info.name, info.name_en, halls, tuple(towns))
        if not self.configs:
            raise ConfigError(self.file, "city.halls", "the region names no hall file")
        names = [s.username for s in parsed.supervisors]
        for index, name in enumerate(names):
            if name in names[:index]:
                reason = f"supervisor {name!r} is listed twice"
                raise ConfigError(self.file, f"supervisors[{index}].username", reason)
        # The city's halls first, then each town's and its villages', as the tree reads.
        order = [hall for path in city.walk() for hall in path[-1].halls]
        by_id = {c.hall.id: c for c in self.configs}
        return Region(
            id=info.id,
            name=info.name,
            name_en=info.name_en,
            city=city,
            configs=tuple(by_id[hall] for hall in order),
            supervisors=parsed.supervisors,
            file=self.path,
        )

    def _unit(self, kind: Kind, node: _Village, key: str, units: tuple[Unit, ...] = ()) -> Unit:
        self._unit_id(node.id, f"{key}.id")
        halls = self._halls(node.halls, f"{key}.halls")
        return Unit(kind, node.id, node.name, node.name_en, halls, units)

    def _unit_id(self, unit: str, key: str) -> None:
        other = self.units.get(unit)
        if other is not None:
            raise ConfigError(self.file, key, f"id {unit!r} is also the id of {other}")
        self.units[unit] = key

    def _halls(self, paths: tuple[str, ...], key: str) -> tuple[str, ...]:
        ids = []
        for index, name in enumerate(paths):
            at = f"{key}[{index}]"
            hall_file = self.path.parent / name
            if not hall_file.is_file():
                raise ConfigError(self.file, at, f"no hall file at {hall_file}")
            resolved = hall_file.resolve()
            named = self.by_file.get(resolved)
            if named is not None:
                raise ConfigError(self.file, at, f"{name} is named twice (also at {named})")
            self.by_file[resolved] = at
            config = load_hall(hall_file)  # its own ConfigError names the hall file
            other = self.by_id.get(config.hall.id)
            if other is not None:  # two engines on one hall would fight over its journal
                reason = f"hall id {config.hall.id!r} of {name} is also the id at {other}"
                raise ConfigError(self.file, at, reason)
            self.by_id[config.hall.id] = at
            self.configs.append(config)
            ids.append(config.hall.id)
        return tuple(ids)
