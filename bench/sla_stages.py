"""Where a reminder's lateness goes, stage by stage (bench_sla prints it beside its table).

For each measured reminder, the time after its due time at which it passed each stage:

- timer fired, task started, fire recorded: the watch's workflow history (a sample: one history
  fetch per reminder); fire recorded is the local activity's marker, i.e. the workflow task's end;
- outbox row: the leads outbox row's created_at (inside the fire's transaction);
- published: the row's published_at (the relay marks it after the XADD);
- consumer claimed: notify's processed-event row (the consumer's transaction began on it);
- inbox row: notify's inbox item's created_at.

Printed as p50 / p99 of each stage (cumulative, after due) and of the step from the stage before it.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime
from typing import Any

HISTORY = ("timer fired", "task started", "fire recorded")
FAILED_TASKS = [0]  # workflow tasks failed or timed out in the sampled histories
WHY: Counter[str] = Counter()  # ... by failure cause / timeout type
ROWS = ("outbox row", "published", "consumer claimed", "inbox row")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


async def _history_stages(client: Any, lead_id: str, due: datetime) -> dict[str, datetime]:
    from temporalio.api.enums.v1 import EventType, TimeoutType, WorkflowTaskFailedCause

    from services.leads.workflows import workflow_id

    history = await client.get_workflow_handle(workflow_id("demo", lead_id)).fetch_history()
    seen: dict[str, datetime] = {}
    bad = {EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT}
    for ev in history.events:
        if ev.event_type in bad:
            FAILED_TASKS[0] += 1
            if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failed = ev.workflow_task_failed_event_attributes
                WHY[WorkflowTaskFailedCause.Name(failed.cause) + " " + failed.failure.message[:40]] += 1
            else:
                WHY[TimeoutType.Name(ev.workflow_task_timed_out_event_attributes.timeout_type)] += 1
        at = ev.event_time.ToDatetime(tzinfo=UTC)
        if at < due:
            continue
        if ev.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            seen.setdefault("timer fired", at)
        elif ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED and "timer fired" in seen:
            seen.setdefault("task started", at)
        elif ev.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            seen.setdefault("fire recorded", at)
    return seen


async def _row_stages(leads_db: Any, notify_db: Any, ids: list[str]) -> dict[str, dict[str, datetime]]:
    from sqlalchemy import select

    from services.leads.store import outbox
    from services.notify.store import InboxItemRow
    from services.notify.store import processed_events as processed

    out: dict[str, dict[str, datetime]] = {x: {} for x in ids}
    event_of: dict[str, str] = {}
    async with leads_db.system_session() as s:
        rows = await s.execute(
            select(outbox.c.id, outbox.c.subject, outbox.c.created_at, outbox.c.published_at).where(
                outbox.c.type == "leads.SlaReminderDue"
            )
        )
        for event_id, subject, created, published in rows.all():
            if subject in out:
                event_of[str(event_id)] = subject
                out[subject]["outbox row"] = _aware(created)
                if published is not None:
                    out[subject]["published"] = _aware(published)
    async with notify_db.system_session() as s:
        rows = await s.execute(select(processed.c.event_id, processed.c.processed_at))
        for event_id, at in rows.all():
            if str(event_id) in event_of:
                out[event_of[str(event_id)]]["consumer claimed"] = _aware(at)
        rows = await s.execute(
            select(InboxItemRow.subject_id, InboxItemRow.created_at).where(
                InboxItemRow.category == "sla_reminder"
            )
        )
        for subject, at in rows.all():
            if subject in out:
                out[subject]["inbox row"] = _aware(at)
    return out


async def print_stages(
    client: Any,
    leads_db: Any,
    notify_db: Any,
    groups: dict[str, list[str]],
    due: dict[str, datetime],
    history_sample: int = 100,
) -> None:
    """Print the stage split of each group of reminders (e.g. spread, burst)."""
    for kind, ids in groups.items():
        stages = await _row_stages(leads_db, notify_db, ids)
        step = max(1, len(ids) // history_sample)
        for lead_id in ids[::step]:
            try:
                stages[lead_id].update(await _history_stages(client, lead_id, due[lead_id]))
            except Exception as exc:
                print(f"   history of {lead_id}: {type(exc).__name__}", file=sys.stderr)
        print(
            f"   {kind} stages of {len(ids)} reminders (s after due p50 / p99; step from the one before):",
            file=sys.stderr,
        )
        why = ", ".join(f"{n} {k}" for k, n in WHY.most_common())
        print(
            f"     workflow tasks failed or timed out in the sample: {FAILED_TASKS[0]}"
            + (f" ({why})" if why else ""),
            file=sys.stderr,
        )
        FAILED_TASKS[0] = 0
        WHY.clear()
        order = [*HISTORY, *ROWS]
        for i, name in enumerate(order):
            late = [(s[name] - due[x]).total_seconds() for x, s in stages.items() if name in s]
            line = f"     {name:<16} {_pct(late, 0.5):7.2f} / {_pct(late, 0.99):7.2f}  (n={len(late)})"
            if i:
                prev = order[i - 1]
                if name == "outbox row":  # the outbox row is written before the marker: step from task start
                    prev = "task started"
                elif name == "published":
                    prev = "outbox row"
                gaps = [
                    (s[name] - s[prev]).total_seconds() for s in stages.values() if name in s and prev in s
                ]
                line += f"   {prev} -> {name}: {_pct(gaps, 0.5):6.2f} / {_pct(gaps, 0.99):6.2f}"
            print(line, file=sys.stderr)
