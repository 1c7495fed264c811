"""Approvals: request one (its workflow starts), read its state, act on it, and the list projection.

The workflow is the source of truth (`approval_workflows.py`); the use cases here build its
input from a flow version and the deal, talk to it (updates, the state query) and present it.
`project` is what the workflow's record activity runs: the list rows, the assignments (the
approvers' queue with ages), the audit rows and the events notify consumes, in one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from google.protobuf import json_format, struct_pb2
from google.protobuf.duration_pb2 import Duration

from kit.auth import Principal
from kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from kit.resources import UnitOfWork
from salesops.common.v1.types_pb2 import AttachmentRef, Money
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import events_pb2
from services.pipeline import access, approval_flows, pipeline_settings
from services.pipeline.approval_workflows import EventSpec
from services.pipeline.convert import enum_name, enum_value, ts
from services.pipeline.documents import deal_of
from services.pipeline.domain import approvals as d
from services.pipeline.repositories.approvals import ApprovalClaims, ApprovalFlows, Approvals
from services.pipeline.repositories.deals import OPEN, Deals
from services.pipeline.store import DealRow
from services.pipeline.store_approvals import (
    ApprovalClaimRow,
    ApprovalRow,
)

RESOURCE = "pipeline.Approval"
NEEDS_DEAL = ("CONTRACT", "DISCOUNT", "CUSTOM_SOLUTION")
EVENT_TYPES = {
    "REQUESTED": "pipeline.ApprovalRequested",
    "WAITING": "pipeline.ApprovalStepWaiting",
    "IDLE": "pipeline.ApprovalStepIdle",
    "RETURNED": "pipeline.ApprovalReturned",
    "COMPLETED": "pipeline.ApprovalCompleted",
}


def _t(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _struct(form: dict[str, str]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    json_format.ParseDict({k: json.loads(v) for k, v in form.items()}, out)
    return out


def document(run: d.Run) -> ap.Approval:
    """The Approval message of a run (what GetApproval answers and the projection stores)."""
    a = ap.Approval(
        approval_id=run.approval_id,
        flow_id=run.flow_id,
        flow_version=run.flow_version,
        kind=enum_value(ap.ApprovalKind, run.kind),
        deal_id=run.deal_id,
        title=run.title,
        summary=run.facts.summary,
        amount=Money(amount_minor=run.facts.amount_minor, currency=run.facts.currency),
        discount_bps=run.facts.discount_bps,
        product_lines=run.facts.product_lines,
        form_values=_struct(run.facts.form),
        requester_user_id=run.requester,
        state=enum_value(ap.ApprovalState, run.state),
        revision=run.revision,
        submit_time=ts(_t(run.submit_time)),
        etag=run.etag,
    )
    a.attachments.extend(AttachmentRef.FromString(bytes.fromhex(x)) for x in run.facts.attachments)
    if run.complete_time:
        a.complete_time.CopyFrom(ts(_t(run.complete_time)))
    for s in run.steps:
        defn = run.definition(s.key)
        step = a.steps.add(
            step_key=s.key,
            display_name=defn.display_name,
            mode=enum_value(ap.StepMode, defn.mode),
            state=enum_value(ap.ApprovalStepState, s.state),
            assignee_user_ids=s.assignees if s.state == d.ACTIVE else [],
            required_approvals=s.required,
            approval_count=len(s.approved_slots),
            reminder_count=s.reminder_count,
            escalated=s.escalated,
            escalated_to_user_ids=s.escalated_to,
            form_values=_struct(s.form),
        )
        for name, value in (
            ("activate_time", s.activate_time),
            ("due_time", s.due_time),
            ("complete_time", s.complete_time),
            ("next_reminder_time", s.next_reminder if s.state == d.ACTIVE else None),
        ):
            if value:
                getattr(step, name).CopyFrom(ts(_t(value)))
    a.history.extend(action_record(x) for x in run.history)
    a.audit.create_time.CopyFrom(ts(_t(run.submit_time)))
    a.audit.created_by = run.requester
    if run.history:
        a.audit.update_time.CopyFrom(ts(_t(run.history[-1].at)))
        a.audit.updated_by = run.history[-1].actor
    return a


def action_record(x: d.Action) -> ap.ApprovalActionRecord:
    return ap.ApprovalActionRecord(
        type=enum_value(ap.ApprovalActionType, x.type),
        step_key=x.step_key,
        actor_user_id=x.actor,
        comment=x.comment,
        target_user_ids=x.targets,
        form_values=_struct(x.form),
        revision=x.revision,
        action_time=ts(_t(x.at)),
        client=x.client,
        action_id=x.action_id,
    )


# ------------------------------------------------------------------ access


def can_view(who: Principal, row: ApprovalRow, assignees: set[str]) -> bool:
    return access.can_view_approval(
        who, row.requester_user_id, row.deal_owner_user_id, row.org_path, assignees
    )


async def visible(uow: UnitOfWork, who: Principal, approval_id: str) -> ApprovalRow:
    repo = Approvals(uow)
    row = await repo.find(approval_id)
    if row is None:
        raise NotFound(RESOURCE, approval_id)
    assignees = {a.user_id for a in await repo.all_assignments(approval_id)}
    if not can_view(who, row, assignees):
        raise NotFound(RESOURCE, approval_id)
    return row


async def require_visible(uow: UnitOfWork, who: Principal, approval_id: str) -> None:
    """NOT_FOUND outside the caller's view (or tenant): `visible`'s rule as one query (the SQL twin)."""
    if not await Approvals(uow).sees(who, approval_id):
        raise NotFound(RESOURCE, approval_id)


# ------------------------------------------------------------------ request


async def _choose_flow(uow: UnitOfWork, a: ap.Approval, facts: d.Facts) -> ap.ApprovalFlow:
    repo = ApprovalFlows(uow)
    if a.flow_id:
        row = await repo.current(a.flow_id)
        if row is None:
            raise NotFound("pipeline.ApprovalFlow", a.flow_id)
        flow = approval_flows.document(row)
        if flow.disabled:
            raise FailedPrecondition(f"approval flow {a.flow_id!r} is disabled", reason="FLOW_DISABLED")
        return flow
    for row in await repo.enabled_of_kind(enum_name(ap.ApprovalKind, a.kind)):
        flow = approval_flows.document(row)
        if d.holds(approval_flows.condition_of(flow.trigger), facts):
            return flow
    raise FailedPrecondition("no enabled approval flow of this kind matches", reason="NO_MATCHING_FLOW")


async def prepare(uow: UnitOfWork, who: Principal, a: ap.Approval, at: datetime) -> d.Run:
    """The run a CreateApproval starts: the caller's request checked, the flow version chosen, the deal's facts."""
    kind = enum_name(ap.ApprovalKind, a.kind)
    problems = []
    if not a.approval_id or len(a.approval_id) > 64:
        problems.append(("approval.approval_id", "a client-made id of at most 64 characters"))
    if not kind:
        problems.append(("approval.kind", "required"))
    if not a.title.strip():
        problems.append(("approval.title", "required"))
    if kind in NEEDS_DEAL and not a.deal_id:
        problems.append(("approval.deal_id", f"required for {kind}"))
    if problems:
        raise (
            InvalidArgument.field(*problems[0])
            if len(problems) == 1
            else InvalidArgument("; ".join(f"{f}: {m}" for f, m in problems))
        )
    currency = await pipeline_settings.base_currency(uow)
    owner = org = ""
    facts = approval_flows.facts_of(a)
    facts.currency = currency
    if a.deal_id:
        deal = await Deals(uow).visible(who, a.deal_id)
        _require_open(deal)
        owner, org = deal.owner_user_id, deal.org_path
        if not a.HasField("amount"):
            facts.amount_minor = deal.amount_minor
        doc = deal_of(deal)
        if not a.discount_bps:
            facts.discount_bps = doc.discount_bps
        if not a.product_lines:
            facts.product_lines = sorted({li.product_line for li in doc.line_items if li.product_line})
    elif a.amount.currency not in ("", currency):
        raise InvalidArgument.field("approval.amount.currency", f"the tenant's base currency {currency}")
    flow = await _choose_flow(uow, a, facts)
    running = await Approvals(uow).running_for(a.deal_id, flow.flow_id) if a.deal_id else None
    if running is not None and running.approval_id != a.approval_id:
        msg = f"approval {running.approval_id} of this flow runs for the deal"
        raise AlreadyExists(RESOURCE, running.approval_id, msg)
    return d.Run(
        approval_id=a.approval_id,
        tenant=uow.tenant,
        flow_id=flow.flow_id,
        flow_version=flow.version,
        kind=kind,
        title=a.title,
        deal_id=a.deal_id,
        deal_owner=owner,
        org_path=org or who.org.strip("/"),
        requester=who.user_id,
        submit_time=at.isoformat(timespec="microseconds"),
        steps_def=approval_flows.steps_of(flow),
        facts=facts,
    )


def resubmitted_facts(run: d.Run, changes: ap.Approval, paths: list[str]) -> d.Facts:
    """The run's facts with the fields of `paths` taken from `changes` (the resubmission's mask)."""
    new = approval_flows.facts_of(changes)
    old = run.facts
    out = d.Facts(**{k: getattr(old, k) for k in vars(old)})
    allowed = {"summary", "amount", "discount_bps", "product_lines", "form_values", "attachments"}
    for p in paths:
        if p not in allowed:
            raise InvalidArgument.field("update_mask", f"{p!r} cannot be changed on resubmission")
        if p == "amount":
            if changes.amount.currency not in ("", old.currency):
                raise InvalidArgument.field(
                    "approval.amount.currency", f"the tenant's base currency {old.currency}"
                )
            out.amount_minor = new.amount_minor
        elif p == "form_values":
            out.form = new.form
        else:
            setattr(out, p, getattr(new, p))
    return out


# ------------------------------------------------------------------ projection


def _context(run: d.Run) -> events_pb2.ApprovalContext:
    return events_pb2.ApprovalContext(
        approval_id=run.approval_id,
        flow_id=run.flow_id,
        flow_version=run.flow_version,
        kind=enum_value(ap.ApprovalKind, run.kind),
        title=run.title,
        deal_id=run.deal_id,
        deal_owner_user_id=run.deal_owner,
        requester_user_id=run.requester,
        amount=Money(amount_minor=run.facts.amount_minor, currency=run.facts.currency),
        discount_bps=run.facts.discount_bps,
        revision=run.revision,
    )


def _event(run: d.Run, e: EventSpec) -> object:
    ctx = _context(run)
    if e.type == "REQUESTED":
        return events_pb2.ApprovalRequested(
            approval=ctx, step_keys=[s.key for s in run.steps if s.state != d.SKIPPED]
        )
    if e.type == "COMPLETED":
        total = Duration()
        if run.complete_time:
            total.FromTimedelta(
                datetime.fromisoformat(run.complete_time) - datetime.fromisoformat(run.submit_time)
            )
        return events_pb2.ApprovalCompleted(
            approval=ctx,
            outcome=enum_value(ap.ApprovalState, run.state),
            decisive_step_key=run.decisive_step,
            decided_by=run.decided_by,
            total_duration=total,
        )
    s, defn = run.step(e.step_key), run.definition(e.step_key)
    if e.type == "RETURNED":
        return events_pb2.ApprovalReturned(
            approval=ctx, step_key=s.key, returned_by=e.users[0], comment=e.comment
        )
    if e.type == "WAITING":
        w = events_pb2.ApprovalStepWaiting(
            approval=ctx,
            step_key=s.key,
            step_display_name=defn.display_name,
            mode=enum_value(ap.StepMode, defn.mode),
            approver_user_ids=e.users,
            reassigned=e.reassigned,
        )
        if s.due_time:
            w.due_time.CopyFrom(ts(_t(s.due_time)))
        return w
    idle = Duration()
    if s.activate_time and e.at:
        idle.FromTimedelta(datetime.fromisoformat(e.at) - datetime.fromisoformat(s.activate_time))
    return events_pb2.ApprovalStepIdle(
        approval=ctx,
        step_key=s.key,
        step_display_name=defn.display_name,
        action=enum_value(events_pb2.IdleAction, e.action),
        approver_user_ids=list(s.assignees),
        escalate_to_user_ids=e.users if e.action == "ESCALATE" else [],
        idle_duration=idle,
        overdue=e.overdue,
        reminder_count=s.reminder_count,
        notify_channels=defn.channels,
    )


async def project(uow: UnitOfWork, run: d.Run, events: list[EventSpec], *, fresh: bool = False) -> None:
    """Write what the workflow reports, once per sequence number (a retried activity changes nothing).
    `fresh`: the run's first record, inserted unread (the row's key refuses it if a try before committed;
    the unit of work then runs this again, not fresh)."""
    repo = Approvals(uow)
    if fresh:
        await _insert_new(repo, run, document(run))
    elif not await _update(repo, run):
        return  # written before (a retried activity)
    async with uow.gathered_events():  # one outbox statement for all of them (a start has 1 + a step each)
        for e in events:
            await uow.emit(EVENT_TYPES[e.type], _event(run, e), subject=run.approval_id)  # type: ignore[arg-type]


def _columns(run: d.Run, doc: ap.Approval) -> dict[str, object]:
    """The approval row's columns every projection write sets (a new row adds its id and submit time)."""
    return {
        "flow_id": run.flow_id,
        "flow_version": run.flow_version,
        "kind": run.kind,
        "deal_id": run.deal_id,
        "deal_owner_user_id": run.deal_owner,
        "org_path": run.org_path,
        "requester_user_id": run.requester,
        "state": run.state,
        "revision": run.revision,
        "seq": run.seq,
        "complete_time": _t(run.complete_time),
        "body": doc.SerializeToString(deterministic=True),
    }


