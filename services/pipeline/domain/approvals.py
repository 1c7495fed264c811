"""Approvals as pure rules: which steps are ready, quorum, entry conditions, the actions and what a return keeps.

The approval workflow holds a `Run` and changes it only through these functions, so
the rules are tested without Temporal and replay deterministically. Times are ISO-8601
UTC text (the workflow's clock, passed in); approvers and deadlines are resolved by
activities (the org at the moment a step opens) and handed in as `Opening`.
A refused action raises `Refused` before anything changes (the update validators call
the same checks the handlers run).
"""

from __future__ import annotations

# The terms the rules work on, re-exported (`__all__`) so callers need one import.
from services.pipeline.domain.approval_types import (
    ACTIVE,
    APPROVED,
    CANCELLED,
    FACT_FIELDS,
    FINAL,
    IN_PROGRESS,
    INVALID,
    NOT_ALLOWED,
    NOT_ASSIGNEE,
    PASSED,
    PENDING,
    REJECTED,
    RETURNED,
    SKIPPED,
    STALE,
    SYSTEM,
    WRONG_STATE,
    Action,
    Condition,
    Facts,
    Limit,
    Opening,
    Refused,
    Run,
    StepDef,
    StepRun,
)


def holds(cond: Condition | None, facts: Facts) -> bool:
    """Entry condition: amount at or above, discount at or above, any of the product lines."""
    if cond is None:
        return True
    if cond.min_amount_minor is not None and facts.amount_minor < cond.min_amount_minor:
        return False
    if cond.min_discount_bps and facts.discount_bps < cond.min_discount_bps:
        return False
    return not cond.product_lines or bool(set(cond.product_lines) & set(facts.product_lines))


def required_of(quorum: str, k: int, n: int) -> int:
    """Approvals a step needs among n approvers: any = 1, all = n, k of n (capped at n); at least 1."""
    if quorum == "ANY":
        return 1
    if quorum == "ALL":
        return max(n, 1)
    return max(1, min(k or 1, n) if n else k or 1)


def order_problems(steps: list[StepDef]) -> list[str]:
    """Keys unique, predecessors known, no cycle (what a flow must satisfy)."""
    keys = [s.key for s in steps]
    out = [f"step key {k!r} repeated" for k in sorted({k for k in keys if keys.count(k) > 1})]
    known = set(keys)
    for s in steps:
        out += [f"step {s.key!r}: unknown predecessor {a!r}" for a in s.after if a not in known]
    if out:
        return out
    done: set[str] = set()
    while len(done) < len(steps):
        ready = [s.key for s in steps if s.key not in done and set(s.after) <= done]
        if not ready:
            return ["steps form a cycle"]
        done |= set(ready)
    return []


def start(run: Run, at: str, actor: str, client: str = "") -> None:
    run.steps = [StepRun(d.key) for d in run.steps_def]
    run.submit_time = at  # the workflow's clock, the one every later action is timed on
    _log(run, Action("SUBMIT", "", actor, at, run.revision, client=client))


def ready(run: Run, at: str) -> list[str]:
    """Skips pending steps whose condition fails (their predecessors passed) and returns those to open.

    Ends the approval APPROVED when every step passed. Call until it returns nothing new.
    """
    if run.state != IN_PROGRESS:
        return []
    while True:
        passed = {s.key for s in run.steps if s.state in PASSED}
        due = [s for s in run.steps if s.state == PENDING and set(run.definition(s.key).after) <= passed]
        skipped = [s for s in due if not holds(run.definition(s.key).condition, run.facts)]
        for s in skipped:
            s.state, s.complete_time = SKIPPED, at
            run.seq += 1
        if not skipped:
            break
    if all(s.state in PASSED for s in run.steps):
        _finish(run, APPROVED, at, run.decided_by, "")
        return []
    return [s.key for s in due]


