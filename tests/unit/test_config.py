"""Hall files: the shipped ones load; a broken one stops with the file, the key and the reason."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hall import config as hall_config
from hall.api.app import create_app
from hall.config import ConfigError, HallConfig
from hall.settings import Settings, load_hall
from scheduling.calendar import is_open

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "config" / "default.toml"
TOWN = ROOT / "config" / "town.toml"
DEFAULT_TEXT = DEFAULT.read_text(encoding="utf-8")

# The demo tokens written in the comments of the shipped files.
DEMO_TOKENS = {
    DEFAULT: {
        "kiosk-1": "demo-kiosk-token",
        "caller-1": "demo-caller-1-token",
        "caller-5": "demo-caller-5-token",
        "pad-1": "demo-pad-1-token",
        "printer-1": "demo-printer-token",
        "speaker-1": "demo-speaker-token",
        "screen-1": "demo-screen-token",
    },
    TOWN: {
        "kiosk-1": "demo-town-kiosk-token",
        "printer-1": "demo-town-printer-token",
        "speaker-1": "demo-town-speaker-token",
        "pad-1": "demo-town-pad-token",
    },
}


def broken(old: str, new: str, *, count: int = 1) -> str:
    """The default hall's text with ``old`` replaced (it must occur exactly ``count`` times)."""
    assert DEFAULT_TEXT.count(old) == count, f"{old!r} occurs {DEFAULT_TEXT.count(old)} times"
    return DEFAULT_TEXT.replace(old, new)


def refusal(text: str | bytes) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        hall_config.loads(text, "broken.toml")
    return caught.value


# --------------------------------------------------------------------------- the shipped files


class TestShippedHalls:
    def test_default_hall(self, default_config: HallConfig) -> None:
        config = default_config
        assert config.hall.id == "demo-county"
        assert config.hall.timezone == "Asia/Shanghai"
        assert config.hall.number_digits == 3
        assert config.hall.policy == "reserve"
        assert [z.id for z in config.zones] == [
            "enterprise",
            "project",
            "tax",
            "real-estate",
            "police",
            "medical",
            "social",
            "general",
        ]
        assert len(config.categories) == 12
        assert len(config.windows) == 16
        assert [w.id for w in config.windows] == [str(n) for n in range(1, 17)]
        assert all(
            w.name == f"{w.id}号窗口" and w.name_en == f"Window {w.id}" for w in config.windows
        )
        # Mostly comprehensive windows (several categories), a few specialised ones.
        comprehensive = [w for w in config.windows if len(w.categories) > 2]
        assert len(comprehensive) >= len(config.windows) // 2
        profiles = {w.id: w.categories for w in config.windows}
        assert profiles["10"] == profiles["11"] == ("real-estate",)  # specialised
        assert profiles["12"] == ("household",)
        # Every category is served by some window.
        served = {c for w in config.windows for c in w.categories}
        assert served == {c.id for c in config.categories}
        assert config.hours.issue_outside_hours is True

    def test_default_priorities_rank_green_lane_first(self, default_config: HallConfig) -> None:
        assert default_config.priority_rank("normal") == 0
        green = default_config.priority_rank("green")
        appointment = default_config.priority_rank("appointment")
        assert green is not None and appointment is not None
        assert green > appointment > 0

    def test_default_staff_include_a_manager(self, default_config: HallConfig) -> None:
        roles = {s.username: s.role for s in default_config.staff}
        assert roles["manager"] == "manager"
        assert list(roles.values()).count("staff") >= 4

    def test_default_hours_include_saturday_morning(self, default_config: HallConfig) -> None:
        # Times in UTC; Shanghai is UTC+8. 2024-03-04 is a Monday, 2024-03-09 a Saturday.
        def at(day: int, hour: int, minute: int = 0) -> datetime:
            return datetime(2024, 3, day, hour, minute, tzinfo=UTC)

        assert is_open(default_config, at(4, 1))  # Mon 09:00
        assert not is_open(default_config, at(4, 4, 30))  # Mon 12:30, lunch break
        assert is_open(default_config, at(4, 6))  # Mon 14:00
        assert not is_open(default_config, at(4, 9, 30))  # Mon 17:30, closed
        assert is_open(default_config, at(9, 2))  # Sat 10:00, 错时延时服务
        assert not is_open(default_config, at(9, 5))  # Sat 13:00
        assert not is_open(default_config, at(10, 2))  # Sun 10:00

    def test_town_hall(self) -> None:
        config = hall_config.load(TOWN)
        assert config.hall.id == "demo-town"
        assert len(config.categories) == 5
        assert 3 <= len(config.windows) <= 4
        every = {c.id for c in config.categories}
        assert all(set(w.categories) == every for w in config.windows)  # all comprehensive
        assert config.hours.issue_outside_hours is False

    @pytest.mark.parametrize("path", [DEFAULT, TOWN], ids=["default", "town"])
    def test_device_tokens_match_the_documented_demo_tokens(self, path: Path) -> None:
        config = hall_config.load(path)
        assert {d.id for d in config.devices} == set(DEMO_TOKENS[path])
        for device in config.devices:
            token = DEMO_TOKENS[path][device.id]
            assert device.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
            assert token in path.read_text(encoding="utf-8")  # documented in the file

    @pytest.mark.parametrize("path", [DEFAULT, TOWN], ids=["default", "town"])
    def test_demo_password_is_documented_and_verifies(self, path: Path) -> None:
        from argon2 import PasswordHasher

        text = path.read_text(encoding="utf-8")
        assert "DEMO ONLY" in text and "hall-demo" in text
        config = hall_config.load(path)
        # One account is enough: argon2 is slow on purpose.
        assert PasswordHasher().verify(config.staff[0].password_hash, "hall-demo")

    def test_prefixes_are_unique_and_skip_ambiguous_letters(
        self, default_config: HallConfig
    ) -> None:
        prefixes = [c.prefix for c in default_config.categories]
        assert len(set(prefixes)) == len(prefixes)
        assert not {"I", "O"} & set(prefixes)


