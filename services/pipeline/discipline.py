"""Update discipline and dwell (use cases; unit of work, never commit).

- `touched`: every write that counts as the weekly update (ConfirmDeal, MoveStage,
  UpdateDeal) restarts the staleness clock and thaws a frozen deal: audited in the
  change history (field "frozen") and announced (DealUnfrozen).
- `freeze_overdue`: at a weekly deadline, open deals not updated in the window
  that just closed are frozen (flag, body `frozen_time`, history, DealFrozen).
- `flag_dwell`: open deals past their stage's dwell limit (the model's fixed
  limit, or the team's own p90 in the stage where history allows, whichever is
  tighter) are flagged once per stage entry (DealDwellExceeded).
- `next_wake`: when the tenant's timer must fire next.

The tenant's timer workflow (discipline_workflows.py) calls these through
activities with the instant it woke for, so the rules run on its clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from kit.calendar import BusinessCalendar
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import events_pb2, stage_model_pb2, types_pb2
from services.pipeline import events, pipeline_settings, stage_models
from services.pipeline.convert import aware, ts
from services.pipeline.documents import body_of, deal_of
from services.pipeline.domain import discipline as d
from services.pipeline.domain.history import Change
from services.pipeline.repositories.deals import Deals
from services.pipeline.repositories.discipline import DisciplineRecords
from services.pipeline.repositories.history import DealChanges
from services.pipeline.store import DealRow
from services.pipeline.store_discipline import DwellFlagRow

SYSTEM = "system:pipeline"
DEAL_FROZEN = "pipeline.DealFrozen"
DEAL_DWELL_EXCEEDED = "pipeline.DealDwellExceeded"
FROZEN_FIELD = "frozen"
BATCH = 200
# The timer wakes at least this often, so a settings change or a new team norm takes effect.
MAX_SLEEP = timedelta(hours=6)


async def touched(
    uow: UnitOfWork, row: DealRow, actor: str, at: datetime, *, new_stage: bool = False
) -> None:
    """The deal was updated by a person: the staleness clock restarts and a frozen deal thaws.

    Call before the row is saved. `new_stage`: the deal entered a stage, so the dwell
    information of the previous one is dropped (its flag stays in the records).
    """
    row.last_confirm_at = at
    deal = deal_of(row)
    frozen_since = deal.frozen_time.ToDatetime(tzinfo=UTC) if deal.HasField("frozen_time") else None
    if new_stage:
        deal.ClearField("dwell")
    if not row.frozen:
        if new_stage:
            row.body = body_of(deal)
        return
    row.frozen = False
    deal.ClearField("frozen_time")
    deal.frozen = False
    row.body = body_of(deal)
    await DealChanges(uow).append(row.deal_id, [Change(FROZEN_FIELD, "true", "false")], actor, at)
    thawed = events_pb2.DealUnfrozen(deal=await events.deal_context(uow, row), unfrozen_by=actor)
    if frozen_since is not None:
        thawed.frozen_duration.FromTimedelta(max(timedelta(0), at - frozen_since))
    await uow.emit(events.DEAL_UNFROZEN, thawed, subject=row.deal_id)


async def weekly_due(uow: UnitOfWork) -> d.WeeklyDue | None:
    """The tenant's weekly deadline; None when freezing is switched off."""
    s = await pipeline_settings.current(uow)
    defaults = pipeline_settings.DEFAULTS
    policy = s.weekly_update
    if policy.disabled:
        return None
    day = policy.due_day or defaults.weekly_update.due_day  # google.type.DayOfWeek: MONDAY = 1
    hm = policy.due_time if policy.HasField("due_time") else defaults.weekly_update.due_time
    return d.WeeklyDue(day - 1, time(hm.hours, hm.minutes), ZoneInfo(s.time_zone or defaults.time_zone))


@dataclass(frozen=True)
class Batch:
    count: int
    last: str  # the last deal id looked at: the next batch starts after it ("" = none)


async def freeze_overdue(uow: UnitOfWork, at: datetime, limit: int = BATCH) -> int:
    """Freeze up to `limit` open deals that missed the window closed last before `at`; the count."""
    return (await freeze_batch(uow, at, "", limit)).count


