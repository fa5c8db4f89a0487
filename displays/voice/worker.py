"""The speech worker: a process of its own (``python -m displays.voice.worker``) that owns one
pyttsx3 engine (espeak-ng) and renders one segment per request into a WAV file.

Protocol, one JSON object per line: the worker first writes :class:`Hello` (the voices espeak-ng
has, or why there is no engine); then for each :class:`Render` read from stdin it writes a
:class:`Done`. It exits when stdin closes, so it never outlives the server, even one killed hard.

Why a process: synthesis is CPU work in a C library that holds the GIL in places and keeps global
state (espeak-ng initialises once per process); the server's event loop must never wait on it.
Why one file per run and the wait: pyttsx3's ``runAndWait()`` can return before the WAV is on
disk, and several ``save_to_file`` calls queued before one run write only the last. So each
request is one ``save_to_file`` and one run, then a wait for ``finished-utterance``, then the
file is checked and moved into place (atomically: another server may share the cache).
Why the check and the retry: pyttsx3 2.99 writes the file when espeak-ng's end-of-message event
arrives and only then adds the samples that came with that event, so now and then (seen at a
busy server start here, never in a quiet loop of 480) the file lacks its last chunk: empty for a
short phrase, cut for a long one. A complete rendering ends in espeak-ng's end pause; one that
does not is redone.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

VOLUME = 0.8  # 1.0 clips on loud vowels
TIMEOUT = 10.0  # s for one segment; a short phrase takes about 15 ms
ATTEMPTS = 3
END_PAUSE = 0.1  # s of silence that a complete rendering ends with (espeak-ng pads ~0.4 s)


class Hello(msgspec.Struct, frozen=True):
    voices: list[str] | None = None
    error: str | None = None


class Render(msgspec.Struct, frozen=True):
    text: str
    voice: str
    rate: int
    path: str


class Done(msgspec.Struct, frozen=True):
    error: str | None = None


class _Engine:
    def __init__(self) -> None:
        import pyttsx3  # here: the server imports this module's messages, not the engine

        self.engine: Any = pyttsx3.init()
        self.voices = sorted(v.id for v in self.engine.getProperty("voices"))
        self.finished = threading.Event()
        self.engine.connect("finished-utterance", lambda **_: self.finished.set())

    def render(self, request: Render) -> None:
        # espeak-ng accepts an unknown voice silently and speaks with the last one.
        if request.voice not in self.voices:
            raise ValueError(f"espeak-ng has no voice {request.voice!r}")
        target = Path(request.path)
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        self.engine.setProperty("voice", request.voice)
        self.engine.setProperty("rate", request.rate)
        self.engine.setProperty("volume", VOLUME)
        try:
            # pyttsx3 opens the file in its own thread: one it cannot write there is a traceback
            # on stderr and no finished-utterance, i.e. TIMEOUT per segment. Fail at once here.
            partial.write_bytes(b"")
            for attempt in range(1, ATTEMPTS + 1):
                problem = self._once(request.text, partial)
                if problem is None:
                    os.replace(partial, target)
                    return
                if attempt == ATTEMPTS:
                    raise RuntimeError(f"{problem} ({ATTEMPTS} attempts)")
        finally:
            partial.unlink(missing_ok=True)

    def _once(self, text: str, path: Path) -> str | None:
        """Render into ``path``; what is wrong with the file, or None."""
        from displays.voice.joiner import THRESHOLD
        from displays.voice.wav import WavError, decode, samples

        self.finished.clear()
        self.engine.save_to_file(text, str(path))
        self.engine.runAndWait()
        if not self.finished.wait(TIMEOUT):
            raise TimeoutError(f"no finished-utterance within {TIMEOUT:g} s")
        try:
            pcm = decode(path.read_bytes())
        except (OSError, WavError) as exc:
            return f"unreadable WAV: {exc}"
        tail = pcm[-samples(END_PAUSE) :]
        if len(pcm) <= len(tail) or max(map(abs, tail)) > THRESHOLD:
            return f"cut short ({len(pcm)} samples)"
        return None


class _Stderr:
    """The worker's stderr (fd 2, shared with the server's log) turned into an anonymous file:
    pyttsx3's threads print tracebacks there, many lines per failed segment. A failure's
    :class:`Done` carries the last line instead, and the server logs what it decides to."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (open for the process's life)
        os.dup2(self._file.fileno(), sys.stderr.fileno())

    def last_line(self) -> str | None:
        """The last line written since the previous call (then forgotten)."""
        sys.stderr.flush()
        fd = self._file.fileno()
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, os.fstat(fd).st_size).decode(errors="replace")
        os.ftruncate(fd, 0)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else None

    def explain(self, exc: Exception) -> str:
        """``exc`` in one line, with the last line printed since the previous call, if any."""
        error = f"{type(exc).__name__}: {exc}"
        printed = self.last_line()
        return error if printed is None else f"{error} ({printed})"


def main() -> None:
    # The protocol gets its own copy of stdout; the engine's chatter ("Audio saved to ...",
    # printed by pyttsx3) goes to /dev/null instead of into the protocol.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, sys.stdout.fileno())
    stderr = _Stderr()
    try:
        engine = _Engine()
    except Exception as exc:  # no pyttsx3, no libespeak-ng, no sound data: say why and stop
        _send(channel, Hello(error=stderr.explain(exc)))  # with espeak-ng's complaint, if any
        return
    try:
        _send(channel, Hello(voices=engine.voices))
        _serve(engine, channel, stderr)
    except BrokenPipeError:  # the server is gone (killed): so is the reason to be
        return


def _serve(engine: _Engine, channel: BinaryIO, stderr: _Stderr) -> None:
    decoder = msgspec.json.Decoder(Render)
    for line in sys.stdin.buffer:
        try:
            engine.render(decoder.decode(line))
        except Exception as exc:
            _send(channel, Done(error=stderr.explain(exc)))
        else:
            stderr.last_line()  # a warning of a segment that rendered: of no further use
            _send(channel, Done())


def _send(channel: BinaryIO, message: msgspec.Struct) -> None:
    channel.write(msgspec.json.encode(message) + b"\n")


if __name__ == "__main__":
    main()
