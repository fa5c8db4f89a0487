"""Logging of ``hall serve``: plain text for a terminal, or JSON lines for a log collector.

One event per line in both, uvicorn's own lines included (the same formatter for every logger).
The server's messages name halls, versions and error codes, never a person: usernames, staff
names, tokens and free text (reasons, ticket notes) stay out of logs. A request line (``--access-
log``) shows only the method, the path and the status: paths carry hall, window and ticket ids.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")


class JsonLines(logging.Formatter):
    """``{"time", "level", "logger", "message"[, "exception"]}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # ensure_ascii=False: hall names are Chinese; json.dumps escapes newlines either way.
        return json.dumps(entry, ensure_ascii=False)


class _RequestLine(logging.Filter):
    """uvicorn's access and WebSocket handshake lines without the client's address (personal
    data on a public network)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.args, tuple):
            return True
        if len(record.args) == 5 and record.name == "uvicorn.access":
            _, method, path, version, status = record.args
            record.msg, record.args = '"%s %s HTTP/%s" %d', (method, path, version, status)
        elif isinstance(record.msg, str) and record.msg.startswith('%s - "WebSocket'):
            _, path, *rest = record.args  # the path without its query: ``after=`` is anyone's
            record.msg = record.msg.removeprefix("%s - ")
            record.args = (str(path).partition("?")[0], *rest)
        return True


class _Connections(logging.Filter):
    """Without ``--access-log``: no line per WebSocket (uvicorn logs three as each opens and
    closes; a hall's screens reconnecting, or a client churning, would fill the log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        return not (
            message.startswith('%s - "WebSocket')
            or message in ("connection open", "connection closed")
        )


def config(log_format: LogFormat, level: str = "INFO", connections: bool = False) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the hall's loggers and uvicorn's (its ``log_config``);
    ``connections``: a line as each WebSocket opens and closes, as with ``--access-log``."""
    formatter: dict[str, Any] = (
        {"()": JsonLines}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    handler = {"class": "logging.StreamHandler", "formatter": "hall", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"hall": formatter},
        "filters": {"request_line": {"()": _RequestLine}, "connections": {"()": _Connections}},
        "handlers": {
            "default": handler,
            "access": {**handler, "filters": ["request_line"]},
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            # A line per forwarded command otherwise; failures are logged by the forwarder.
            "httpx": {"handlers": [], "level": "WARNING", "propagate": True},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
            "uvicorn.error": {
                "filters": ["request_line"] if connections else ["connections"],
                "level": level,
                "propagate": True,
            },
        },
    }


def without_password(url: str) -> str:
    """``redis://:secret@host:6379/0`` -> ``redis://:***@host:6379/0``: for logs and messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{parts.username or ''}:***@{parts.hostname}{port}"
    return urlunsplit(parts._replace(netloc=netloc))
