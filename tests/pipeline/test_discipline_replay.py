"""The discipline timer's recorded histories replay against today's workflow code (no nondeterminism).

The histories were recorded on the time-skipping server: a tenant with a deal that
outstays a 30-hour dwell limit and misses two weekly deadlines, a signal while the
timer sleeps, a run that continued as new after its 50 rounds and the run after it;
and the same first run recorded after signals were coalesced (the `coalesce-signals`
patch marker: both the old and the new branch must replay).
A change to the workflow that would break running timers fails here; re-record
only together with a versioning plan (workflow.patched) for the timers in flight.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from services.pipeline.discipline_workflows import DisciplineWorkflow, workflow_id

HISTORIES = sorted((Path(__file__).parent / "histories").glob("discipline_*.json"))


def test_histories_are_recorded() -> None:
    assert len(HISTORIES) == 3


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(workflow_id("demo"), path.read_text())


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_recorded_history_replays(path: Path) -> None:
    history = _load(path)
    assert len(history.events) > 100  # many rounds of plan, sleep, sweep
    result = await Replayer(workflows=[DisciplineWorkflow]).replay_workflow(history)
    assert result.replay_failure is None
