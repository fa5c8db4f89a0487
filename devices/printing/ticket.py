"""What a printed ticket shows (a placeholder with the brief's fields until the printing branch
lands; keep the field names identical)."""

from __future__ import annotations

import msgspec


class PrintTicket(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    hall_name: str
    hall_name_en: str
    number: str
    category_name: str
    category_name_en: str
    priority_name: str | None
    ahead: int
    wait_minutes: float | None
    issued_at: str
    url: str
    notice: str
    notice_en: str
