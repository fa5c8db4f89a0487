"""The generated hall days: deterministic per seed, spread over the ranges they must cover."""

from __future__ import annotations

import random
import statistics

from scheduling.generator import LOADS, SPEEDS, days, erlangs, flexible, generate, load
from scheduling.simulator import draw_visitors

DAYS = days(7, 300)


def test_a_seed_draws_the_same_day_and_another_seed_another() -> None:
    assert generate(11) == generate(11)
    assert generate(11).config != generate(12).config
    assert [w.name for w in days(7, 3)] == [w.name for w in DAYS[:3]]


def test_the_hall_covers_the_ranges() -> None:
    windows = [len(w.config.windows) for w in DAYS]
    categories = [len(w.config.categories) for w in DAYS]
    assert min(windows) == 5 and max(windows) == 20
    assert min(categories) == 3 and max(categories) == 8
    means = [s.mean for w in DAYS for s in w.service.values()]
    assert 3 <= min(means) < 3.5 and 18 < max(means) <= 20
    speeds = [v for w in DAYS for v in w.speeds.values()]
    assert SPEEDS[0] <= min(speeds) and max(speeds) <= SPEEDS[1]
    green = [w.priority_share["green"] for w in DAYS]
    assert 0 <= min(green) < 0.01 and 0.14 < max(green) <= 0.15
    share = statistics.mean

    assert 0.3 < share([bool(w.priority_share.get("appointment")) for w in DAYS]) < 0.7
    assert 0.2 < share([w.patience is not None for w in DAYS]) < 0.5
    assert 0.6 < share([w.lunch is not None for w in DAYS]) < 0.9
    assert share([w.no_show > 0 for w in DAYS]) > 0.9


def test_layouts_mix_comprehensive_and_specialised_windows() -> None:
    mixed = 0
    for day in DAYS:
        every = {c.id for c in day.config.categories}
        full = [w.categories for w in day.config.windows if set(w.categories) == every]
        partial = [w.categories for w in day.config.windows if set(w.categories) != every]
        assert len(full) >= 2
        assert len({profile[-1] for profile in full}) > 1  # no category last everywhere
        assert all(1 <= len(p) <= 3 for p in partial)
        mixed += bool(partial)
    assert mixed > len(DAYS) / 2


def test_every_category_is_served_and_the_load_is_in_range() -> None:
    for day in DAYS:
        served = {c for w in day.config.windows for c in w.categories}
        assert served == {c.id for c in day.config.categories}
        assert LOADS[0] - 1e-9 <= load(day) <= LOADS[1] + 1e-9
    loads = [load(day) for day in DAYS]
    assert min(loads) < 0.65 and max(loads) > 1.05


def test_surges_fall_on_long_transactions_too() -> None:
    surged_means = []
    for day in DAYS:
        for c, rates in day.rates.items():
            if max(rates) > 2.5 * statistics.median(rates):
                surged_means.append(day.service[c].mean)
    assert len(surged_means) > len(DAYS) / 2
    assert max(surged_means) > 15


def test_the_flexible_day_has_the_same_visitors_and_every_window_serves_all() -> None:
    day = DAYS[0]
    pooled = flexible(day)
    every = {c.id for c in day.config.categories}
    assert all(set(w.categories) == every for w in pooled.config.windows)
    for own, wide in zip(day.config.windows, pooled.config.windows, strict=True):
        assert wide.categories[: len(own.categories)] == own.categories  # its own order first
    assert draw_visitors(pooled, random.Random(3)) == draw_visitors(day, random.Random(3))
    assert erlangs(pooled) == erlangs(day)
    assert load(pooled) <= load(day) + 1e-12
