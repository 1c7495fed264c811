"""The record activity's first write of a run inserts its projection without reading for it first; a retry
of that write (the first one committed, its answer lost) finds the row and writes nothing twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from temporalio.client import WorkflowHistory

from kit.db import Database
from kit.migrations import upgrade_to_head
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import approval_pb2 as ap
from services.pipeline import approvals
from services.pipeline.approval_activities import ApprovalActivities
from services.pipeline.approval_codec import decode, encode
from services.pipeline.approval_messages import EventSpec, RecordInput
from services.pipeline.approval_workflows import ApprovalInput
from services.pipeline.approvals import _action_values, _t
from services.pipeline.domain import approvals as d
from services.pipeline.repositories.approvals import Approvals
from services.pipeline.store import transactions
from services.pipeline.store_approvals import ApprovalActionRow, ApprovalAssignmentRow

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


async def _orm_update(uow: UnitOfWork, run: d.Run) -> None:
    """The record's update as the ORM wrote it before its Core statements (the reference they must match)."""
    repo = Approvals(uow)
    row = await repo.find(run.approval_id)
    assert row is not None and row.seq < run.seq
    written = len(ap.Approval.FromString(row.body).history)
    row.flow_id, row.flow_version, row.kind = run.flow_id, run.flow_version, run.kind
    row.deal_id, row.deal_owner_user_id, row.org_path = run.deal_id, run.deal_owner, run.org_path
    row.requester_user_id, row.state, row.revision, row.seq = run.requester, run.state, run.revision, run.seq
    row.complete_time = _t(run.complete_time)
    row.body = approvals.document(run).SerializeToString(deterministic=True)
    have = {(a.step_key, a.user_id): a for a in await repo.all_assignments(run.approval_id)}
    for s in run.steps:
        for u in s.assignees:
            a = have.get((s.key, u))
            if a is None:
                a = ApprovalAssignmentRow(
                    tenant_id=uow.tenant,
                    approval_id=run.approval_id,
                    step_key=s.key,
                    user_id=u,
                    since=_t(s.activate_time),
                )
                uow.session.add(a)
                have[(s.key, u)] = a
            if s.state == d.ACTIVE and a.active is not True:
                a.since = _t(s.activate_time) or a.since
    for (key, u), a in have.items():
        s = run.step(key)
        a.active = s.state == d.ACTIVE and run.state == d.IN_PROGRESS and u in s.assignees
        a.due_time = _t(s.due_time)
        a.indirect = u in s.indirect
    for i, x in enumerate(run.history):
        if i >= written:
            uow.session.add(ApprovalActionRow(tenant_id=uow.tenant, **_action_values(run, i, x)))


def _open_ready(run: d.Run, at: str, users: list[str]) -> None:
    for key in d.ready(run, at):
        d.activate(run, key, d.Opening(users), at)


async def test_each_update_writes_the_rows_the_orm_update_wrote(database_url: str) -> None:
    """Two copies of a run through the same actions (delegation, return, resubmission re-activating the
    steps later, approvals to the end): the record's Core update and the ORM reference leave the same rows
    after every action."""
    db = Database(database_url)
    await upgrade_to_head("pipeline", db)
    try:
        record = ApprovalActivities(db).record
        tx = transactions(db)
        core, orm = _run(), _run()
        orm.approval_id = "other"
        for run in (core, orm):
            await record(encode(RecordInput(run, [], fresh=True)))
        later = "2026-01-02T08:30:00.000000+00:00"
        steps: list[Callable[[d.Run], None]] = [
            lambda r: d.delegate(r, r.steps[1], "u-1", "u-3", AT, "away", "test", "d-1"),
            lambda r: d.return_for_changes(r, r.steps[0], "u-2", AT, "fix it", "test", "r-1"),
            lambda r: (d.resubmit(r, r.facts, r.requester, later, "fixed", True, "test", "s-1"), None)[1],
            lambda r: _open_ready(r, later, ["u-2", "u-4"]),
        ]
        for step in steps:
            for run in (core, orm):
                step(run)
            await record(encode(RecordInput(core, [])))
            await tx.run(orm.tenant, lambda uow: _orm_update(uow, orm))
            assert await _rows(db, core.approval_id) == await _rows(db, "other")
        n = 0
        while core.state == d.IN_PROGRESS and n < 20:
            n += 1
            s = next(s for s in core.steps if s.state == d.ACTIVE)
            actor = next(u for u in s.assignees if u not in s.approved_slots)
            for run in (core, orm):
                d.approve(run, run.step(s.key), actor, later, "", {}, "test", f"a-{n}")
                _open_ready(run, later, ["u-1"])
            await record(encode(RecordInput(core, [])))
            await tx.run(orm.tenant, lambda uow: _orm_update(uow, orm))
            assert await _rows(db, core.approval_id) == await _rows(db, "other")
        assert core.state == d.APPROVED
    finally:
        await db.dispose()


async def test_a_stale_write_never_overwrites_a_newer_projection(database_url: str) -> None:
    """The sequence number a write compares with is read unlocked: a stale write (a late retry of an
    older record) that reaches the row after a newer one writes nothing."""
    db = Database(database_url)
    await upgrade_to_head("pipeline", db)
    try:
        record = ApprovalActivities(db).record
        run = _run()
        await record(encode(RecordInput(run, [EventSpec("REQUESTED")], fresh=True)))
        older = decode(RecordInput, encode(RecordInput(run, []))).run  # a copy of the run as it stood
        d.approve(run, run.steps[0], "u-1", AT, "", {}, "test", "a-1")
        await record(encode(RecordInput(run, [])))
        d.approve(older, older.steps[0], "u-2", AT, "", {}, "test", "a-2")  # the same seq, another action
        newer = await _counts(db)

        async def stale(uow: UnitOfWork) -> bool:
            repo = Approvals(uow)
            approval = {"state": older.state, "seq": older.seq, "body": b"stale"}
            # No action row: the one case the action rows' key did not refuse before.
            return await repo.write_progress(older.approval_id, approval, {}, [], [])

        assert await transactions(db).run(older.tenant, stale) is False
        assert await _counts(db) == newer
        async with db.engine.connect() as conn:
            body = (await conn.execute(text("SELECT body FROM approvals"))).scalar_one()
        assert body != b"stale"
    finally:
        await db.dispose()
