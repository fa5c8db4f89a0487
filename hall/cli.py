"""The ``hall`` command: serve halls, check hall files, replay a journal, make credentials, run
the printer and speaker agents."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import hashlib
import logging
import logging.config
import os
import secrets
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from devices import agent_cli
from hall import config as hall_config
from hall import logs, simulate_cli
from hall.reports import command as report_command
from hall.settings import DEFAULT_CONFIG, DEFAULT_DATA, ROOT, Settings, load_hall

DESCRIPTION = """\
Queue management for government service halls: serve halls over HTTP, check hall files, replay a
hall's journal, simulate calling policies, make staff passwords and device tokens, and run the
agents that print tickets and play announcements next to their hardware.

Start with:  hall serve        (the demo hall of config/default.toml on http://127.0.0.1:8000)
Help on one command:  hall COMMAND --help
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hall", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the hall server",
        description="Serve the halls over HTTP and WebSocket until stopped (Ctrl-C).",
    )
    _add_hall_options(serve)
    serve.add_argument(
        "--region",
        type=Path,
        metavar="FILE",
        help="a region file (city, towns, villages: config/region.toml): serve every hall it "
        "names, and the city view at /region, instead of --config (default: none)",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 for every interface (default %(default)s)",
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default %(default)s)")
    serve.add_argument(
        "--access-log", action="store_true", help="log every request line (default off)"
    )
    serve.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default="text",
        help="text for a terminal, json for one JSON object per line (default %(default)s)",
    )
    serve.add_argument(
        "--allow-volatile-redis",
        action="store_true",
        help="start even if Redis may lose acknowledged events (no AOF, appendfsync not "
        "always, or an eviction policy); logs a warning (default off)",
    )
    serve.add_argument(
        "--store-timeout",
        type=float,
        default=Settings.store_timeout,
        metavar="SECONDS",
        help="deadline of an append; a command answers 503 after twice that (default %(default)s)",
    )
    serve.add_argument(
        "--read-timeout",
        type=float,
        default=Settings.read_timeout,
        metavar="SECONDS",
        help="how long a read waits behind a stalled journal before 503 (default %(default)s)",
    )
    serve.add_argument(
        "--discipline-tick",
        type=_seconds,
        default=Settings.discipline_tick,
        metavar="SECONDS",
        help="how often the discipline watcher checks running timers (default %(default)s)",
    )
    serve.add_argument(
        "--max-screens",
        type=_positive,
        default=Settings.max_screens,
        metavar="N",
        help="feeds (screens and event feeds) connected at once, in all (default %(default)s)",
    )
    serve.add_argument(
        "--max-screens-per-address",
        type=_positive,
        default=Settings.max_screens_per_address,
        metavar="N",
        help="feeds connected at once from one client address (default %(default)s)",
    )
    serve.add_argument(
        "--device-heartbeat",
        type=_seconds,
        default=Settings.device_heartbeat,
        metavar="SECONDS",
        help="heartbeat of the device link: a device silent for three is offline "
        "(default %(default)s)",
    )
    serve.add_argument(
        "--node-id",
        metavar="ID",
        help="with --redis: this process's name among the region's processes (default "
        "HOSTNAME:PORT; keep it stable across restarts, so a process gets its halls back)",
    )
    serve.add_argument(
        "--advertise",
        metavar="URL",
        help="with --redis: the URL other processes forward commands to (default http://HOST:PORT)",
    )
    serve.add_argument(
        "--lease-seconds",
        type=_seconds,
        default=Settings.lease_seconds,
        metavar="SECONDS",
        help="with --redis: the writer lease of each hall; a dead writer's halls are taken over "
        "within about this long (default %(default)s)",
    )
    serve.add_argument(
        "--voice-cache",
        type=Path,
        default=os.environ.get("HALL_VOICE_CACHE") or None,
        metavar="DIR",
        help="where spoken segments are kept once rendered; servers may share one (default "
        "$HALL_VOICE_CACHE, else DATA/voice)",
    )
    serve.add_argument(
        "--no-speech",
        dest="speech",
        action="store_false",
        help="announce calls with the chime alone; no espeak-ng worker (default: speak)",
    )
    serve.set_defaults(run=_serve)

    check = commands.add_parser(
        "check-config", help="check hall files (or region files) and summarise them"
    )
    check.add_argument("files", nargs="+", type=Path)
    check.add_argument(
        "--journal",
        metavar="PATH_OR_URL",
        help="also check each hall's history in this journal (SQLite file or redis:// URL): "
        "say which retired windows, categories or staff its events name",
    )
    check.set_defaults(run=_check_config)

    replay = commands.add_parser("replay", help="rebuild each hall's state from its journal")
    _add_hall_options(replay)
    replay.set_defaults(run=_replay)

    report = commands.add_parser(
        "report",
        help="a report of a day, week, month, quarter or range",
        description="Figures of a period for the hall, or per zone, category, window or staff "
        "member, from its journal (through the read model DATA/reports-HALL.sqlite3, caught up "
        "first). Example: hall report --period 2026-Q4 --by window --format csv",
    )
    _add_hall_options(report)
    report_command.add_arguments(report)
    report.set_defaults(run=_report)

    password = commands.add_parser("hash-password", help="argon2 hash for a staff entry")
    password.set_defaults(run=_hash_password)

    token = commands.add_parser("new-device-token", help="a random device token and its hash")
    token.set_defaults(run=_new_device_token)

    simulate = commands.add_parser("simulate", help="simulate hall days under calling policies")
    simulate_cli.add_arguments(simulate)
    simulate.set_defaults(run=simulate_cli.run)

    # The agents run next to their hardware, not in the hall server; devices/ holds them.
    for kind, about in AGENTS.items():
        agent = commands.add_parser(f"{kind}-agent", help=about, description=about)
        agent_cli.add_arguments(agent, kind)
        agent.set_defaults(run=_printer_agent if kind == "printer" else _speaker_agent)

    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except hall_config.ConfigError as exc:
        print(f"hall: bad hall file: {exc}", file=sys.stderr)
        return 2
    return code


