"""Queries over activities, behaviour events and assignment decisions (a lead's history)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select

from kit.resources import Page, PageRequest, Repository, Sort
from services.leads.store import ActivityRow, BehaviorRow, DecisionRow


@dataclass
class ActivitySearch:
    """ListActivities' typed filter (stored enum names, "me" resolved)."""

    lead_ids: Any = None  # one id, or a subquery of the ids the caller may see
    types: list[str] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    occurred_from: datetime | None = None
    occurred_before: datetime | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        c: list[ColumnElement[bool]] = []
        if isinstance(self.lead_ids, str):
            c.append(ActivityRow.lead_id == self.lead_ids)
        elif self.lead_ids is not None:
            c.append(ActivityRow.lead_id.in_(self.lead_ids))
        if self.types:
            c.append(ActivityRow.activity_type.in_(self.types))
        if self.actors:
            c.append(ActivityRow.actor_user_id.in_(self.actors))
        if self.states:
            c.append(ActivityRow.state.in_(self.states))
        if self.occurred_from is not None:
            c.append(ActivityRow.occur_time >= self.occurred_from)
        if self.occurred_before is not None:
            c.append(ActivityRow.occur_time < self.occurred_before)
        return c


class ActivityRepository(Repository[ActivityRow]):
    model = ActivityRow
    resource = "activity"
    key = ("activity_id",)

    async def search(self, search: ActivitySearch, page: PageRequest, query: str) -> Page[ActivityRow]:
        """Newest first (occur time descending, then id)."""
        return await self.list(search.clauses(), [Sort(ActivityRow.occur_time, descending=True)], page, query)


class BehaviorRepository(Repository[BehaviorRow]):
    model = BehaviorRow
    resource = "behavior event"
    key = ("event_id",)

    async def of_lead(self, lead_id: str) -> list[tuple[str, datetime]]:
        rows = await self.session.execute(
            select(BehaviorRow.event_type, BehaviorRow.occur_time).where(BehaviorRow.lead_id == lead_id)
        )
        return [(str(t), o) for t, o in rows.all()]


class DecisionRepository(Repository[DecisionRow]):
    model = DecisionRow
    resource = "assignment decision"
    key = ("decision_id",)

    async def of_lead(self, lead_id: str) -> list[DecisionRow]:
        """Newest first."""
        stmt = (
            select(DecisionRow)
            .where(DecisionRow.lead_id == lead_id)
            .order_by(DecisionRow.decide_time.desc(), DecisionRow.decision_id.desc())
        )
        return list(await self.session.scalars(stmt))