def activate(run: Run, key: str, opening: Opening, at: str) -> StepRun:
    d, s = run.definition(key), run.step(key)
    s.state, s.activate_time, s.complete_time = ACTIVE, at, None
    s.assignees = list(dict.fromkeys(opening.assignees))
    s.acting_for = dict(opening.acting_for)
    s.indirect = [u for u in s.assignees if u in s.acting_for]
    s.slots = len(s.assignees)
    s.required = required_of(d.quorum, d.required, s.slots)
    s.approved_slots, s.approved_by = [], []
    s.due_time, s.next_reminder = opening.due_at, opening.remind_at
    s.escalate_at, s.fallback_at = opening.escalate_at, opening.fallback_at
    s.escalated, s.escalated_to, s.fallback_done, s.reminder_count = False, [], False, 0
    run.seq += 1
    return s


# ---------------------------------------------------------------- checks (validators)


def check_etag(run: Run, etag: str) -> None:
    if etag and etag != run.etag:
        raise Refused(STALE, f"the approval changed since it was read (etag {run.etag}, given {etag})")


def acting_step(run: Run, actor: str, step_key: str) -> StepRun:
    """The active step `actor` may act on (the one named, or the only one they hold)."""
    if run.state != IN_PROGRESS:
        raise Refused(WRONG_STATE, f"the approval is {run.state}; nothing waits on a decision")
    if step_key:
        s = run.step(step_key)
        if s.state != ACTIVE:
            raise Refused(WRONG_STATE, f"step {step_key!r} is {s.state}, not waiting on a decision")
        if actor not in s.assignees:
            raise Refused(NOT_ASSIGNEE, f"{actor} is not an approver of step {step_key!r}")
        return s
    mine = [s for s in run.steps if s.state == ACTIVE and actor in s.assignees]
    if not mine:
        raise Refused(NOT_ASSIGNEE, f"no step of this approval waits on {actor}")
    if len(mine) > 1:
        raise Refused(INVALID, "several steps wait on you: name step_key")
    return mine[0]


def check_approve(run: Run, actor: str, step_key: str, form: dict[str, str], etag: str) -> StepRun:
    check_etag(run, etag)
    s = acting_step(run, actor, step_key)
    if s.acting_for.get(actor, actor) in s.approved_slots:
        return s  # a repeat by the same approver: a no-op, not an error
    missing = [k for k in run.definition(s.key).form_required if not form.get(k)]
    if missing:
        raise Refused(INVALID, "form fields required: " + ", ".join(missing))
    return s


def check_delegate(run: Run, actor: str, step_key: str, to: str, etag: str) -> StepRun:
    check_etag(run, etag)
    s = acting_step(run, actor, step_key)
    if not to or to == actor:
        raise Refused(INVALID, "delegate to another user")
    if to in s.assignees:
        raise Refused(INVALID, f"{to} is already an approver of step {s.key!r}")
    return s


def check_resubmit(run: Run, actor: str, etag: str) -> None:
    check_etag(run, etag)
    if actor != run.requester:
        raise Refused(NOT_ALLOWED, "only the requester resubmits")
    if run.state != RETURNED:
        raise Refused(WRONG_STATE, f"the approval is {run.state}; only a returned approval is resubmitted")


def check_cancel(run: Run, actor: str, is_admin: bool, etag: str) -> None:
    check_etag(run, etag)
    if actor != run.requester and not is_admin:
        raise Refused(NOT_ALLOWED, "only the requester withdraws, or an admin cancels")
    if run.state in FINAL:
        raise Refused(WRONG_STATE, f"the approval is already {run.state}")


# ---------------------------------------------------------------- actions (handlers)


def approve(
    run: Run,
    s: StepRun,
    actor: str,
    at: str,
    comment: str,
    form: dict[str, str],
    client: str = "",
    action_id: str = "",
) -> bool:
    """Counts the approval; True when it changed anything (a repeat does not)."""
    slot = s.acting_for.get(actor, actor)
    if slot in s.approved_slots:
        return False
    s.approved_slots.append(slot)
    s.approved_by.append(actor)
    s.form.update(form)
    _log(
        run,
        Action(
            "APPROVE", s.key, actor, at, run.revision, comment, form=form, client=client, action_id=action_id
        ),
    )
    if len(s.approved_slots) >= s.required:
        s.state, s.complete_time = APPROVED, at
        run.decided_by = actor
    return True


