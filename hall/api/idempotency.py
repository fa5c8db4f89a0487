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

from hall.api.auth import Principal
from hall.domain.errors import HallError

HEADER = "Idempotency-Key"
# UUIDs and ULIDs fit; nothing that could be mistaken for personal data or escape a log line.
KEY_PATTERN = r"[A-Za-z0-9_.:-]{8,64}"
_KEY = re.compile(KEY_PATTERN)


class BadIdempotencyKey(HallError):
    code = "invalid_idempotency_key"


def request_key(request: Request[Any, Any, Any]) -> str | None:
    """The request's idempotency key, scoped by its principal; None without the header."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not _KEY.fullmatch(value):
        raise BadIdempotencyKey(
            f"{HEADER} must be 8 to 64 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'"
        )
    principal: Principal = request.state.principal
    return f"{principal.name}/{value}"
