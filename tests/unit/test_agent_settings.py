"""The agents' settings: the TOML file, the flags over it, the token, and errors that name the key
(or the flag) that is wrong."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from devices import agent_cli, speaker
from devices.printing import agent as printer_agent
from hall.cli import main
from hall.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
URL = "ws://127.0.0.1:8000/ws/halls/demo-county/devices"


def args(kind: agent_cli.Kind, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    agent_cli.add_arguments(parser, kind)
    return parser.parse_args(argv)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_examples_load_and_flags_override_them(tmp_path: Path) -> None:
    example = str(ROOT / "config/printer-agent.example.toml")
    settings, token = agent_cli.load(args("printer", "--config", example), printer_agent.Settings)
    assert (settings.hall_url, settings.paper, settings.printer) == (
        URL,
        80,
        "tcp://192.168.1.50:9100",
    )
    assert token == "demo-printer-token"
    token_file = tmp_path / "token"
    token_file.write_text("  secret-token\n")
    overridden = args(
        "printer",
        "--config",
        example,
        "--printer",
        "usb://0416:5011",
        "--paper",
        "58",
        "--token-file",
        str(token_file),
        "--state",
        str(tmp_path / "state"),
    )
    settings, token = agent_cli.load(overridden, printer_agent.Settings)
    assert (settings.printer, settings.paper, settings.state) == (
        "usb://0416:5011",
        58,
        str(tmp_path / "state"),
    )
    assert token == "secret-token"  # the file's token gives way to the flag's token file

    example = str(ROOT / "config/speaker-agent.example.toml")
    speaking, token = agent_cli.load(args("speaker", "--config", example), speaker.Settings)
    assert (speaking.player, token) == ("aplay -q {file}", "demo-speaker-token")


def test_flags_alone_are_enough(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t0ken")
    given = args(
        "printer",
        "--hall-url",
        URL,
        "--token-file",
        str(tmp_path / "token"),
        "--printer",
        "tcp://p",
    )
    settings, token = agent_cli.load(given, printer_agent.Settings)
    assert (settings.state, settings.status_seconds, token) == ("var/printer-agent", 5.0, "t0ken")


BASE: dict[str, object] = {"hall_url": URL, "token": "t", "printer": "tcp://p"}
NO = None  # the key left out


def toml(changes: dict[str, object]) -> str:
    table = {**BASE, **changes}
    return "\n".join(
        f"{key} = {json.dumps(value)}" for key, value in table.items() if value is not NO
    )


@pytest.mark.parametrize(
    ("changes", "key", "reason"),
    [
        ({"hall_url": NO}, "hall_url", "missing required field"),
        ({"hall_url": "http://h/ws/halls/x/devices"}, "hall_url", "ws://"),
        ({"hall_url": "ws://h/ws/halls/x"}, "hall_url", "ws://"),
        ({"printer": NO}, "printer", "missing required field"),
        ({"printer": "lpt1"}, "printer", "no kind://"),
        ({"paper": 57}, "paper", "enum"),
        ({"status_seconds": 0}, "status_seconds", ">"),
        ({"prnter": 1}, "prnter", "unknown field"),
        ({"token": NO}, "token", "token or token_file"),
        ({"token_file": "f"}, "token", "one"),
        ({"token": "a b"}, "token", "one word"),
        ({"token": NO, "token_file": "/nonexistent/t"}, "token_file", "cannot read"),
    ],
)
def test_a_bad_file_names_the_key(
    tmp_path: Path, changes: dict[str, object], key: str, reason: str
) -> None:
    path = write(tmp_path, toml(changes))
    with pytest.raises(ConfigError) as caught:
        agent_cli.load(args("printer", "--config", path), printer_agent.Settings)
    assert (caught.value.file, caught.value.key) == (path, key)
    assert reason in caught.value.reason


def test_a_file_that_is_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "hall_url = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        agent_cli.load(args("printer", "--config", path), printer_agent.Settings)


@pytest.mark.parametrize(
    ("player", "reason"),
    [
        ("aplay -q", "{file}"),
        ("{file}", "{file}"),
        ("aplay '{file}", "cannot split"),
        ("", "{file}"),
    ],
)
def test_a_player_needs_a_command_and_the_file(tmp_path: Path, player: str, reason: str) -> None:
    path = write(tmp_path, f'hall_url = "{URL}"\ntoken = "t"\nplayer = "{player}"')
    with pytest.raises(ConfigError) as caught:
        agent_cli.load(args("speaker", "--config", path), speaker.Settings)
    assert caught.value.key == "player" and reason in caught.value.reason


def test_a_bad_flag_is_blamed_on_the_flag(tmp_path: Path) -> None:
    path = write(tmp_path, f'hall_url = "{URL}"\ntoken = "t"\nprinter = "tcp://p"')
    with pytest.raises(ConfigError) as caught:
        agent_cli.load(
            args("printer", "--config", path, "--printer", "tcp://p:0"), printer_agent.Settings
        )
    assert (caught.value.file, caught.value.key) == ("command line", "--printer")
    with pytest.raises(ConfigError) as caught:
        agent_cli.load(
            args("printer", "--config", path, "--hall-url", "ws://h/"), printer_agent.Settings
        )
    assert (caught.value.file, caught.value.key) == ("command line", "--hall-url")


def test_the_command_says_what_is_wrong_and_never_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, f'hall_url = "{URL}"\ntoken = "t"\nprinter = "tcp://p:99999"')
    assert main(["printer-agent", "--config", path, "--state", str(tmp_path / "s")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"hall printer-agent: bad settings: {path}: printer: ")
    assert not (tmp_path / "s").exists()
    assert main(["speaker-agent", "--hall-url", URL, "--state", str(tmp_path / "s")]) == 2
    assert "token or token_file" in capsys.readouterr().err


def test_one_agent_per_state_directory(tmp_path: Path) -> None:
    claim = agent_cli.claim_state(tmp_path / "state")
    try:
        with pytest.raises(ConfigError, match="another agent"):
            agent_cli.claim_state(tmp_path / "state")
    finally:
        claim.close()
    agent_cli.claim_state(tmp_path / "state").close()  # free again once the first let go


def test_the_announcements_come_from_the_links_host() -> None:
    assert agent_cli.http_base("ws://10.0.0.2:8000/ws/halls/h/devices") == "http://10.0.0.2:8000"
    assert agent_cli.http_base("wss://hall.example/ws/halls/h/devices") == "https://hall.example"
