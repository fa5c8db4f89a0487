"""What ``hall serve`` prints once every hall is replayed: where to go, and how to log in."""

from __future__ import annotations

import asyncio
from typing import Protocol

from hall.logs import without_password
from hall.region import load_region
from hall.settings import DEFAULT_CONFIG, ROOT, Settings, load_hall

# The demo hall's credentials, written in config/default.toml's header (never in a real hall).
DEMO_KIOSK_TOKEN = "demo-kiosk-token"
DEMO_PAD_TOKEN = "demo-pad-1-token"
DEMO_STAFF = ("zhangwei", "hall-demo")
DEMO_REGION = ROOT / "config" / "region.toml"
DEMO_SUPERVISOR = "city"
MAX_LISTED = 5  # halls whose pages the banner lists one by one (a city has hundreds)


_announcing: set[asyncio.Task[None]] = set()


def announce_when_listening(settings: Settings, server: Listening) -> None:
    """From the app's startup: print :func:`ready` once ``server`` listens (uvicorn binds the
    port only after the app has started, and may fail to: then nothing is printed)."""
    task = asyncio.create_task(_announce(settings, server))
    _announcing.add(task)
    task.add_done_callback(_announcing.discard)


class Listening(Protocol):
    started: bool  # uvicorn.Server's: True once its sockets are bound
    should_exit: bool


async def _announce(settings: Settings, server: Listening) -> None:
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(0.05)
    print(ready(settings), flush=True)


def _local(host: str) -> str:
    """An address of this server to connect to (every interface: this machine is one)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def ready(settings: Settings) -> str:
    host = _local(settings.host)
    if ":" in host:
        host = f"[{host}]"
    base, feeds = f"http://{host}:{settings.port}", f"ws://{host}:{settings.port}/ws/halls"
    region = load_region(settings.region) if settings.region is not None else None
    if region is not None:
        halls = [config.hall.id for config in region.configs]
    else:
        halls = [load_hall(path).hall.id for path in settings.configs]
    lines = [f"hall: ready, serving {', '.join(halls)}. Open:"]
    lines.append(f"  start page         {base}/   (every page of every hall)")
    lines.append(f"  halls (API)        {base}/api/halls")
    if region is not None:
        demo = region.file.resolve() == DEMO_REGION
        who = f"  (log in as {DEMO_SUPERVISOR} / hall-demo)" if demo else ""
        lines.append(f"  city view          {base}/region{who}")
    for hall in halls[:MAX_LISTED]:
        lines.append(f"  hall screen        {base}/screens/{hall}   (window screens: /windows/N)")
        lines.append(f"  snapshot           {base}/api/halls/{hall}/snapshot")
        lines.append(f"  live feed          {feeds}/{hall}/events   (WebSocket)")
    if len(halls) > MAX_LISTED:
        lines.append(f"  ... and {len(halls) - MAX_LISTED} more halls: {base}/api/halls")
    lines += [
        f"  API schema         {base}/schema   (OpenAPI JSON; to read and try: /schema/swagger)",
        f"  health             {base}/health   /ready   /metrics (Prometheus)",
        f"journal: {_journal(settings)}",
    ]
    if settings.configs == (DEFAULT_CONFIG,):
        username, password = DEMO_STAFF
        hall = halls[0]
        lines += [
            f"demo hall ({DEFAULT_CONFIG.relative_to(ROOT)}; its header lists every demo account):",
            f"  kiosk page    {base}/kiosk/{hall}#token={DEMO_KIOSK_TOKEN}",
            f"  caller page   {base}/caller/{hall}/1   (log in as {username} / {password})",
            f"  pad page      {base}/pad/{hall}#token={DEMO_PAD_TOKEN}   (window 1's)",
            f"  kiosk token   {DEMO_KIOSK_TOKEN}   (Authorization: Bearer {DEMO_KIOSK_TOKEN})",
            f"  staff login   {username} / {password}"
            f"   (POST {base}/api/halls/{hall}/windows/1/login)",
            f"  manager pages {base}/manage/{hall}   (live view; /cases, /reports; log in as"
            f" manager / {password}, or deputy / {password} as the second manager)",
            f"  manager login manager / {password}   (POST {base}/api/halls/{hall}/managers/login)",
            "  agents        config/printer-agent.example.toml, config/speaker-agent.example.toml",
        ]
    lines.append("Stop with Ctrl-C.")
    return "\n".join(lines)


def _journal(settings: Settings) -> str:
    if settings.redis_url is None:
        return f"SQLite, {settings.journal_url}"
    return f"Redis, {without_password(settings.redis_url)}"
