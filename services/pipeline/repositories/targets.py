"""Targets, their audit trail and weekly calibrations: every query of the target area."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true, update
from ulid import ULID

from kit.auth import Principal
from kit.resources import Page, PageRequest, Repository, Sort
from services.pipeline import access
from services.pipeline.domain.targets import ReasonSum
from services.pipeline.repositories.deals import in_org
from services.pipeline.store import MemberProfileRow
from services.pipeline.store_targets import TargetCalibrationRow, TargetChangeRow, TargetRow


def visible_where(who: Principal, user_id: Any, owner: Any, org_path: Any) -> ColumnElement[bool]:
    """The SQL twin of `targets.can_view`: own and owned targets, a manager's org, the tenant for admins."""
    if access.sees_all(who):
        return true()
    mine: ColumnElement[bool] = or_(user_id == who.user_id, owner == who.user_id)
    org = who.org.strip("/")
    if who.has_role(*access.MANAGERS) and org:
        return or_(mine, in_org(org_path, org))
    return mine


@dataclass(frozen=True)
class TargetSearch:
    granularity: str = ""
    period_start: date | None = None
    level: str = ""
    org_path: str = ""
    user_id: str = ""
    statuses: tuple[str, ...] = ()

    def where(self, who: Principal) -> list[ColumnElement[bool]]:
        t = TargetRow
        c: list[ColumnElement[bool]] = [visible_where(who, t.user_id, t.owner_user_id, t.org_path)]
        if self.granularity:
            c.append(t.granularity == self.granularity)
        if self.period_start:
            c.append(t.period_start == self.period_start)
        if self.level:
            c.append(t.level == self.level)
        if self.org_path:
            c.append(in_org(t.org_path, self.org_path))
        if self.user_id:
            c.append(t.user_id == self.user_id)
        if self.statuses:
            c.append(t.status.in_(self.statuses))
        return c


