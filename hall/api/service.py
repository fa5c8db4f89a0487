"""The running halls of one server: their engines, journal, bus and sessions, started and stopped
together. ``create_app`` builds one and keeps it in ``app.state.service``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from displays.voice.service import VoiceService
from hall.api.auth import Sessions
from hall.api.ratelimits import IssueLimiter
from hall.api.session_store import LocalSessions, RedisSessions
from hall.bus import Bus
from hall.config import HallConfig
from hall.domain.errors import ECHO_CHARS, UnknownHall, shown
from hall.engine import HallEngine
from hall.journal import open_journal
from hall.journal.base import Journal, JournalError
from hall.journal.mark import DurableMark, mark_path
from hall.logs import without_password
from hall.metrics import Metrics
from hall.oversight.runner import WatcherRunner
from hall.region import Region
from hall.reports.service import Reports
from hall.settings import Settings
from hall.views import Estimator

if TYPE_CHECKING:  # redis is imported only by a server on a Redis journal
    from hall.cluster.coordinator import Coordinator
    from hall.cluster.forward import Forwarder

log = logging.getLogger(__name__)


class HallService:
    def __init__(
        self,
        configs: list[HallConfig],
        journal_url: str,
        feed_queue: int = 1000,
        settings: Settings | None = None,
        region: Region | None = None,
    ) -> None:
        self.configs = configs
        self.region = region  # the city view's tree, when the server runs a region's halls
        self.journal_url = journal_url
        self.settings = settings or Settings()
        self.bus = Bus(feed_queue)
        # Sessions outlive a restart where the server keeps a data directory (not in tests that
        # run on a journal in memory). Over Redis they are the region's, in Redis (_share()).
        local = journal_url != "memory:" and not journal_url.startswith(("redis://", "rediss://"))
        self.sessions = Sessions(
            store=LocalSessions(self.settings.data_dir / "sessions.json" if local else None)
        )
        self.issue_limits = IssueLimiter()
        self.journal: Journal | None = None
        self.engines: dict[str, HallEngine] = {}
        self.watchers: dict[str, WatcherRunner] = {}  # each hall's discipline watcher
        # Over Redis, a process of a region (hall/cluster): it writes the halls whose lease it
        # holds, follows the others and forwards their commands.
        self.cluster: Coordinator | None = None
        self.cluster_secret: bytes | None = None
        self._forwarder: Forwarder | None = None
        self._watching: dict[str, asyncio.Task[None]] = {}
        self.metrics = Metrics(self.engines, self.bus)  # Prometheus series, at /metrics
        self.voice = VoiceService(configs, self.settings.voice_dir, self.settings.speech)
        # Read models beside the journal (in memory with a journal in memory).
        self.reports = Reports(
            configs, None if journal_url == "memory:" else self.settings.data_dir
        )
        self._claim: TextIO | None = None  # the lock file of a SQLite journal, while serving
        # The key of the ID-number hashes (hall/identity.py): one per deployment, kept in the
        # data directory (over Redis, in Redis), so a restart still knows who holds a ticket.
        self.person_key = (
            deployment_key(self.settings.data_dir / "person.key")
            if local
            else secrets.token_bytes(32)  # memory; over Redis, replaced by _share()
        )

    async def start(self) -> None:
        self.journal = open_journal(self.journal_url)
        try:
            self._claim = claim_journal(self.journal_url)
            await self._check_durability(self.journal)
            if self.journal_url.startswith(("redis://", "rediss://")):
                await self._share(self.journal)
                await self._join_region(self.journal)
            for config in self.configs:
                engine = self._engine(config, self.journal)
                await engine.start()
                self.engines[config.hall.id] = engine
                if engine.leading:
                    await self._watch(config.hall.id)
            if self.cluster is not None:
                await self.cluster.start()
            self.reports.start(self.journal, self.engines)
        except BaseException as exc:
            if isinstance(exc, JournalError):
                log.error("not starting: %s", exc)  # one plain line above the traceback
            await self.stop()
            raise
        await self.voice.start()  # renders in the background: the halls serve meanwhile
        journal = without_password(self.journal_url)
        log.info("serving halls %s from %s", ", ".join(self.engines), journal)

    async def stop(self) -> None:
        await self.voice.stop()
        await self.reports.stop()
        await self.sessions.store.close()
        if self.cluster is not None:
            await self.cluster.stop()  # hands every hall over: a standby takes them at once
            self.cluster = None
        for task in self._watching.values():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for watcher in self.watchers.values():
            await watcher.stop()
        self.watchers.clear()
        if self._forwarder is not None:
            await self._forwarder.close()
            self._forwarder = None
        for engine in self.engines.values():
            await engine.stop()
        self.engines.clear()
        if self.journal is not None:
            await self.journal.close()
            self.journal = None
        if self._claim is not None:
            self._claim.close()  # and the lock with it
            self._claim = None

    async def _check_durability(self, journal: Journal) -> None:
        problems = await journal.durability_problems()
        if not problems:
            return
        text = "; ".join(problems)
        if not self.settings.allow_volatile_redis:
            raise VolatileJournal(
                f"the journal {self.journal_url} may lose acknowledged events: {text}. Configure "
                "Redis with appendonly yes, appendfsync always, maxmemory-policy noeviction, or "
                "pass --allow-volatile-redis to accept losing them."
            )
        log.warning("!!! VOLATILE JOURNAL: %s; acknowledged events may be lost !!!", text)

    async def _share(self, journal: Journal) -> None:
        """Over Redis, what every process of the region must agree on: staff sessions (a token
        made on one works on all; a logout on one ends it on all) and the person key."""
        from hall.journal.redis import RedisJournal, shared_secret

        assert isinstance(journal, RedisJournal)
        self.sessions.store = RedisSessions(self.journal_url, journal.tag)
        self.person_key = await shared_secret(journal, "person-key")

    async def _join_region(self, journal: Journal) -> None:
        from hall.cluster.coordinator import Coordinator
        from hall.cluster.forward import Forwarder
        from hall.journal.redis import RedisJournal, shared_secret

        assert isinstance(journal, RedisJournal)
        settings = self.settings
        self.cluster_secret = await shared_secret(journal, "cluster-secret")
        node = settings.node_id or f"{socket.gethostname()}:{settings.port}"
        host = socket.gethostname() if settings.host in ("0.0.0.0", "::") else settings.host
        url = settings.advertise or f"http://{host}:{settings.port}"
        self.cluster = Coordinator(
            journal, self.engines, node, url, settings.lease_seconds, self._writing
        )
        # Long enough for a standby to take over from a writer that died or hangs.
        patience = 2 * settings.store_timeout + settings.lease_seconds
        self._forwarder = Forwarder(self.cluster.writer_url, self.cluster_secret, patience)
        self.cluster.forwarder = self._forwarder

    def _writing(self, hall: str, leading: bool) -> None:
        """The discipline watcher runs beside the hall's writer only: it records breaches, and
        one process finding each is enough."""
        previous = self._watching.get(hall)
        task = asyncio.create_task(self._rewatch(hall, previous), name=f"watch-{hall}")
        self._watching[hall] = task

    async def _rewatch(self, hall: str, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:  # one change at a time, in order
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await previous
        watcher = self.watchers.pop(hall, None)
        if watcher is not None:
            await watcher.stop()
        while self.engines[hall].leading:
            try:
                await self._watch(hall)
                return
            except JournalError as exc:  # it rebuilds from the journal: again once it answers
                log.warning("hall %s: discipline watcher not started yet (%s)", hall, exc)
                await asyncio.sleep(1.0)

    async def _watch(self, hall: str) -> None:
        watcher = WatcherRunner(self.engines[hall], self.settings.discipline_tick)
        await watcher.start()
        self.watchers[hall] = watcher

    def _engine(self, config: HallConfig, journal: Journal) -> HallEngine:
        settings = self.settings
        mark = None
        if self.journal_url != "memory:":
            mark = DurableMark(mark_path(settings.data_dir, self.journal_url, config.hall.id))
        engine = HallEngine(
            config,
            journal,
            self.bus,
            store_timeout=settings.store_timeout,
            read_timeout=settings.read_timeout,
            mark=mark,
            observer=self.metrics,
            leading=self.cluster is None,
            forward=self._forwarder,
        )
        if self.cluster is not None:
            engine.fresh = self.cluster.fresh
        return engine

    def engine(self, hall: str) -> HallEngine:
        engine = self.engines.get(hall)
        if engine is None:
            raise UnknownHall(f"no hall {shown(hall)} on this server", hall=hall[:ECHO_CHARS])
        return engine


def deployment_key(path: Path) -> bytes:
    """32 random bytes kept in ``path`` (made on first use, readable by this user only)."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile: use theirs
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(descriptor, "w") as file:
        file.write(key.hex())
        file.flush()
        os.fsync(file.fileno())
    return key


def claim_journal(journal_url: str) -> TextIO | None:
    """One server per SQLite journal: a second one would write every hall too, and each would
    answer from a state the other's appends leave behind. The returned lock file holds the claim
    until it is closed (or the process dies). A Redis journal shared by many servers needs a
    writer lease per hall instead: None."""
    if journal_url.startswith(("redis://", "rediss://")) or journal_url == "memory:":
        return None
    Path(journal_url).parent.mkdir(parents=True, exist_ok=True)  # as the journal does
    claim = open(f"{journal_url}.lock", "a")  # noqa: SIM115 - held until the caller closes it
    try:
        fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        claim.close()
        raise JournalInUse(
            f"another hall server is using the journal {journal_url}; stop it, or give this "
            "one its own data directory (--data DIR)"
        ) from None
    return claim


class JournalInUse(JournalError):
    """Another server process serves this journal's halls."""


class VolatileJournal(JournalError):
    """The journal's store is configured so that it may lose what it acknowledged."""


def estimator(engine: HallEngine) -> Estimator:
    """For wait estimates in views: the engine's running service times, at the engine's now."""
    return Estimator(engine.times, engine.clock(), engine.policy)
