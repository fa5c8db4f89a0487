"""What ``hall printer-agent`` and ``hall speaker-agent`` share as processes: the settings file,
the flags that override it, the device token, the state directory, logging and signals.

An agent's settings come from a small TOML file (``--config``; commented examples in config/)
and flags (a flag wins over the file). Relative paths are taken from the working directory. The
token is given in the file (``token``) or, better, in a file of its own (``token_file``, which
may be readable by the agent's user alone); there is no ``--token`` flag, since a command line
is visible to every user of the machine. Each agent claims its state directory: two agents
sharing one done file could both print a ticket, each thinking the other had not.

This module is imported by hall/cli.py for every ``hall`` command, so it imports nothing heavy;
the agents themselves (devices/printing/agent.py, devices/speaker.py) are imported only to run.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Annotated, Literal, TextIO, TypeVar
from urllib.parse import urlsplit, urlunsplit

import msgspec

from hall.config import ConfigError, Struct, convert, read_toml

log = logging.getLogger(__name__)

_HALL_URL = re.compile(r"^wss?://[^\s/?#@]+/ws/halls/[a-z0-9][a-z0-9_-]{0,39}/devices$")
Kind = Literal["printer", "speaker"]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]


class AgentSettings(Struct, frozen=True, kw_only=True):
    """The keys of every agent's file; each agent adds its own."""

    # ws://HOST:8000/ws/halls/{hall}/devices (wss:// behind a TLS proxy)
    hall_url: str
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    token_file: str | None = None
    state: str  # the directory of the agent's done file; one agent per directory

    def problems(self) -> Iterable[tuple[str, str]]:
        """(key, reason) of each value that is well typed but unusable."""
        if not _HALL_URL.match(self.hall_url):
            yield "hall_url", "expected ws://HOST:PORT/ws/halls/HALL/devices (or wss://)"


S = TypeVar("S", bound=AgentSettings)


def add_arguments(parser: argparse.ArgumentParser, kind: Kind) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="the agent's settings (TOML)")
    flags = parser.add_argument_group("overriding the file")
    flags.add_argument(
        "--hall-url", metavar="URL", help="the hall's link: ws://HOST:PORT/ws/halls/HALL/devices"
    )
    flags.add_argument("--token-file", metavar="FILE", help="a file holding the device token")
    flags.add_argument("--state", metavar="DIR", help="the agent's state directory")
    if kind == "printer":
        flags.add_argument("--printer", metavar="ADDRESS", help="tcp://HOST:9100, usb://VID:PID...")
        flags.add_argument("--paper", type=int, choices=(58, 80), help="paper width in mm")
    else:
        flags.add_argument("--player", metavar="COMMAND", help="e.g. 'aplay -q {file}'")
    parser.add_argument("--verbose", action="store_true", help="log at debug level")


def load(args: argparse.Namespace, kind: type[S]) -> tuple[S, str]:
    """The settings from ``--config`` and the flags (the ``args`` named as the keys of ``kind``),
    and the device token; ConfigError naming the file (or the flag) and the key that is wrong."""
    file = str(args.config) if args.config is not None else "(no --config)"
    table: dict[str, object] = {}
    if args.config is not None:
        try:
            raw = args.config.read_bytes()
        except OSError as exc:
            raise ConfigError(file, "-", f"cannot read the file: {exc.strerror}") from exc
        table = read_toml(raw, file)
    given = {
        field.name: getattr(args, field.name)
        for field in msgspec.structs.fields(kind)
        if getattr(args, field.name, None) is not None
    }
    if "token_file" in given:
        table.pop("token", None)
    table.update(given)

    def blame(key: str, reason: str) -> ConfigError:
        if key.partition(".")[0] in given:  # the flag is what is wrong, not the file
            return ConfigError("command line", f"--{key.replace('_', '-')}", reason)
        return ConfigError(file, key, reason)

    try:
        settings = convert(table, kind, file)
    except ConfigError as exc:
        raise blame(exc.key, exc.reason) from None
    for key, reason in settings.problems():
        raise blame(key, reason)
    return settings, _token(settings, file)


def _token(settings: AgentSettings, file: str) -> str:
    if (settings.token is None) == (settings.token_file is None):
        raise ConfigError(file, "token", "give the device token in token or token_file (one)")
    if settings.token is not None:
        token, key = settings.token, "token"
    else:
        assert settings.token_file is not None
        key = "token_file"
        try:
            token = Path(settings.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise ConfigError(file, key, f"cannot read {settings.token_file}: {why}") from None
    if not 0 < len(token) <= 200 or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigError(file, key, "a device token is one word of 1 to 200 printable characters")
    return token


def http_base(hall_url: str) -> str:
    """The hall server's HTTP address, from its device link's: ws://h:p/... -> http://h:p."""
    parts = urlsplit(hall_url)
    return urlunsplit(("https" if parts.scheme == "wss" else "http", parts.netloc, "", "", ""))


def claim_state(directory: Path) -> TextIO:
    """Hold ``directory`` for this agent until the returned file is closed (or the process
    ends); ConfigError when another agent holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    claim = open(directory / "agent.lock", "a")  # noqa: SIM115 - held until the agent stops
    try:
        fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        claim.close()
        raise ConfigError(
            str(directory),
            "state",
            "another agent is using this state directory; give each its own",
        ) from None
    return claim


def main(
    name: str,
    args: argparse.Namespace,
    kind: type[S],
    serve: Callable[[S, str, asyncio.Event], Awaitable[None]],
) -> int:
    """Run ``serve(settings, token, stop)`` until it returns; SIGINT or SIGTERM sets ``stop``.
    0 when stopped so, 2 on bad settings, 3 when the state directory is taken."""
    try:
        settings, token = load(args, kind)
    except ConfigError as exc:
        print(f"hall {name}: bad settings: {exc}", file=sys.stderr)
        return 2
    try:
        claim = claim_state(Path(settings.state))
    except (ConfigError, OSError) as exc:
        print(f"hall {name}: not starting: {exc}", file=sys.stderr)
        return 3
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,  # python-escpos configures the root logger as it is imported
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        log.info("%s starting", name)
        await serve(settings, token, stop)
        log.info("%s stopped", name)

    try:
        asyncio.run(run())
    finally:
        claim.close()
    return 0