# --------------------------------------------------------------------------- broken files


class TestBrokenFiles:
    def test_unknown_category_in_a_window(self) -> None:
        error = refusal(broken('categories = ["tax", "invoice"]', 'categories = ["tax", "invoce"]'))
        assert error.file == "broken.toml"
        assert error.key == "windows[7].categories[1]"
        assert "unknown category 'invoce'" in error.reason

    def test_duplicate_prefix(self) -> None:
        error = refusal(broken('prefix = "C"', 'prefix = "B"'))
        assert error.key == "categories[2].prefix"
        assert "duplicate prefix 'B'" in error.reason

    def test_duplicate_window_id(self) -> None:
        error = refusal(broken('id = "16"', 'id = "15"'))
        assert error.key == "windows[15].id"
        assert "duplicate id '15'" in error.reason

    def test_hour_out_of_range(self) -> None:
        error = refusal(broken('close = "17:30"', 'close = "25:00"'))
        assert error.key == "hours.periods[1].close"
        assert "regex" in error.reason  # msgspec's own words: the HH:MM pattern

    def test_opens_after_it_closes(self) -> None:
        error = refusal(broken('open = "14:00"', 'open = "18:00"'))
        assert error.key == "hours.periods[1]"
        assert error.reason == "opens at 18:00 but closes at 17:30"

    def test_string_for_a_number(self) -> None:
        error = refusal(broken("number_digits = 3", 'number_digits = "3"'))
        assert error.key == "hall.number_digits"
        assert error.reason == "Expected `int`, got `str`"

    def test_number_out_of_range(self) -> None:
        error = refusal(broken("number_digits = 3", "number_digits = 9"))
        assert error.key == "hall.number_digits"
        assert "<= 5" in error.reason

    def test_unknown_top_level_key(self) -> None:
        error = refusal(DEFAULT_TEXT.replace("[[windows]]", "[[window]]", 1))
        assert error.key == "window"
        assert "unknown field `window`" in error.reason

    def test_unknown_policy(self, tmp_path: Path) -> None:
        # Checked where the server and check-config load halls: hall.config does not know the
        # policies (they read its types).
        path = tmp_path / "broken.toml"
        path.write_text(broken('policy = "reserve"', 'policy = "fastest"'), encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_hall(path)
        error = caught.value
        assert error.file == str(path)
        assert error.key == "hall.policy"
        with pytest.raises(ConfigError, match="unknown calling policy 'fastest'"):
            create_app(Settings(configs=(path,), data_dir=tmp_path))  # the server's start
        assert "unknown calling policy 'fastest'" in error.reason
        assert "novosga" in error.reason

    def test_unknown_nested_key(self) -> None:
        error = refusal(broken('policy = "reserve"', 'polcy = "reserve"'))
        assert error.key == "hall.polcy"
        assert "unknown field `polcy`" in error.reason

    @pytest.mark.parametrize("zone", ["Asia/Shanghia", "Mars/Olympus", "../etc/passwd"])
    def test_unknown_timezone(self, zone: str) -> None:
        error = refusal(broken('timezone = "Asia/Shanghai"', f'timezone = "{zone}"'))
        assert error.key == "hall.timezone"
        assert error.reason == f"unknown time zone {zone!r}"

    def test_missing_required_key(self) -> None:
        error = refusal(broken('name_en = "Demo County Government Service Center"\n', ""))
        assert error.key == "hall.name_en"
        assert "missing required field `name_en`" in error.reason

    def test_missing_required_table(self) -> None:
        start = DEFAULT_TEXT.index("[hall]")
        end = DEFAULT_TEXT.index("# ----", start)
        error = refusal(DEFAULT_TEXT[:start] + DEFAULT_TEXT[end:])
        assert error.key == "hall"
        assert "missing required field `hall`" in error.reason

    def test_unknown_zone_of_a_category(self) -> None:
        error = refusal(broken('zone = "tax"\ntarget_wait_minutes = 15', 'zone = "taxes"'))
        assert error.key == "categories[5].zone"
        assert "unknown zone 'taxes'" in error.reason

    def test_staff_at_an_unknown_window(self) -> None:
        error = refusal(broken('windows = ["8", "9"]', 'windows = ["8", "99"]'))
        assert error.key == "staff[4].windows[1]"
        assert "unknown window '99'" in error.reason

    def test_password_stored_in_clear(self) -> None:
        text = DEFAULT_TEXT.replace(
            DEFAULT_TEXT[DEFAULT_TEXT.index('password_hash = "$argon2') :].split("\n", 1)[0],
            'password_hash = "hall-demo"',
            1,
        )
        error = refusal(text)
        assert error.key == "staff[0].password_hash"

    def test_redefining_normal_priority(self) -> None:
        error = refusal(broken('id = "appointment"', 'id = "normal"'))
        assert error.key == "priorities"
        assert "'normal' is built in" in error.reason

    def test_invalid_toml(self) -> None:
        error = refusal(DEFAULT_TEXT.replace("[hall]", "[hall", 1))
        assert error.file == "broken.toml"
        assert error.key == "-"
        assert error.reason.startswith("not valid TOML")
        assert "line" in error.reason  # where to look

    def test_not_utf8(self) -> None:
        error = refusal(DEFAULT_TEXT.encode("gb18030"))  # a Chinese editor's other encoding
        assert error.key == "-"
        assert "UTF-8" in error.reason

    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "nowhere.toml"
        with pytest.raises(ConfigError) as caught:
            hall_config.load(path)
        assert caught.value.file == str(path)
        assert caught.value.key == "-"
        assert "cannot read the file" in caught.value.reason
        assert "No such file" in caught.value.reason

    def test_unreadable_file(self, tmp_path: Path) -> None:
        # A directory where a file is expected: unreadable even for root (chmod 000 is not).
        with pytest.raises(ConfigError) as caught:
            hall_config.load(tmp_path)
        assert caught.value.file == str(tmp_path)
        assert "cannot read the file" in caught.value.reason

    def test_the_message_names_file_key_and_reason(self) -> None:
        error = refusal(broken('prefix = "C"', 'prefix = "B"'))
        assert str(error) == "broken.toml: categories[2].prefix: duplicate prefix 'B'"


def test_a_file_far_larger_than_any_hall_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with path.open("wb") as file:  # sparse: no disk used, but reading it all would take 5 MiB
        file.truncate(hall_config.MAX_FILE_BYTES + 1)
    with pytest.raises(ConfigError, match="larger than 4 MiB") as caught:
        hall_config.load(path)
    assert caught.value.file == str(path)


def test_a_service_time_of_seconds_is_refused() -> None:
    error = refusal(broken("mean_service_minutes = 8", "mean_service_minutes = 0.01", count=3))
    assert "mean_service_minutes" in error.key


def test_a_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "pipe.toml"
    os.mkfifo(path)
    with pytest.raises(ConfigError, match="a pipe, not a hall file"):
        hall_config.load(path)