def reject(
    run: Run,
    s: StepRun,
    actor: str,
    at: str,
    comment: str,
    client: str = "",
    action_id: str = "",
    kind: str = "REJECT",
) -> None:
    s.state, s.complete_time = REJECTED, at
    _log(run, Action(kind, s.key, actor, at, run.revision, comment, client=client, action_id=action_id))
    _finish(run, REJECTED, at, actor, s.key)


def return_for_changes(
    run: Run, s: StepRun, actor: str, at: str, comment: str, client: str = "", action_id: str = ""
) -> None:
    s.state, s.complete_time = RETURNED, at
    for other in run.steps:
        if other.state == ACTIVE:
            other.state = PENDING  # waits again after the resubmission
    run.state = RETURNED
    run.decisive_step, run.decided_by = s.key, actor
    _log(run, Action("RETURN", s.key, actor, at, run.revision, comment, client=client, action_id=action_id))


def delegate(
    run: Run, s: StepRun, actor: str, to: str, at: str, comment: str, client: str = "", action_id: str = ""
) -> None:
    s.assignees = [to if u == actor else u for u in s.assignees]
    s.acting_for[to] = s.acting_for.pop(actor, actor)
    s.indirect = [*[u for u in s.indirect if u != actor], to]
    _log(
        run,
        Action("DELEGATE", s.key, actor, at, run.revision, comment, [to], client=client, action_id=action_id),
    )


def changed_fields(old: Facts, new: Facts) -> set[str]:
    out = {f for f in FACT_FIELDS if getattr(old, _attr(f)) != getattr(new, _attr(f))}
    for k in set(old.form) | set(new.form):
        if old.form.get(k) != new.form.get(k):
            out |= {"form_values", f"form_values.{k}"}
    return out


def _attr(name: str) -> str:
    return "amount_minor" if name == "amount" else name


def concerned(d: StepDef, changed: set[str]) -> bool:
    """Whether a change touches what the step judges (empty concern: every field)."""
    if not changed:
        return False
    return not d.concern or bool(set(d.concern) & changed)


def resubmit(
    run: Run,
    facts: Facts,
    actor: str,
    at: str,
    comment: str,
    restart_all: bool,
    client: str = "",
    action_id: str = "",
) -> list[str]:
    """The requester's changes: steps that approved keep it when their policy says so and nothing they
    judge changed; every other step waits again (conditions re-evaluated). Returns the changed fields."""
    changed = changed_fields(run.facts, facts)
    run.facts = facts
    run.revision += 1
    run.state = IN_PROGRESS
    run.decisive_step = ""
    for s in run.steps:
        d = run.definition(s.key)
        keep = s.state == APPROVED and not restart_all and d.keep_on_resubmit and not concerned(d, changed)
        if not keep:
            s.state, s.approved_slots, s.approved_by, s.complete_time = PENDING, [], [], None
    _log(
        run,
        Action(
            "RESUBMIT",
            "",
            actor,
            at,
            run.revision,
            comment,
            targets=sorted(changed),
            client=client,
            action_id=action_id,
        ),
    )
    return sorted(changed)


def cancel(run: Run, actor: str, at: str, reason: str, client: str = "", action_id: str = "") -> None:
    kind = "WITHDRAW" if actor == run.requester else "CANCEL"
    _log(run, Action(kind, "", actor, at, run.revision, reason, client=client, action_id=action_id))
    _finish(run, CANCELLED, at, actor, "")


# ---------------------------------------------------------------- timers


def next_deadline(run: Run) -> str | None:
    """The earliest reminder, escalation or fallback of an active step (ISO text compares in order)."""
    times = [t for s in run.steps if s.state == ACTIVE for t in _pending_times(s)]
    return min(times) if times else None


def _pending_times(s: StepRun) -> list[str]:
    out = [s.next_reminder] if s.next_reminder else []
    if s.escalate_at and not s.escalated:
        out.append(s.escalate_at)
    if s.fallback_at and not s.fallback_done:
        out.append(s.fallback_at)
    return out


