"""The record activity's first write of a run inserts its projection without reading for it first; a retry
of that write (the first one committed, its answer lost) finds the row and writes nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text
from temporalio.client import WorkflowHistory

from kit.db import Database
from kit.migrations import upgrade_to_head
from salesops.pipeline.v1 import approval_pb2 as ap
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


def _same(column: str, value: object) -> object:
    """The approval's document without its id (the one field the two runs differ in)."""
    if column == "body" and isinstance(value, bytes):
        doc = ap.Approval.FromString(value)
        if doc.approval_id:
            doc.approval_id = ""
            return doc.SerializeToString(deterministic=True)
    return value


async def _rows(db: Database, approval_id: str) -> list[list[tuple[object, ...]]]:
    out = []
    async with db.engine.connect() as conn:
        for table, order in (
            ("approvals", "approval_id"),
            ("approval_assignments", "step_key, user_id"),
            ("approval_actions", "seq"),
        ):
            got = await conn.execute(
                text(f"SELECT * FROM {table} WHERE approval_id = :a ORDER BY {order}"), {"a": approval_id}
            )
            out.append([tuple(_same(k, v) for k, v in r._mapping.items() if k != "approval_id") for r in got])
    return out


async def test_the_fresh_insert_writes_the_rows_the_orm_path_writes(database_url: str) -> None:
    db = Database(database_url)
    await upgrade_to_head("pipeline", db)
    try:
        record = ApprovalActivities(db).record
        fresh, read_first = _run(), _run()
        read_first.approval_id = "other"
        d.delegate(fresh, fresh.steps[1], "u-1", "u-3", AT, "away", "test", "d-1")  # an indirect assignee
        d.delegate(read_first, read_first.steps[1], "u-1", "u-3", AT, "away", "test", "d-1")
        await record(encode(RecordInput(fresh, [], fresh=True)))
        await record(encode(RecordInput(read_first, [])))
        assert await _rows(db, fresh.approval_id) == await _rows(db, "other")
    finally:
        await db.dispose()