AGENTS: dict[agent_cli.Kind, str] = {
    "printer": "print the hall's tickets on a printer beside this machine (a printer device)",
    "speaker": "play the hall's call announcements on this machine (a speaker device)",
}


def _printer_agent(args: argparse.Namespace) -> int:
    from devices.printing import agent  # python-escpos takes a quarter of a second to import

    return agent.main(args)


def _speaker_agent(args: argparse.Namespace) -> int:
    from devices import speaker

    return speaker.main(args)


def _positive(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    """Seconds as the device link's welcome may carry them: over 0, at most an hour."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds over 0 and at most 3600, not {text!r}")
    return value


def _add_hall_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        action="append",
        type=Path,
        metavar="FILE",
        help="hall file (TOML); repeat for several halls "
        f"(default {DEFAULT_CONFIG.relative_to(ROOT)}, the demo hall)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        metavar="DIR",
        help="directory of the SQLite journal, DIR/journal.sqlite3 (default %(default)s)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="keep the journal in Redis instead, e.g. redis://127.0.0.1:6379/0 (default: SQLite)",
    )


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        configs=tuple(args.config or (DEFAULT_CONFIG,)),
        region=getattr(args, "region", None),
        data_dir=args.data,
        redis_url=args.redis,
        host=getattr(args, "host", "127.0.0.1"),
        port=getattr(args, "port", 8000),
        allow_volatile_redis=getattr(args, "allow_volatile_redis", False),
        store_timeout=getattr(args, "store_timeout", Settings.store_timeout),
        read_timeout=getattr(args, "read_timeout", Settings.read_timeout),
        discipline_tick=getattr(args, "discipline_tick", Settings.discipline_tick),
        max_screens=getattr(args, "max_screens", Settings.max_screens),
        max_screens_per_address=getattr(
            args, "max_screens_per_address", Settings.max_screens_per_address
        ),
        device_heartbeat=getattr(args, "device_heartbeat", Settings.device_heartbeat),
        voice_cache=getattr(args, "voice_cache", None),
        speech=getattr(args, "speech", True),
        node_id=getattr(args, "node_id", None),
        advertise=getattr(args, "advertise", None),
        lease_seconds=getattr(args, "lease_seconds", Settings.lease_seconds),
    )


# Objects allocated (and not yet freed) between two young collections of the cyclic garbage
# collector; Python's default is 700. See serving_gc().
GC_YOUNG = 20_000


def serving_gc() -> None:
    """Run the cyclic garbage collector less often in a server process.

    A hall server's objects die by reference counting (events, records and views hold no
    cycles): 134 collections during 1,920 commands freed 12 objects. But a batch of commands
    allocates ~1,000 objects that live until its replies are sent, so with the default threshold
    each batch set off a young collection, and every tenth a larger one: 9-14 % of a busy
    server's CPU for nothing (its loop used a sixth less CPU without them). Cyclic garbage, if
    any, still goes, a little later.
    """
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hall import banner
    from hall.api.app import create_app
    from hall.api.limits import uvicorn_limits
    from hall.api.service import JournalInUse, claim_journal

    if args.region is not None and args.config:
        print("hall: serve --region or --config, not both", file=sys.stderr)
        return 2
    settings = _settings(args)
    log_config = logs.config(args.log_format, connections=args.access_log)
    logging.config.dictConfig(log_config)
    if settings.redis_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    try:  # said in one line now, not in a traceback from the app's start-up
        lock = claim_journal(settings.journal_url)
    except JournalInUse as exc:
        print(f"hall: not serving: {exc}", file=sys.stderr)
        return 3
    if lock is not None:
        lock.close()  # the app claims it again as it starts

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Devices and screens first, with 1001 (going away: reconnect later), before uvicorn
            # closes every WebSocket with its own 1012.
            await app.state.devices.close()
            await app.state.screens.close()
            await super().shutdown(sockets)

    serving_gc()
    server = Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            access_log=args.access_log,
            log_config=log_config,
            log_level="info",
            timeout_graceful_shutdown=5,
            # Screen frames are small (a delta is a few hundred bytes) and go to every screen at
            # once: a compressor per connection (browsers always ask for one) cost 86 KiB per
            # screen instead of 39, and 60% more CPU per call with 1,000 screens, to save a few
            # bytes on a local network.
            ws_per_message_deflate=False,
            **uvicorn_limits(),
        )
    )
    app.on_startup.append(lambda _: banner.announce_when_listening(settings, server))
    try:
        server.run()  # uvicorn exits (SystemExit) when it cannot bind
    except KeyboardInterrupt:
        # uvicorn stops cleanly on Ctrl-C, then raises the signal again for whoever else would
        # handle it: nobody here, so no traceback after "Finished server process".
        pass
    finally:
        if not server.started:  # the port is taken, or the halls did not start (logged above)
            print(
                f"hall: not serving; if port {settings.port} is taken, stop what holds it or "
                "choose another with --port",
                file=sys.stderr,
            )
    return 0 if server.started else 3


def _check_config(args: argparse.Namespace) -> int:
    failed = 0
    for path, config in _hall_files(args.files):
        if config is None:
            failed += 1
            continue
        print(
            f"ok: {path}: hall {config.hall.id} ({config.hall.name}), {len(config.zones)} zones, "
            f"{len(config.categories)} categories, {len(config.windows)} windows, "
            f"{len(config.staff)} staff, {len(config.devices)} devices, policy {config.hall.policy}"
        )
        if args.journal is not None:
            if (
                not args.journal.startswith(("redis://", "rediss://"))
                and not Path(args.journal).is_file()
            ):  # opening it would make an empty one, and say all is well
                print(f"error: no journal at {args.journal} (a SQLite file, or a redis:// URL)")
                failed += 1
            else:
                failed += asyncio.run(_check_history(config, path, args.journal))
    return 1 if failed else 0


def _hall_files(
    paths: list[Path],
) -> Iterator[tuple[Path, hall_config.HallConfig | None]]:
    """Each hall file named, or named by a region file (a file with a ``[region]`` table), and
    its config; None (the error said) where it does not load."""
    from hall.region import load_region

    for path in paths:
        try:
            if not _is_region(path):
                yield path, load_hall(path)
                continue
            region = load_region(path)
        except hall_config.ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            yield path, None
            continue
        units = sum(1 for _ in region.city.walk())
        print(
            f"ok: {path}: region {region.id} ({region.name}), {len(region.configs)} halls in "
            f"{units} units, {len(region.supervisors)} supervisors"
        )
        for config in region.configs:
            yield path, config


def _is_region(path: Path) -> bool:
    try:
        raw = hall_config.read_file(path, "a hall or region file")
        return "region" in hall_config.read_toml(raw, str(path))
    except hall_config.ConfigError:
        return False  # load_hall says what is wrong with it


async def _check_history(config: hall_config.HallConfig, path: Path, target: str) -> int:
    """Warn of names the hall's events use that the config no longer has (they replay, but
    their tickets and windows are gone from view); fail only if the state cannot be rebuilt."""
    from hall.domain.events import TicketCancelled
    from hall.domain.state import fold
    from hall.journal import JournalError, open_journal

    journal = open_journal(target)
    try:
        events = [r.event for r in await journal.read(config.hall.id)]
    except JournalError as exc:
        print(f"error: cannot read the journal {logs.without_password(target)}: {exc}")
        return 1
    finally:
        await journal.close()
    known = {
        "window": {w.id for w in config.windows},
        "category": {c.id for c in config.categories},
        "staff": {s.username for s in config.staff},
    }
    retired: dict[str, set[str]] = {kind: set() for kind in known}
    for event in events:
        named = {
            "window": [getattr(event, "window", None), getattr(event, "to_window", None)],
            "category": [getattr(event, "category", None), *getattr(event, "categories", ())],
            # A cancel's ``by`` is whoever cancelled: a kiosk, the visitor, or staff.
            "staff": [
                getattr(event, "staff", None),
                None if isinstance(event, TicketCancelled) else getattr(event, "by", None),
            ],
        }
        for kind, names in named.items():
            retired[kind].update(n for n in names if n is not None and n not in known[kind])
    for kind, gone in retired.items():
        if gone:
            print(f"warning: {path}: the journal names retired {kind} {', '.join(sorted(gone))}")
    try:
        fold(config, events)
    except Exception as exc:  # any failure here means the hall would not start
        print(f"error: {path}: the journal cannot be replayed with this file: {exc!r}")
        return 1
    print(f"ok: {path}: {len(events)} events of hall {config.hall.id} replay with this file")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from hall.domain.state import fold
    from hall.journal import open_journal

    settings = _settings(args)
    configs = [load_hall(path) for path in settings.configs]

    async def run() -> None:
        journal = open_journal(settings.journal_url)
        try:
            for config in configs:
                started = time.perf_counter()
                records = await journal.read(config.hall.id)
                state = fold(config, [r.event for r in records])
                took = time.perf_counter() - started
                tickets = Counter(t.state.value for t in state.tickets.values())
                windows = Counter(w.state.value for w in state.windows.values())
                waiting = {c: len(q) for c, q in state.queues.items() if q}
                print(f"hall {config.hall.id}: {state.version} events replayed in {took:.3f} s")
                print(f"  business day: {state.day}")
                print(f"  tickets today: {dict(sorted(tickets.items())) or 'none'}")
                print(f"  waiting: {waiting or 'none'}")
                print(f"  windows: {dict(sorted(windows.items()))}")
        finally:
            await journal.close()

    asyncio.run(run())
    return 0


def _report(args: argparse.Namespace) -> int:
    settings = _settings(args)
    configs = [load_hall(path) for path in settings.configs]
    return report_command.run(args, configs, settings.journal_url, settings.data_dir)


def _hash_password(args: argparse.Namespace) -> int:
    from argon2 import PasswordHasher

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline()
    password = password.rstrip("\n")
    if len(password) < 8:
        print("hall: a password needs at least 8 characters", file=sys.stderr)
        return 2
    print(PasswordHasher().hash(password))
    return 0


def _new_device_token(args: argparse.Namespace) -> int:
    token = secrets.token_urlsafe(32)
    print(f"token (give it to the device):    {token}")
    print(f'token_sha256 (put it in the hall file): "{hashlib.sha256(token.encode()).hexdigest()}"')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
