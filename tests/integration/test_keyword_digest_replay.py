"""The weekly keyword digest's keeper workflow: its history, recorded before the keeper's body moved to
kit.schedules, replays against the current code (running keepers finish on the new workers)."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from services.integration.insight_workflows import WORKFLOWS

KEEPER_HISTORY = Path(__file__).parent / "histories" / "keyword_digest_schedules_keeper.json"


def recorded_history(path: Path) -> WorkflowHistory:
    recorded = json.loads(path.read_text())
    return WorkflowHistory.from_json(recorded["workflow_id"], recorded["history"])


async def test_the_keepers_recorded_history_replays_against_the_current_code() -> None:
    history = recorded_history(KEEPER_HISTORY)
    replayer = Replayer(workflows=list(WORKFLOWS))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None
