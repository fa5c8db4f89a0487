"""Server settings: which halls, where their journal lives, where to listen."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hall.config import ConfigError, HallConfig, load
from scheduling.policy import POLICIES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "default.toml"
DEFAULT_DATA = ROOT / "var"


@dataclass(frozen=True)
class Settings:
    configs: tuple[Path, ...] = (DEFAULT_CONFIG,)
    # A region file (hall/region.py): its halls are served instead of ``configs``.
    region: Path | None = None
    data_dir: Path = DEFAULT_DATA
    redis_url: str | None = None  # journal in Redis Streams instead of SQLite
    host: str = "127.0.0.1"
    port: int = 8000
    # Events queued per screen or feed before it counts as lagging and catches up from the
    # journal instead (hall/bus.py).
    feed_queue: int = 1000
    # Screen feeds (displays/feed.py): at most this many on the server, and from one client
    # address (a screen is cheap, but each holds a connection and a queue).
    max_screens: int = 5000
    max_screens_per_address: int = 100
    # Refuse to start on a Redis that may lose acknowledged appends (no AOF, appendfsync other
    # than always, an eviction policy) unless the operator accepts it (tests, demos).
    allow_volatile_redis: bool = False
    # Seconds between heartbeats on the device link (devices/endpoint.py): a device silent for
    # three is offline.
    device_heartbeat: float = 10.0
    # Seconds an append (or a replay after a failed one) may take before it counts as failed,
    # and a read may wait behind the writer before it is answered 503.
    store_timeout: float = 2.0
    read_timeout: float = 2.0
    # Seconds between the discipline watcher's looks at the clock (a pause running too long is
    # found at most this late).
    discipline_tick: float = 1.0
    # Spoken announcements (displays/voice): where rendered segments are kept (default
    # DATA/voice; servers may share one), and whether to speak at all (off: the chime alone).
    voice_cache: Path | None = None
    speech: bool = True
    # A process of a region over Redis (hall/cluster): its name among the region's processes
    # (default HOSTNAME:PORT), the URL the others forward commands to (default http://HOST:PORT),
    # and the writer lease: a dead writer's halls are taken over within about this many seconds.
    node_id: str | None = None
    advertise: str | None = None
    lease_seconds: float = 3.0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def journal_url(self) -> str:
        """A redis:// URL, or the path of the SQLite journal file under the data directory."""
        return self.redis_url or str(self.data_dir / "journal.sqlite3")

    @property
    def voice_dir(self) -> Path:
        return self.voice_cache or self.data_dir / "voice"


def load_hall(path: Path) -> HallConfig:
    """A hall file as the server runs it: :func:`hall.config.load`, and a calling policy that
    exists (checked here, above both: ``scheduling`` reads the config's types, not the reverse).
    """
    config = load(path)
    if config.hall.policy not in POLICIES:
        known = ", ".join(sorted(POLICIES))
        reason = f"unknown calling policy {config.hall.policy!r} (known: {known})"
        raise ConfigError(str(path), "hall.policy", reason)
    return config
