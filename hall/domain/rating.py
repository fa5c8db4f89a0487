"""The rating scale of 好差评: five levels, best first, as every rating form lists them; the two
lowest (差评) ask for a reason, and the hall follows them up."""

from __future__ import annotations

LEVELS: tuple[tuple[int, str, str], ...] = (
    (5, "非常满意", "Very satisfied"),
    (4, "满意", "Satisfied"),
    (3, "基本满意", "Fairly satisfied"),
    (2, "不满意", "Dissatisfied"),
    (1, "非常不满意", "Very dissatisfied"),
)
VALUES = frozenset(level for level, _, _ in LEVELS)
LOW_LEVELS = (1, 2)
