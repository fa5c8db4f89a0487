"""The field types of every request body, so each input is bounded and checked the same way.

Request Structs use these instead of bare ``str``/``datetime``: an id, a free text that people
may see (no control characters), a password, and a time that must be an ISO 8601 string with its
time zone (never a number of seconds, which msgspec's lenient mode would otherwise accept).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

# The shape of config ids (hall.config.Ident): anything else cannot name a category or a window.
Id = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]

# Free text is shown to staff and, for some, on screens: no C0/C1 control characters (NUL, escape
# sequences, newlines), no line separators and no bidirectional overrides (which can make a reason
# read backwards on a screen). Everything else, Chinese included, is welcome.
_PRINTABLE = r"[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]"
# Python's ``$`` also matches before a final newline ("note\n" passed): ``(?!\n)`` stops that,
# and means nothing to the ECMAScript regexes of the OpenAPI document, where ``$`` is the end.
_END = r"(?!\n)$"
# The longest free text; pages give their inputs this maxlength (settings.text_max).
TEXT_MAX = 200
Text = Annotated[
    str, msgspec.Meta(min_length=1, max_length=TEXT_MAX, pattern=f"^{_PRINTABLE}+{_END}")
]
# The same, where empty has a meaning (a notice: back to the hall file's).
MaybeText = Annotated[str, msgspec.Meta(max_length=TEXT_MAX, pattern=f"^{_PRINTABLE}*{_END}")]

# Checked by argon2 and never shown; only its length is bounded (argon2 cost grows with it).
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

# An ISO 8601 date and time with its offset (RFC 3339), e.g. 2026-11-23T09:00:00+08:00.
AwareTime = Annotated[
    str,
    msgspec.Meta(
        pattern=(
            r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
            r"(Z|[+-][0-9]{2}:[0-9]{2})$"
        ),
        extra_json_schema={"format": "date-time"},
    ),
]


def aware_time(text: str) -> datetime:
    """The datetime of an :data:`AwareTime` string; ValueError if it is no real date or time."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:  # the pattern requires an offset; this keeps the promise explicit
        raise ValueError("a time needs its time zone offset")
    return parsed
