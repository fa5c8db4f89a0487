"""Reason lists and the issuing limit in a hall file: built in when absent, checked when given."""

from __future__ import annotations

from hall.config import CANCEL_REASONS, PAUSE_REASONS, Issuing, load
from tests.unit.test_config import TOWN, broken, refusal


def test_a_file_without_them_gets_the_built_in_ones() -> None:
    town = load(TOWN)
    assert "pause_reasons" not in TOWN.read_text(encoding="utf-8")
    assert (town.pause_reasons, town.cancel_reasons) == (PAUSE_REASONS, CANCEL_REASONS)
    assert town.issuing == Issuing()
    assert town.pause_reason("break") is not None and town.cancel_reason("break") is None


def test_duplicate_reason_codes_are_refused() -> None:
    error = refusal(broken('code = "meeting"', 'code = "break"'))
    assert (error.key, error.reason) == ("pause_reasons[1].code", "duplicate code 'break'")


def test_a_reason_code_is_an_identifier() -> None:
    error = refusal(broken('code = "meeting"', 'code = "Meeting Room"'))
    assert error.key == "pause_reasons[1].code"


def test_a_burst_of_zero_is_refused() -> None:
    error = refusal(broken("device_burst = 5", "device_burst = 0"))
    assert error.key == "issuing.device_burst"