async def freeze_batch(uow: UnitOfWork, at: datetime, after: str, limit: int = BATCH) -> Batch:
    """One batch of the freeze, deals by id after `after` (a keyset: batches never rescan the frozen)."""
    due = await weekly_due(uow)
    if due is None:
        return Batch(0, "")
    deadline = due.last_due(at)
    cutoff = due.previous(deadline)
    frozen, last = 0, ""
    for row in await DisciplineRecords(uow).overdue(cutoff, limit, after):
        last = row.deal_id
        deal = deal_of(row)
        deal.frozen = True
        deal.frozen_time.FromDatetime(deadline)
        row.body = body_of(deal)
        row.frozen = True
        row.updated_at, row.updated_by = at, SYSTEM
        await Deals(uow).update_if_etag(row, "")
        await DealChanges(uow).append(row.deal_id, [Change(FROZEN_FIELD, "false", "true")], SYSTEM, at)
        evt = events_pb2.DealFrozen(deal=await events.deal_context(uow, row))
        evt.update_due_time.CopyFrom(ts(deadline))
        evt.last_confirm_time.CopyFrom(ts(row.last_confirm_at))
        evt.frozen_time.CopyFrom(ts(deadline))
        await uow.emit(DEAL_FROZEN, evt, subject=row.deal_id)
        frozen += 1
    return Batch(frozen, last)


@dataclass
class Limits:
    """The dwell limits of a tenant: the model's fixed limits and the teams' own p90s."""

    zone: ZoneInfo
    fixed: dict[str, tuple[d.DwellLimit, types_pb2.TimeLimit]] = field(default_factory=dict)
    team_p90: dict[tuple[str, str], int] = field(default_factory=dict)
    _calendar: BusinessCalendar | None = None

    @property
    def stages(self) -> list[str]:
        return sorted(set(self.fixed) | {stage for _, stage in self.team_p90})

    def _fixed_deadline(self, stage_id: str, entered: datetime) -> datetime | None:
        limit = self.fixed.get(stage_id)
        if limit is None:
            return None
        seconds = limit[0].fixed_seconds
        if seconds is not None:
            return entered + timedelta(seconds=seconds)
        if self._calendar is None:
            self._calendar = BusinessCalendar.from_config({"timezone": self.zone.key})
        if limit[0].unit == "WORKING_HOURS":
            return self._calendar.add_business_time(entered, timedelta(hours=limit[0].value))
        return self._calendar.add_business_days(entered, limit[0].value)

    def deadline(self, org_path: str, stage_id: str, entered: datetime) -> tuple[datetime, str] | None:
        """When a stay that began at `entered` is over its limit, and which limit ("STAGE" / "TEAM_P90")."""
        options: list[tuple[datetime, str]] = []
        fixed = self._fixed_deadline(stage_id, entered)
        if fixed is not None:
            options.append((fixed, "STAGE"))
        p90 = self.team_p90.get((org_path, stage_id))
        if p90 is not None:
            options.append((entered + timedelta(seconds=p90), "TEAM_P90"))
        return min(options) if options else None

    def min_reach(self, org_path: str, stage_id: str) -> timedelta:
        """No stay in the stage is over its limit sooner than this after entering it."""
        options = [self.team_p90.get((org_path, stage_id))]
        fixed = self.fixed.get(stage_id)
        options.append(fixed[0].lower_bound_seconds if fixed else None)
        return timedelta(seconds=min(s for s in options if s is not None))

    def proto(self, stage_id: str) -> types_pb2.TimeLimit | None:
        limit = self.fixed.get(stage_id)
        return limit[1] if limit else None


async def limits(uow: UnitOfWork, team_p90: dict[tuple[str, str], int] | None = None) -> Limits:
    """The tenant's limits; `team_p90` when the caller holds a recent copy (it scans the history)."""
    model = await stage_models.current(uow)
    s = await pipeline_settings.current(uow)
    out = Limits(ZoneInfo(s.time_zone or pipeline_settings.DEFAULTS.time_zone))
    for stage in model.stages:
        out.fixed.update(_fixed(stage))
    out.team_p90 = team_p90 if team_p90 is not None else await team_p90s(uow)
    return out


async def team_p90s(uow: UnitOfWork) -> dict[tuple[str, str], int]:
    return await DisciplineRecords(uow).team_p90(d.MIN_DWELL_SAMPLE, d.P90)