async def _insert_new(repo: Approvals, run: d.Run, doc: ap.Approval) -> None:
    """A new run's rows as values (no ORM objects): the row, its assignments, its actions."""
    approval = {
        "approval_id": run.approval_id,
        "submit_time": _t(run.submit_time),
        **_columns(run, doc),
    }
    assignments: dict[tuple[str, str], dict[str, object]] = {}
    for s in run.steps:
        active = s.state == d.ACTIVE and run.state == d.IN_PROGRESS
        for u in s.assignees:
            assignments.setdefault(
                (s.key, u),
                {
                    "approval_id": run.approval_id,
                    "step_key": s.key,
                    "user_id": u,
                    "active": active,
                    "since": _t(s.activate_time),
                    "due_time": _t(s.due_time),
                    "indirect": u in s.indirect,
                },
            )
    actions = [_action_values(run, i, x) for i, x in enumerate(run.history)]
    await repo.insert_new(approval, list(assignments.values()), actions)


def _action_values(run: d.Run, seq: int, x: d.Action) -> dict[str, object]:
    return {
        "approval_id": run.approval_id,
        "seq": seq,
        "action_type": x.type,
        "step_key": x.step_key,
        "actor_user_id": x.actor,
        "client": x.client[:200],
        "action_time": _t(x.at),
        "body": action_record(x).SerializeToString(deterministic=True),
    }


