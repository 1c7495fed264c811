"""The lead watch's histories replay against today's workflow code (no nondeterminism for watches in flight).

`histories/watch_before_local_activities.json` was recorded on the time-skipping server with the code
before the `watch-local-activities` patch (regular activities): a hot lead created on a Friday at
17:50, reminded, breached and reassigned, until the watch had nothing left to wait for. A run started
today takes the patched branch (local activities: markers, no activity tasks) and replays too.
Re-record only together with a versioning plan (workflow.patched) for the watches in flight.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from kit.db import Database
from services.leads import consumers, workflows
from tests.leads.test_sla_workflow import create_at, next_friday_1750, skip_to, wait_events, world

__all__ = ["world"]  # the fixture, shared with the SLA workflow tests

RECORDED = Path(__file__).parent / "histories" / "watch_before_local_activities.json"


def _types(history: WorkflowHistory) -> set[int]:
    return {e.event_type for e in history.events}


async def test_a_watch_recorded_before_the_patch_replays() -> None:
    history = WorkflowHistory.from_json(workflows.workflow_id("demo", "01HREPLAY"), RECORDED.read_text())
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED in _types(history)  # the old branch
    assert EventType.EVENT_TYPE_TIMER_FIRED in _types(history)
    result = await Replayer(workflows=[workflows.LeadWatchWorkflow]).replay_workflow(history)
    assert result.replay_failure is None


async def test_a_new_watch_runs_local_activities_and_replays(
    world: tuple[Database, WorkflowEnvironment, str],
) -> None:
    db, env, queue = world
    at = next_friday_1750(await env.get_current_time())
    await skip_to(env, at)
    row = await create_at(db, "01HLOCAL", at, "+8613900000043")
    await consumers.poke(env.client, queue, "demo", row.lead_id)
    handle = env.client.get_workflow_handle(workflows.workflow_id("demo", row.lead_id))
    await skip_to(env, at + timedelta(days=4))
    assert await wait_events(db, "leads.SlaReminderDue", 1, 60)
    history = await handle.fetch_history()
    types = _types(history)
    assert EventType.EVENT_TYPE_MARKER_RECORDED in types  # the patch marker and local activity results
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in types
    result = await Replayer(workflows=[workflows.LeadWatchWorkflow]).replay_workflow(history)
    assert result.replay_failure is None