def _fixed(stage: stage_model_pb2.Stage) -> dict[str, tuple[d.DwellLimit, types_pb2.TimeLimit]]:
    if not stage.HasField("dwell_limit") or stage.dwell_limit.value <= 0:
        return {}
    unit = types_pb2.TimeUnit.Name(stage.dwell_limit.unit).removeprefix("TIME_UNIT_")
    if unit not in d.FIXED_UNITS and unit not in d.WORKING_UNITS:
        return {}
    return {stage.stage_id: (d.DwellLimit(stage.dwell_limit.value, unit), stage.dwell_limit)}


async def flag_dwell(
    uow: UnitOfWork, at: datetime, limit: int = BATCH, team_p90: dict[tuple[str, str], int] | None = None
) -> int:
    """Flag up to `limit` open deals over their dwell limit at `at` (once per stage entry); the count."""
    lim = await limits(uow, team_p90)
    records = DisciplineRecords(uow)
    flagged = 0
    for w in await records.waiting(lim.stages):
        first = lim.deadline(w.org_path, w.stage_id, aware(w.first_entered_at))
        if first is None or first[0] > at:
            continue
        if flagged >= limit:
            break
        # Only entries at least the shortest possible limit ago can be over it.
        cutoff = at - lim.min_reach(w.org_path, w.stage_id)
        for row in await records.entered_before(w.org_path, w.stage_id, cutoff, limit - flagged):
            entered = aware(row.stage_entered_at)
            hit = lim.deadline(row.org_path, row.stage_id, entered)
            if hit is None or hit[0] > at:
                continue
            await _flag(uow, row, lim, entered, hit, at)
            flagged += 1
    return flagged


async def _flag(
    uow: UnitOfWork, row: DealRow, lim: Limits, entered: datetime, hit: tuple[datetime, str], at: datetime
) -> None:
    deadline, source = hit
    await DisciplineRecords(uow).flag(
        DwellFlagRow(
            deal_id=row.deal_id,
            stage_id=row.stage_id,
            stage_entered_at=entered,
            org_path=row.org_path,
            limit_seconds=int((deadline - entered).total_seconds()),
            limit_source=source,
            deadline_at=deadline,
            flagged_at=at,
        )
    )
    # The flag on the deal (Deal.dwell): set in the body, dropped when the deal enters another stage.
    deal = deal_of(row)
    deal.dwell.exceeded = True
    deal.dwell.dwell_deadline_time.CopyFrom(ts(deadline))
    stated = lim.proto(row.stage_id) if source == "STAGE" else None
    limit_msg = stated or types_pb2.TimeLimit(
        value=max(1, round((deadline - entered).total_seconds() / 3600)), unit=types_pb2.TIME_UNIT_HOURS
    )
    deal.dwell.dwell_limit.CopyFrom(limit_msg)
    row.body = body_of(deal)
    evt = events_pb2.DealDwellExceeded(
        deal=await events.deal_context(uow, row), stage_id=row.stage_id, dwell_limit=limit_msg
    )
    evt.stage_enter_time.CopyFrom(ts(entered))
    evt.dwell_deadline_time.CopyFrom(ts(deadline))
    await uow.emit(DEAL_DWELL_EXCEEDED, evt, subject=row.deal_id)


async def next_wake(
    uow: UnitOfWork, at: datetime, team_p90: dict[tuple[str, str], int] | None = None
) -> datetime:
    """The next instant the tenant's timer must fire: a weekly deadline, a dwell deadline, or MAX_SLEEP."""
    wake = at + MAX_SLEEP
    due = await weekly_due(uow)
    if due is not None:
        wake = min(wake, due.next_due(at))
    lim = await limits(uow, team_p90)
    for w in await DisciplineRecords(uow).waiting(lim.stages):
        hit = lim.deadline(w.org_path, w.stage_id, aware(w.first_entered_at))
        if hit is not None:
            wake = min(wake, max(hit[0], at + timedelta(seconds=1)))
    return wake


__all__ = ["DEAL_DWELL_EXCEEDED", "DEAL_FROZEN", "flag_dwell", "freeze_overdue", "next_wake", "touched"]
