"""The record activity's first write of a run inserts its projection without reading for it first; a retry
of that write (the first one committed, its answer lost) finds the row and writes nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text
from temporalio.client import WorkflowHistory

from kit.db import Database
from kit.migrations import upgrade_to_head
from services.pipeline.approval_activities import ApprovalActivities
from services.pipeline.approval_codec import decode, encode
from services.pipeline.approval_messages import EventSpec, RecordInput
from services.pipeline.approval_workflows import ApprovalInput
from services.pipeline.domain import approvals as d

RECORDED = Path(__file__).parent / "histories" / "approval_steady_timer.json"
AT = "2026-01-01T00:00:00.000000+00:00"


def _run() -> d.Run:
    history = WorkflowHistory.from_json("approval", RECORDED.read_text())
    payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    run = decode(ApprovalInput, json.loads(payload.data)).run
    d.start(run, AT, run.requester, "test")
    for key in d.ready(run, AT):
        d.activate(run, key, d.Opening(["u-1", "u-2"]), AT)
    return run


async def _counts(db: Database) -> tuple[int, ...]:
    out = []
    async with db.engine.connect() as conn:
        for table in ("approvals", "approval_assignments", "approval_actions", "outbox"):
            out.append((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
    return tuple(out)


async def test_a_retried_first_record_writes_once(database_url: str) -> None:
    db = Database(database_url)
    await upgrade_to_head("pipeline", db)
    try:
        record = ApprovalActivities(db).record
        run = _run()
        events = [
            EventSpec("REQUESTED"),
            *(EventSpec("WAITING", s.key, users=s.assignees) for s in run.steps),
        ]
        first = encode(RecordInput(run, events, fresh=True))
        await record(first)
        written = await _counts(db)
        assert written == (1, 2 * len(run.steps), 1, 1 + len(run.steps))
        await record(first)  # the retry: the fresh insert meets the row, the rerun reads it and stops
        assert await _counts(db) == written
        d.approve(run, run.steps[0], "u-1", AT, "", {}, "test", "a-1")
        await record(encode(RecordInput(run, [])))  # a later record updates the same row
        assert await _counts(db) == (1, 2 * len(run.steps), 2, 1 + len(run.steps))
    finally:
        await db.dispose()
