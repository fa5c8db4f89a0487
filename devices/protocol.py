"""The device link's messages: JSON text frames tagged by "type", as msgspec Structs.

Every agent (printer, speaker) and the hall's device endpoint speak these; ``decode`` is the one
door a frame comes in by, and it refuses anything that is not exactly one of them (unknown type,
unknown or missing field, a string over its bound, a frame over 4 KiB) with a ``ProtocolError``
whose code says how to close (``CLOSE_CODES``) and whose message never quotes the frame (only the
path of the field at fault).
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal, get_args

import msgspec

from devices.printing.ticket import PrintTicket

MAX_FRAME: Final = 4096

# Job, device, kind and window ids travel into logs, journals and the agent's done file (one id a
# line): printable ASCII without spaces keeps all three safe.
Id = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Detail = Annotated[str, msgspec.Meta(max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=200)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]

Status = Literal["ok", "paper_out", "paper_low", "printer_offline", "error"]
STATUSES: Final[frozenset[str]] = frozenset(get_args(Status))

# Error codes in an error frame and the close code that follows: 4000 + the HTTP status, as the
# hall's other sockets do (4408: no hello in time, or heartbeats stopped); 1008 for a well-formed
# message at the wrong moment or in the wrong direction.
CLOSE_CODES: Final[dict[str, int]] = {
    "malformed": 4400,
    "bad_token": 4401,
    "wrong_kind": 4403,
    "unknown_hall": 4404,
    "timeout": 4408,
    "protocol": 1008,
}


class _Message(
    msgspec.Struct,
    frozen=True,
    forbid_unknown_fields=True,
    kw_only=True,
    tag_field="type",
    tag=str.lower,
):
    pass


class Hello(_Message, frozen=True):
    """agent -> hall, the first frame."""

    token: Token
    agent: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Welcome(_Message, frozen=True):
    """hall -> agent: who the hall takes the agent for, and how often to send heartbeats."""

    device: Id
    kind: Id
    window: Id | None
    heartbeat: Seconds


class Heartbeat(_Message, frozen=True):
    """Both ways, whenever nothing else was sent for ``heartbeat`` seconds."""


class Print(_Message, frozen=True):
    """hall -> printer agent. The id is the ticket's id."""

    id: Id
    ticket: PrintTicket


class Play(_Message, frozen=True):
    """hall -> speaker agent. The id is "call-<event version>"."""

    id: Id
    url: Url
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    window: Id


class Ack(_Message, frozen=True):
    """agent -> hall: the job is done. Idempotent."""

    id: Id


class State(_Message, frozen=True):
    """agent -> hall: the hardware behind the agent."""

    status: Status
    detail: Detail = ""


class Error(_Message, frozen=True):
    """hall -> agent, just before the hall closes the connection."""

    error: Id
    message: Text


Message = Hello | Welcome | Heartbeat | Print | Play | Ack | State | Error
Job = Print | Play

_PATH: Final = re.compile(r" - at `(\$(?:\.[a-z_]{1,32})*)`$")
_MISSING: Final = re.compile(r"Object missing required field `([a-z_]{1,32})`")
_RULES: Final = "an unknown type or field, or a value of the wrong type or out of bounds"
_decoder: Final = msgspec.json.Decoder(Message)
_encoder: Final = msgspec.json.Encoder()


class ProtocolError(Exception):
    """A frame that is not a message of the link; ``code`` is a key of ``CLOSE_CODES``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def close_code(self) -> int:
        return CLOSE_CODES[self.code]


def decode(frame: str | bytes) -> Message:
    """The message in ``frame``; ``ProtocolError("malformed", ...)`` for anything else."""
    data = frame.encode() if isinstance(frame, str) else frame
    if len(data) > MAX_FRAME:
        raise ProtocolError("malformed", f"a frame is at most {MAX_FRAME} bytes")
    try:
        return _decoder.decode(data)
    except msgspec.ValidationError as error:
        # msgspec's message may quote the sender's value ("Invalid enum value 'x'") or key; only
        # a path naming fields of these Structs goes back.
        text = str(error)
        at, missing = _PATH.search(text), _MISSING.match(text)
        path = at[1] if at else "$"
        if missing:
            raise ProtocolError("malformed", f"a field is missing: `{path}.{missing[1]}`") from None
        raise ProtocolError(
            "malformed", f"not a message of the device link at `{path}`: {_RULES}"
        ) from None
    except msgspec.DecodeError:
        raise ProtocolError("malformed", "not a JSON object") from None


def encode(message: Message) -> str:
    return _encoder.encode(message).decode()