class Targets(Repository[TargetRow]):
    model = TargetRow
    resource = "pipeline.Target"
    key = ("target_id",)

    def _period(self, granularity: str, start: date) -> list[ColumnElement[bool]]:
        return [TargetRow.granularity == granularity, TargetRow.period_start == start]

    async def by_unit(self, granularity: str, start: date, unit_key: str) -> TargetRow | None:
        stmt = select(TargetRow).where(*self._period(granularity, start), TargetRow.unit_key == unit_key)
        return await self.session.scalar(stmt)  # type: ignore[no-any-return]

    async def units_at(self, granularity: str, start: date, paths: Sequence[str]) -> list[TargetRow]:
        """Unit (not rep) targets of the period at these org paths."""
        stmt = select(TargetRow).where(
            *self._period(granularity, start), TargetRow.level != "REP", TargetRow.org_path.in_(paths)
        )
        return list(await self.session.scalars(stmt))

    async def reps(self, granularity: str, start: date, user_ids: Sequence[str]) -> list[TargetRow]:
        stmt = select(TargetRow).where(
            *self._period(granularity, start), TargetRow.level == "REP", TargetRow.user_id.in_(user_ids)
        )
        return list(await self.session.scalars(stmt))

    async def lock(self, target_id: str) -> None:
        """Hold a parent while its hand-down is checked: concurrent children wait and see each other."""
        await self.session.execute(
            select(TargetRow.target_id).where(TargetRow.target_id == target_id).with_for_update()
        )

    async def profiles_at(self, org_path: str) -> list[MemberProfileRow]:
        """Active members profiled exactly at a unit's path (its manager is among them)."""
        stmt = select(MemberProfileRow).where(
            MemberProfileRow.org_path == org_path, MemberProfileRow.active.is_(True)
        )
        return list(await self.session.scalars(stmt))

    async def profiles_of(self, user_ids: Sequence[str]) -> list[MemberProfileRow]:
        stmt = select(MemberProfileRow).where(MemberProfileRow.user_id.in_(user_ids))
        return list(await self.session.scalars(stmt))

    async def children_assigned(self, target_id: str) -> int:
        """What a node has handed down: its children's assigned amounts, summed in SQL."""
        found = await self.session.scalar(
            select(func.coalesce(func.sum(TargetRow.assigned_minor), 0)).where(
                TargetRow.parent_target_id == target_id
            )
        )
        return int(found or 0)

    async def adopt(self, row: TargetRow) -> int:
        """A new unit target between a parent and its descendants becomes their parent."""
        old_parent = (
            TargetRow.parent_target_id.is_(None)
            if row.parent_target_id is None
            else TargetRow.parent_target_id == row.parent_target_id
        )
        result = await self.session.execute(
            update(TargetRow)
            .where(
                TargetRow.tenant_id == self.uow.tenant,
                *self._period(row.granularity, row.period_start),
                old_parent,
                TargetRow.target_id != row.target_id,
                in_org(TargetRow.org_path, row.org_path) if row.org_path else true(),
            )
            .values(parent_target_id=row.target_id)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def in_period(self, granularity: str, start: date, root: str) -> list[TargetRow]:
        """Every target of the period at or under `root` (a cascade: one per unit and rep, so few)."""
        where = [*self._period(granularity, start)]
        if root:
            where.append(in_org(TargetRow.org_path, root))
        return list(await self.session.scalars(select(TargetRow).where(*where)))

    async def page(
        self, search: TargetSearch, who: Principal, page: PageRequest, query: str
    ) -> Page[TargetRow]:
        """Newest period first, then by org path (the company "" first, a unit before its reps) and rep."""
        order = [
            Sort(TargetRow.period_start, descending=True),
            Sort(TargetRow.granularity),
            Sort(TargetRow.org_path),
            Sort(TargetRow.user_id),
        ]
        return await self.list(search.where(who), order, page, query)


class TargetChanges(Repository[TargetChangeRow]):
    """The append-only audit of targets (ids are ULIDs: time-ordered)."""

    model = TargetChangeRow
    resource = "pipeline.TargetChange"
    key = ("change_id",)

    async def record(
        self,
        target_id: str,
        action: str,
        by: str,
        at: datetime,
        field: str = "",
        old: str = "",
        new: str = "",
    ) -> None:
        self.session.add(
            TargetChangeRow(
                change_id=str(ULID()),
                target_id=target_id,
                action=action,
                field=field,
                old_value=old[:200],
                new_value=new[:200],
                changed_by=by,
                changed_at=at,
            )
        )

    async def page(self, target_id: str, page: PageRequest, query: str) -> Page[TargetChangeRow]:
        """Oldest first (change ids are time-ordered ULIDs)."""
        where = [TargetChangeRow.target_id == target_id]
        return await self.list(where, [Sort(TargetChangeRow.change_id)], page, query)


@dataclass(frozen=True)
class CalibrationSearch:
    target_id: str = ""
    org_path: str = ""
    user_ids: tuple[str, ...] = ()
    granularity: str = ""
    period_start: date | None = None
    reasons: tuple[str, ...] = ()
    week_from: date | None = None
    week_to: date | None = None

    def where(self, who: Principal) -> list[ColumnElement[bool]]:
        c_ = TargetCalibrationRow
        c: list[ColumnElement[bool]] = [visible_where(who, c_.user_id, c_.owner_user_id, c_.org_path)]
        if self.target_id:
            c.append(c_.target_id == self.target_id)
        if self.org_path:
            c.append(in_org(c_.org_path, self.org_path))
        if self.user_ids:
            c.append(c_.user_id.in_(self.user_ids))
        if self.granularity:
            c.append(c_.granularity == self.granularity)
        if self.period_start:
            c.append(c_.period_start == self.period_start)
        if self.reasons:
            c.append(c_.reason_type.in_(self.reasons))
        if self.week_from:
            c.append(c_.week_start >= self.week_from)
        if self.week_to:
            c.append(c_.week_start <= self.week_to)
        return c


class Calibrations(Repository[TargetCalibrationRow]):
    model = TargetCalibrationRow
    resource = "pipeline.TargetCalibration"
    key = ("calibration_id",)

    async def of_week(self, target_id: str, week: date) -> TargetCalibrationRow | None:
        stmt = select(TargetCalibrationRow).where(
            and_(TargetCalibrationRow.target_id == target_id, TargetCalibrationRow.week_start == week)
        )
        return await self.session.scalar(stmt)  # type: ignore[no-any-return]

    async def page(
        self, search: CalibrationSearch, who: Principal, page: PageRequest, query: str
    ) -> Page[TargetCalibrationRow]:
        """Newest week first (then newest id)."""
        order = [
            Sort(TargetCalibrationRow.week_start, descending=True),
            Sort(TargetCalibrationRow.calibration_id, descending=True),
        ]
        return await self.list(search.where(who), order, page, query)

    async def details(
        self, search: CalibrationSearch, who: Principal, limit: int
    ) -> list[tuple[str, str, str]]:
        """(id, reason type, detail) of the latest calibrations with a free-text detail."""
        c = TargetCalibrationRow
        stmt = (
            select(c.calibration_id, c.reason_type, c.reason_detail)
            .where(*search.where(who), c.reason_detail != "")
            .order_by(c.week_start.desc(), c.calibration_id.desc())
            .limit(limit)
        )
        return [(cid, reason, detail) for cid, reason, detail in (await self.session.execute(stmt)).all()]

    async def reason_sums(self, search: CalibrationSearch, who: Principal) -> list[ReasonSum]:
        """Calibrations counted and their gaps summed per level and reason type, in SQL."""
        c = TargetCalibrationRow
        stmt = (
            select(c.level, c.reason_type, func.count(), func.coalesce(func.sum(c.gap_minor), 0))
            .where(*search.where(who))
            .group_by(c.level, c.reason_type)
        )
        rows = (await self.session.execute(stmt)).all()
        return [ReasonSum(level, reason, int(n), int(gap)) for level, reason, n, gap in rows]


__all__ = [
    "CalibrationSearch",
    "Calibrations",
    "TargetChanges",
    "TargetSearch",
    "Targets",
    "visible_where",
]
