"""bench.verdict: the verdict of a figure, the table, and the bounded suite runner (real child processes)."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import pytest

from bench.verdict import (
    AT_MOST,
    INFO,
    MEETS,
    NO_DATA,
    SHORT,
    Figure,
    Goal,
    SuiteReport,
    markdown,
    pick,
    run_suite,
    table,
)


def test_ratio_goal_meets_and_falls_short() -> None:
    fast = Figure("reads", 80.0, "calls/s", baseline=100.0, goal=Goal(0.6))
    slow = Figure("reads", 50.0, "calls/s", baseline=100.0, goal=Goal(0.6))
    assert fast.ratio == pytest.approx(0.8) and fast.verdict == MEETS
    assert slow.verdict == SHORT


def test_value_goal_with_direction() -> None:
    goal = Goal(2.0, AT_MOST, on="value")
    assert Figure("p99", 1.5, "s", goal=goal).verdict == MEETS
    assert Figure("p99", 2.5, "s", goal=goal).verdict == SHORT


def test_failed_calls_never_meet() -> None:
    f = Figure("reads", 99.0, "calls/s", baseline=100.0, goal=Goal(0.6), failed=1)
    assert f.verdict == SHORT


def test_missing_data_and_no_goal() -> None:
    assert Figure("x", float("nan"), "ms", goal=Goal(1.0, AT_MOST, on="value")).verdict == NO_DATA
    assert Figure("x", 1.0, "ms", baseline=0.0, goal=Goal(1.0)).verdict == NO_DATA  # no ratio without a base
    assert Figure("x", 1.0, "ms").verdict == INFO


def test_pick_reads_a_dict_of_floats_and_tolerates_missing_keys() -> None:
    figures = {"qps": 50.0, "bare": 100.0, "failed_a": 2.0, "failed_b": 1.0}
    f = pick(figures, "qps", "calls/s", baseline="bare", goal=Goal(0.4), failed=["failed_a", "failed_b"])
    assert f.ratio == pytest.approx(0.5) and f.failed == 3 and f.verdict == SHORT
    missing = pick(figures, "gone", "ms", baseline="also_gone")
    assert math.isnan(missing.value) and missing.baseline is None


def test_json_round_trip() -> None:
    f = Figure(
        "p99", 1.5, "s", baseline=3.0, baseline_name="bare", goal=Goal(2.0, AT_MOST, "value"), failed=0
    )
    data = json.loads(json.dumps(f.to_json()))
    assert data["verdict"] == MEETS and data["ratio"] == pytest.approx(0.5)
    assert Figure.from_json(data) == f


def test_table_names_failed_and_timed_out_suites() -> None:
    reports = [
        SuiteReport("a", "ok", 1.0, [Figure("f", 1.0, "s", baseline=2.0, goal=Goal(1.0, AT_MOST))]),
        SuiteReport("b", "timeout", 5.0, error="over 5 s"),
    ]
    text = table(reports)
    assert "meets" in text and "timeout" in text and "over 5 s" in text
    assert "| b | **timeout**" in markdown(reports)


@pytest.fixture()
def fake_suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Suites in a module of their own, run by the real `python -m bench --one` child."""
    (tmp_path / "fake_suites.py").write_text(
        "import time\n"
        "from bench.verdict import Figure, Goal\n"
        "def good(quick):\n"
        "    return [Figure('x', 2.0 if quick else 1.0, 'ms', baseline=4.0, goal=Goal(0.6, 'at_most'))]\n"
        "def boom(quick):\n"
        "    raise RuntimeError('broken on purpose')\n"
        "def hang(quick):\n"
        "    time.sleep(600)\n"
    )
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{':'.join(sys.path)}")


def test_run_suite_reports_figures_errors_and_deadlines(fake_suites: None) -> None:
    import os

    env = dict(os.environ)
    # The child reads SUITES from its own import of bench.__main__: register the fakes through an env hook.
    env["SALESOPS_BENCH_EXTRA_SUITES"] = "good=fake_suites:good,boom=fake_suites:boom,hang=fake_suites:hang"
    good = run_suite("good", True, 120, env)
    assert good.status == "ok" and good.figures[0].value == 2.0 and good.figures[0].verdict == MEETS
    boom = run_suite("boom", False, 120, env)
    assert boom.status == "failed" and "broken on purpose" in boom.error
    started = time.monotonic()
    hang = run_suite("hang", False, 5, env)
    assert hang.status == "timeout" and time.monotonic() - started < 60
