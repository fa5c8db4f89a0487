"""Log lines: one JSON object per line whatever the message holds; no secret in a journal URL."""

from __future__ import annotations

import json
import logging
import sys

from hall.logs import JsonLines, without_password


def test_one_json_object_per_line_even_with_newlines_and_a_traceback() -> None:
    try:
        raise ValueError("first\nsecond")
    except ValueError:
        record = logging.LogRecord("hall.x", logging.ERROR, __file__, 1, "a\n%s", ("大厅",), None)
        record.exc_info = sys.exc_info()
    line = JsonLines().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "a\n大厅"
    assert entry["level"] == "error" and entry["logger"] == "hall.x"
    assert "ValueError: first" in entry["exception"]


def test_a_redis_password_never_reaches_a_log() -> None:
    assert without_password("redis://:s3cret@10.0.0.5:6380/1") == "redis://:***@10.0.0.5:6380/1"
    assert without_password("redis://user:s3cret@host/0") == "redis://user:***@host/0"
    assert without_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert without_password("/srv/hall/journal.sqlite3") == "/srv/hall/journal.sqlite3"


def test_websocket_lines_only_with_the_access_log() -> None:
    from hall.logs import config

    def kept(connections: bool) -> list[str]:
        settings = config("text", connections=connections)
        names = settings["loggers"]["uvicorn.error"]["filters"]
        filters = [settings["filters"][name]["()"]() for name in names]
        lines = [
            ('%s - "WebSocket %s" [accepted]', ("127.0.0.1:5000", "/ws/x?after=3")),
            ("connection open", ()),
            ("connection closed", ()),
            ("Started server process [%d]", (1,)),
        ]
        records = [
            logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, args, None)
            for msg, args in lines
        ]
        return [r.getMessage() for r in records if all(f.filter(r) for f in filters)]

    assert kept(connections=False) == ["Started server process [1]"]
    assert kept(connections=True) == [
        '"WebSocket /ws/x" [accepted]',
        "connection open",
        "connection closed",
        "Started server process [1]",
    ]
