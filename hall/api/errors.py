"""One function maps every error to one HTTP status and the stable body
``{"error": code, "message": ..., "detail": ...}``. Nothing here ever answers bad input with 500.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from hall.cluster.forward import Relayed
from hall.domain import errors as domain
from hall.engine import HallBusy
from hall.journal.base import JournalError, NotWriter

log = logging.getLogger(__name__)


class Unauthorized(domain.HallError):
    """No credential, or one that is unknown or expired."""

    code = "unauthorized"


class TooManyAttempts(domain.HallError):
    """Too many wrong passwords (a username or an address is locked for a while), or tickets
    issued too fast by one device; ``detail.retry_after`` says how many seconds to wait."""

    code = "too_many_attempts"


class BodyTooLarge(domain.HallError):
    """A request body larger than any command needs."""

    code = "body_too_large"


class BodyTooDeep(domain.HallError):
    """A request body nested deeper than any command needs."""

    code = "invalid_request"


class PathWithNul(domain.HallError):
    """A path with a NUL character: no route or file has one (a file lookup would raise)."""

    code = "invalid_path"


class Busy(domain.HallError):
    """Too many costly checks (argon2) at once; ``detail.retry_after`` seconds, then try again."""

    code = "busy"


STATUS: list[tuple[type[Exception], int]] = [
    (Unauthorized, 401),
    (TooManyAttempts, 429),
    (BodyTooLarge, 413),
    (Busy, 503),
    (domain.Forbidden, 403),
    (domain.NotFound, 404),
    (domain.Conflict, 409),
    (domain.InvalidInput, 422),
    (JournalError, 503),
]


_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": code, "message": message, "detail": detail}


def to_response(exc: Exception) -> tuple[int, dict[str, Any]]:
    """(status, body) for any exception; unexpected ones are logged and answered 500."""
    if isinstance(exc, Relayed):
        return exc.status, error_body(exc.error, exc.message, exc.detail or None)
    if isinstance(exc, domain.HallError):
        status = next((s for cls, s in STATUS if isinstance(exc, cls)), 400)
        return status, error_body(exc.code, exc.message, exc.detail or None)
    if isinstance(exc, HallBusy):  # nothing is wrong with the journal: the hall is busy
        return 503, error_body("busy", "the hall is busy; try again", {"retry_after": 1})
    if isinstance(exc, NotWriter):  # nothing was done: safe to send again
        return 503, error_body("not_writer", str(exc), {"retry_after": 1})
    if isinstance(exc, JournalError):
        return 503, error_body("unavailable", "the hall's journal is unavailable; try again")
    if isinstance(exc, ValidationException):
        return 400, error_body("invalid_request", _validation_message(exc), exc.extra)
    if isinstance(exc, HTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return exc.status_code, error_body(code, exc.detail)
    log.exception("unexpected error", exc_info=exc)
    return 500, error_body("internal_error", "unexpected error; it has been logged")


def _validation_message(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    if any(isinstance(e, dict) and e.get("key") == "data" for e in extra):  # no body at all
        return "this needs a JSON object as its body ({} where every field is optional)"
    parts = [f"{e.get('key', '?')}: {e.get('message', '')}" for e in extra if isinstance(e, dict)]
    return "; ".join(parts) or exc.detail


def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    status, body = to_response(exc)
    # Litestar's own errors carry headers that belong to the answer (405: Allow).
    headers = exc.headers if isinstance(exc, HTTPException) else None
    retry_after = body["detail"].get("retry_after") if isinstance(body["detail"], dict) else None
    if isinstance(retry_after, int | float):  # 429 and the like: what HTTP clients read
        headers = {**(headers or {}), "Retry-After": str(max(1, round(retry_after)))}
    return Response(body, status_code=status, headers=headers)