async def _update(repo: Approvals, run: d.Run) -> bool:
    """The run's rows brought up to `run` (False: they are at its sequence number or past it), written as
    values (no ORM rows loaded and flushed: the ORM's work was most of a last approve's record)."""
    stored = await repo.progress(run.approval_id)
    if stored is None:  # never projected (its rows are only ever written with it): all of it is new
        await _insert_new(repo, run, document(run))
        return True
    seq, body = stored
    if seq >= run.seq:
        return False
    # Every write here stores the body with the action rows of its whole history, so the stored body's
    # history length says which action rows exist (no read of them inside the write lock).
    written = len(ap.Approval.FromString(body).history)
    approval = _columns(run, document(run))
    stored_assignments = await repo.assignment_values(run.approval_id)
    have = {k: dict(v) for k, v in stored_assignments.items()}
    for s in run.steps:
        for u in s.assignees:
            a = have.get((s.key, u))
            if a is None:  # active None: not yet decided, as a new row before its first write
                a = have[(s.key, u)] = {"active": None, "since": _t(s.activate_time)}
            if s.state == d.ACTIVE and a["active"] is not True:
                a["since"] = _t(s.activate_time) or a["since"]
    for (key, u), a in have.items():
        s = run.step(key)
        a["active"] = s.state == d.ACTIVE and run.state == d.IN_PROGRESS and u in s.assignees
        a["due_time"] = _t(s.due_time)
        a["indirect"] = u in s.indirect
    changed = {k: a for k, a in have.items() if k in stored_assignments and a != stored_assignments[k]}
    added = [
        {"approval_id": run.approval_id, "step_key": key, "user_id": u, **a}
        for (key, u), a in have.items()
        if (key, u) not in stored_assignments
    ]
    actions = [_action_values(run, i, x) for i, x in enumerate(run.history) if i >= written]
    return await repo.write_progress(run.approval_id, approval, changed, added, actions)