def due_now(run: Run, now: str) -> list[tuple[str, str]]:
    """(step key, REMIND / ESCALATE / FALLBACK) of everything due at `now`, fallback last."""
    out: list[tuple[str, str]] = []
    for s in run.steps:
        if s.state != ACTIVE:
            continue
        if s.next_reminder and s.next_reminder <= now:
            out.append((s.key, "REMIND"))
        if s.escalate_at and not s.escalated and s.escalate_at <= now:
            out.append((s.key, "ESCALATE"))
        if s.fallback_at and not s.fallback_done and s.fallback_at <= now:
            out.append((s.key, "FALLBACK"))
    return out


def reminded(run: Run, s: StepRun, at: str, next_at: str | None) -> None:
    s.reminder_count += 1
    s.next_reminder = next_at
    _log(run, Action("REMIND", s.key, SYSTEM, at, run.revision, targets=list(s.assignees)))


def escalated(run: Run, s: StepRun, at: str, to: list[str], assigns: bool) -> None:
    s.escalated, s.escalated_to = True, list(to)
    if assigns:
        add = [u for u in to if u not in s.assignees]
        s.assignees += add
        s.indirect += add
    _log(run, Action("ESCALATE", s.key, SYSTEM, at, run.revision, targets=list(to)))


def fell_back(run: Run, s: StepRun, at: str) -> None:
    """T3: assign the fallback approvers (who may act alone), or decide automatically."""
    d = run.definition(s.key)
    s.fallback_done = True
    if d.fallback_action == "ASSIGN":
        add = [u for u in d.fallback_user_ids if u not in s.assignees]
        s.assignees += add
        s.indirect += add
        s.required = max(1, len(s.approved_slots) + 1)  # a fallback approver's decision settles the step
        _log(run, Action("FALLBACK", s.key, SYSTEM, at, run.revision, "assigned", list(add)))
        return
    if d.fallback_action == "AUTO_APPROVE":
        _log(run, Action("FALLBACK", s.key, SYSTEM, at, run.revision, "approved automatically"))
        s.state, s.complete_time = APPROVED, at
        run.decided_by = SYSTEM
        return
    if d.fallback_action == "AUTO_REJECT":
        _log(run, Action("FALLBACK", s.key, SYSTEM, at, run.revision, "rejected automatically"))
        reject(run, s, SYSTEM, at, "no decision in time", kind="REJECT")


# ---------------------------------------------------------------- helpers


def _log(run: Run, a: Action) -> None:
    run.history.append(a)
    run.seq += 1


def _finish(run: Run, state: str, at: str, by: str, step_key: str) -> None:
    run.state, run.complete_time = state, at
    run.decided_by, run.decisive_step = by, step_key or run.decisive_step
    for s in run.steps:
        if s.state in (PENDING, ACTIVE):
            s.state = "CANCELLED"
    run.seq += 1


__all__ = [
    "ACTIVE",
    "APPROVED",
    "CANCELLED",
    "FACT_FIELDS",
    "FINAL",
    "INVALID",
    "IN_PROGRESS",
    "NOT_ALLOWED",
    "NOT_ASSIGNEE",
    "PASSED",
    "PENDING",
    "REJECTED",
    "RETURNED",
    "SKIPPED",
    "STALE",
    "SYSTEM",
    "WRONG_STATE",
    "Action",
    "Condition",
    "Facts",
    "Limit",
    "Opening",
    "Refused",
    "Run",
    "StepDef",
    "StepRun",
    "acting_step",
    "activate",
    "approve",
    "cancel",
    "changed_fields",
    "check_approve",
    "check_cancel",
    "check_delegate",
    "check_etag",
    "check_resubmit",
    "concerned",
    "delegate",
    "due_now",
    "escalated",
    "fell_back",
    "holds",
    "next_deadline",
    "order_problems",
    "ready",
    "reject",
    "reminded",
    "required_of",
    "resubmit",
    "return_for_changes",
    "start",
]
