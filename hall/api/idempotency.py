"""The ``Idempotency-Key`` header of mutating routes: a client that got no answer (a timeout, a
503) retries with the same key and gets the first answer instead of a second ticket.

Keys are scoped by who sends them (a device id or a username), so two clients cannot answer each
other's retries; the engine keeps them in the journal, on the events they made, for the business
day.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request

from hall.domain.errors import HallError

HEADER = "Idempotency-Key"
# UUIDs and ULIDs fit; nothing that could be mistaken for personal data or escape a log line.
KEY_PATTERN = r"[A-Za-z0-9_.:-]{8,64}"
_KEY = re.compile(KEY_PATTERN)
STATE_KEY = "idempotency_key"  # where the checked, scoped key waits in the connection's state


class BadIdempotencyKey(HallError):
    code = "invalid_idempotency_key"


def checked_key(value: str | None) -> str | None:
    """The header's value if well formed (every guarded write checks it, whether or not it
    replays: a malformed key is a 400 everywhere); None without the header."""
    if value is not None and not _KEY.fullmatch(value):
        raise BadIdempotencyKey(
            f"{HEADER} must be 8 to 64 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'"
        )
    return value


def request_key(request: Request[Any, Any, Any]) -> str | None:
    """The request's idempotency key, scoped by its principal; None without the header. Read
    and checked with the token (hall.api.auth.Authorize), on every route that needs one."""
    key: str | None = request.scope["state"].get(STATE_KEY)
    return key
