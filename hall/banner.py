"""What ``hall serve`` prints once every hall is replayed: where to go, and how to log in."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from hall.settings import DEFAULT_CONFIG, ROOT, Settings, load_hall

# The demo hall's credentials, written in config/default.toml's header (never in a real hall).
DEMO_KIOSK_TOKEN = "demo-kiosk-token"
DEMO_STAFF = ("zhangwei", "hall-demo")


def ready(settings: Settings) -> str:
    host = settings.host
    if host in ("0.0.0.0", "::", ""):  # every interface: this machine is one of them
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    base, feeds = f"http://{host}:{settings.port}", f"ws://{host}:{settings.port}/ws/halls"
    halls = [load_hall(path).hall.id for path in settings.configs]
    lines = [f"hall: ready, serving {', '.join(halls)}. Open:"]
    lines.append(f"  halls (API)        {base}/api/halls")
    for hall in halls:
        lines.append(f"  snapshot           {base}/api/halls/{hall}/snapshot")
        lines.append(f"  live feed          {feeds}/{hall}/events   (WebSocket)")
    lines += [
        f"  API schema         {base}/schema   (OpenAPI JSON)",
        f"  health             {base}/health   /ready   /metrics (Prometheus)",
        f"journal: {_journal(settings)}",
    ]
    if settings.configs == (DEFAULT_CONFIG,):
        username, password = DEMO_STAFF
        lines += [
            f"demo hall ({DEFAULT_CONFIG.relative_to(ROOT)}; its header lists every demo account):",
            f"  kiosk token   {DEMO_KIOSK_TOKEN}   (Authorization: Bearer {DEMO_KIOSK_TOKEN})",
            f"  staff login   {username} / {password}"
            f"   (POST {base}/api/halls/{halls[0]}/windows/1/login)",
        ]
    lines.append("Stop with Ctrl-C.")
    return "\n".join(lines)


def _journal(settings: Settings) -> str:
    if settings.redis_url is None:
        return f"SQLite, {settings.journal_url}"
    parts = urlsplit(settings.redis_url)
    if parts.password:  # never print a secret
        netloc = f"{parts.username or ''}:***@{parts.hostname}"
        netloc += f":{parts.port}" if parts.port else ""
        parts = parts._replace(netloc=netloc)
    return f"Redis, {urlunsplit(parts)}"