# ------------------------------------------------------------------ one open approval per deal and flow

UNSTARTED_AFTER = timedelta(
    minutes=2
)  # a claim with no projection by then never started (start answers in seconds)


def _require_open(deal: DealRow) -> None:
    """A closed deal takes no approval: closing it ends its running ones (a won or lost deal has nothing
    left to decide; a reopened one asks again)."""
    if deal.status != OPEN:
        raise FailedPrecondition(
            f"the deal is {deal.status.lower()}: a closed deal takes no approval", reason="DEAL_CLOSED"
        )


async def claim(uow: UnitOfWork, run: d.Run, at: datetime) -> None:
    """Before starting `run`: take the deal x flow claim, so two concurrent requests with different ids
    cannot both start (the primary key decides; the unit of work reruns once on the race and then sees
    the winner). ALREADY_EXISTS while another approval holds it and is not final. The deal is read
    locked, so a close committing first is seen (FAILED_PRECONDITION DEAL_CLOSED) and one committing
    after finds the claim (its cancel waits for the start)."""
    if not run.deal_id:
        return
    deal = await Deals(uow).locked(run.deal_id)
    if deal is not None:
        _require_open(deal)
    claims = ApprovalClaims(uow)
    held = await claims.find(run.deal_id, run.flow_id)
    if held is None:
        await claims.add(
            ApprovalClaimRow(
                deal_id=run.deal_id, flow_id=run.flow_id, approval_id=run.approval_id, claimed_at=at
            )
        )
        return
    if held.approval_id == run.approval_id:
        return  # a repeat of the same request
    holder = await Approvals(uow).find(held.approval_id)
    claimed = held.claimed_at if held.claimed_at.tzinfo else held.claimed_at.replace(tzinfo=at.tzinfo)
    free = holder.state in d.FINAL if holder is not None else at - claimed > UNSTARTED_AFTER
    if free and await claims.take_over(run.deal_id, run.flow_id, held.approval_id, run.approval_id, at):
        return
    msg = f"approval {held.approval_id} of this flow runs for the deal"
    raise AlreadyExists(RESOURCE, held.approval_id, msg)


__all__ = [
    "can_view",
    "claim",
    "document",
    "prepare",
    "project",
    "require_visible",
    "resubmitted_facts",
    "visible",
]
