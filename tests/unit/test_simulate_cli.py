"""``hall simulate`` through hall.simulate_cli (the hall CLI only wires these two functions)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from hall import simulate_cli as cli
from hall.config import DEFAULT_POLICY
from scheduling.policy import POLICIES

HALL = """
[hall]
id = "cli-hall"
name = "命令行测试大厅"
name_en = "CLI Test Hall"
policy = "novosga"

[[zones]]
id = "main"
name = "综合"
name_en = "Main"

[[categories]]
id = "general"
prefix = "A"
name = "综合事务"
name_en = "General"
zone = "main"

[[categories]]
id = "tax"
prefix = "B"
name = "税务"
name_en = "Tax"
zone = "main"
mean_service_minutes = 12

[[windows]]
id = "1"
name = "1号窗口"
name_en = "Window 1"
zone = "main"
categories = ["general", "tax"]

[[windows]]
id = "2"
name = "2号窗口"
name_en = "Window 2"
zone = "main"
categories = ["tax"]

[[priorities]]
id = "green"
name = "绿色通道"
name_en = "Green lane"
rank = 20
"""


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hall simulate")
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


def test_a_hall_file_with_its_own_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hall.toml"
    path.write_text(HALL, encoding="utf-8")
    assert run("--config", str(path), "--days", "2", "--seed", "5") == 0
    out = capsys.readouterr().out
    assert "seed 5; day seeds 5000015, 5000016" in out
    assert "policy novosga on cli-hall: 2 day(s)" in out  # the hall file names the policy
    for label in ("general", "tax", "ALL", "utilisation", "wait estimate at issue", "M/G/2"):
        assert label in out
    # The forecast's error, on every 10th ticket, with its interval's coverage; the quick
    # estimate's on the same tickets beside it.
    forecast = next(line for line in out.splitlines() if "wait estimate at issue" in line)
    assert "80% interval covers" in forecast
    assert "quick M/M/c estimate of the same tickets" in out
    tickets = int(issued_count(out))
    estimated = int(forecast.split("(")[1].split()[0])
    assert 0 < estimated <= tickets // 10 + 2
    # Every ticket issued is accounted for, by outcome.
    issued = next(line for line in out.splitlines() if "tickets issued:" in line)
    counts = [int(part.rsplit(" ", 1)[1]) for part in issued.split(":")[1].split(",")]
    assert sum(counts) == int(issued.split()[0]) > 0
    assert "over opening hours" in out


def issued_count(out: str) -> str:
    return next(line for line in out.splitlines() if "tickets issued:" in line).split()[0]


def test_the_policy_defaults_to_the_hall_configs_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        run("--help")
    assert f"or {DEFAULT_POLICY})" in capsys.readouterr().out


def test_compare_prints_every_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--workload", "comprehensive", "--compare", "--days", "1", "--no-estimates") == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("minutes"))
    assert all(name in header for name in POLICIES)
    assert "mean wait 2.83" in out  # the Erlang C reference of 10 windows at 85%
    for row in ("tickets issued", "after hours", "abandoned", "sent home", "left uncalled"):
        assert row in out
    # Nobody left uncalled on this day: a dash, not nan.
    left = next(line for line in out.splitlines() if line.startswith("left uncalled"))
    assert left.split()[3:] == ["-"] * len(POLICIES), left
    assert "nan" not in out


def test_a_hall_that_opens_too_late_to_simulate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Eight hours from 17:00 would issue past the 23:30 hard stop: said, not a traceback."""
    path = tmp_path / "hall.toml"
    hours = '[[hours.periods]]\ndays = ["mon"]\nopen = "17:00"\nclose = "23:59"\n'
    path.write_text(HALL + hours, encoding="utf-8")
    assert run("--config", str(path), "--days", "1") == 2
    assert "past the 23:30 hard stop" in capsys.readouterr().out


def test_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--workload", "skewed", "--days", "0") == 2
    assert run("--workload", "skewed", "--estimate-every", "0") == 2

    with pytest.raises(SystemExit):
        run("--workload", "skewed", "--policy", "fastest")
    capsys.readouterr()
