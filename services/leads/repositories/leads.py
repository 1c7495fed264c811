"""Queries over leads: visibility, search with typed filters and keyset pages, dedupe keys, compare-and-set."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
    update,
)

from kit.auth import Principal
from kit.errors import NotFound
from kit.resources import Page, PageRequest, Repository, Sort, contains, starts_with
from services.leads import access
from services.leads.domain import status
from services.leads.repositories import lead_scope, rep_loads
from services.leads.store import ActivityRow, BehaviorRow, DuplicateRow, IntakeRow, LeadRow


def in_team(column: Any, team: str) -> ColumnElement[bool]:
    """`column` is `team` or below it in the org tree."""
    return or_(column == team, starts_with(column, team + "/", case_sensitive=True))


def visible_to(who: Principal) -> ColumnElement[bool]:
    """The leads `who` may see (lead_scope.visible, the viewer's values bound)."""
    return lead_scope.visible(who, LeadRow, lead_scope.viewer_params(who))


def phone_visible_to(who: Principal) -> ColumnElement[bool]:
    """The leads whose phone `who` sees unmasked (lead_scope.phone_visible, values bound)."""
    return lead_scope.phone_visible(who, LeadRow, lead_scope.viewer_params(who))


@dataclass
class LeadSearch:
    """ListLeads' typed filter, checked and normalised by the API (stored enum names, "me" resolved)."""

    statuses: list[str] = field(default_factory=list)  # empty: all but MERGED
    grades: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    pools: list[str] = field(default_factory=list)
    team_path: str = ""
    regions: list[str] = field(default_factory=list)  # "east/*" includes sub-territories
    channels: list[str] = field(default_factory=list)
    source_codes: list[str] = field(default_factory=list)
    sla_states: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # any of
    product_lines: list[str] = field(default_factory=list)  # any of
    phone: str = ""  # normalised
    email: str = ""  # normalised
    query: str = ""
    duplicate_review_needed: bool | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    idle_since: datetime | None = None  # no completed activity since

    def clauses(self, who: Principal, dialect: str = "sqlite") -> list[ColumnElement[bool]]:
        c: list[ColumnElement[bool]] = [visible_to(who)]
        c.append(LeadRow.status.in_(self.statuses) if self.statuses else LeadRow.status != status.MERGED)
        if self.grades:
            c.append(LeadRow.grade.in_(self.grades))
        if self.owners:
            c.append(LeadRow.owner_user_id.in_(self.owners))
        if self.pools:
            c.append(LeadRow.pool_id.in_(self.pools))
        if self.team_path:
            c.append(in_team(LeadRow.team_path, self.team_path))
        if self.regions:
            c.append(or_(*(_region(r) for r in self.regions)))
        if self.channels:
            c.append(LeadRow.channel.in_(self.channels))
        if self.source_codes:
            c.append(LeadRow.source_code.in_(self.source_codes))
        if self.sla_states:
            c.append(LeadRow.sla_state.in_(self.sla_states))
        if self.tags:
            c.append(_body_list_has_any(dialect, "tags", self.tags))
        if self.product_lines:
            c.append(_body_list_has_any(dialect, "product_lines", self.product_lines))
        if self.phone:
            # Only over leads whose phone the caller sees: a masked number must not be confirmable.
            c += [LeadRow.phone == self.phone, phone_visible_to(who)]
        if self.email:
            c.append(LeadRow.email == self.email)
        if self.query:
            # A lead known only by its number is named by it: where the caller sees the phone masked,
            # the text is matched against the name without the phone (no oracle on the digits).
            named = case(
                (phone_visible_to(who), LeadRow.display_name),
                else_=func.replace(LeadRow.display_name, func.coalesce(LeadRow.phone, ""), ""),
            )
            c.append(contains(named, self.query))
        if self.duplicate_review_needed is not None:
            c.append(LeadRow.duplicate_review_needed.is_(self.duplicate_review_needed))
        if self.created_from is not None:
            c.append(LeadRow.created_at >= self.created_from)
        if self.created_before is not None:
            c.append(LeadRow.created_at < self.created_before)
        if self.idle_since is not None:
            c.append(or_(LeadRow.last_activity_time.is_(None), LeadRow.last_activity_time < self.idle_since))
        return c


def _body_list_has_any(dialect: str, key: str, values: list[str]) -> ColumnElement[bool]:
    """The lead's `body[key]`, a list of strings (tags, product lines), holds any of `values`:
    its elements as a table (SQLite json_each, PostgreSQL json_array_elements_text)."""
    if dialect == "postgresql":
        items = func.json_array_elements_text(LeadRow.body[key]).table_valued("value").render_derived()
    else:
        items = func.json_each(LeadRow.body, f"$.{key}").table_valued("value")
    return exists(select(1).select_from(items).where(items.c.value.in_(values)))


def _region(code: str) -> ColumnElement[bool]:
    if code.endswith("/*"):
        return or_(LeadRow.region == code[:-2], starts_with(LeadRow.region, code[:-1], case_sensitive=True))
    return LeadRow.region == code


# ListLeads' total_size is exact up to this many matches; above it, COUNT_CAP + 1 says "more".
COUNT_CAP = 1000

# ListLeads' documented orders (AIP-132 order_by), each broken by lead_id.
ORDERS: dict[str, Any] = {
    "create_time": LeadRow.created_at,
    "update_time": LeadRow.updated_at,
    "score": LeadRow.score,
    "last_activity_time": LeadRow.last_activity_time,
    "first_response.due_time": LeadRow.sla_due,
}


# GetLead's statement, built once (building it was a fifth of the read's own work); the tenant
# criteria are added per session as to every statement.
_WITH_DUPLICATES = (
    select(LeadRow, DuplicateRow)
    .outerjoin(
        DuplicateRow,
        and_(DuplicateRow.tenant_id == LeadRow.tenant_id, DuplicateRow.lead_id == LeadRow.lead_id),
    )
    .where(LeadRow.lead_id == bindparam("lead_id"))
)


class LeadRepository(Repository[LeadRow]):
    model = LeadRow
    resource = "lead"
    key = ("lead_id",)

    async def find_locked(self, lead_id: str) -> LeadRow | None:
        """The lead, its row locked for this transaction (PostgreSQL; SQLite has one writer anyway)."""
        return await self.session.scalar(select(LeadRow).where(LeadRow.lead_id == lead_id).with_for_update())  # type: ignore[no-any-return]

    async def find_many_locked(self, lead_ids: list[str]) -> dict[str, LeadRow]:
        """The leads found among `lead_ids`, their rows locked for this transaction, in one statement."""
        rows = await self.session.scalars(
            # In id order: two transactions locking overlapping leads take them in the same order
            # (PostgreSQL would otherwise lock in the plan's order, and they could deadlock).
            select(LeadRow).where(LeadRow.lead_id.in_(lead_ids)).order_by(LeadRow.lead_id).with_for_update()
        )
        return {row.lead_id: row for row in rows}

    async def get(self, *id: Any, for_update: bool = False) -> LeadRow:
        row = await (self.find_locked(id[0]) if for_update else self.find(*id))
        if row is None:
            raise NotFound(self.resource, str(id[0]))
        return row

    async def visible(self, who: Principal, lead_id: str, *, for_update: bool = False) -> LeadRow:
        """The lead if `who` may see it. A lead outside their scope is NOT_FOUND exactly like one
        that is not there: a different answer would confirm that the id exists."""
        row = await self.get(lead_id, for_update=for_update)
        if not access.can_view(who, row):
            raise NotFound(self.resource, lead_id)
        return row

    async def visible_with_duplicates(
        self, who: Principal, lead_id: str
    ) -> tuple[LeadRow, list[DuplicateRow]]:
        """`visible` and the lead's duplicate candidates in one round trip (GetLead's FULL view)."""
        found = (await self.session.execute(_WITH_DUPLICATES, {"lead_id": lead_id})).all()
        if not found or not access.can_view(who, found[0][0]):
            raise NotFound(self.resource, lead_id)
        return found[0][0], [d for _, d in found if d is not None]

    async def search(
        self, who: Principal, search: LeadSearch, order: Sort, page: PageRequest, query: str
    ) -> Page[LeadRow]:
        """A page and its total (ListLeadsResponse.total_size, exact up to COUNT_CAP) in one
        statement (`Repository.paginate_counted`)."""
        where = search.clauses(who, self.session.get_bind().dialect.name)
        return await self.paginate_counted(where, [order], page, query, cap=COUNT_CAP)

    async def by_contact(self, phone: str, email: str) -> list[LeadRow]:
        """Unmerged leads with this phone or e-mail, oldest first (the dedupe candidates)."""
        keys = [LeadRow.phone == phone] if phone else []
        if email:
            keys.append(LeadRow.email == email)
        if not keys:
            return []
        # One indexed lookup per key, by id: `phone = ? OR email = ?` (and its ORDER BY created_at)
        # let SQLite walk all of the tenant's leads instead, once per intake. Ordered here.
        tenant = self.uow.tenant
        ids = union_all(*(select(LeadRow.lead_id).where(LeadRow.tenant_id == tenant, k) for k in keys))
        stmt = select(LeadRow).where(LeadRow.lead_id.in_(ids), LeadRow.status != status.MERGED)
        return sorted(await self.session.scalars(stmt), key=lambda r: (r.created_at, r.lead_id))

    async def others_with_contact(self, lead_id: str, phone: str, email: str) -> list[LeadRow]:
        return [r for r in await self.by_contact(phone, email) if r.lead_id != lead_id]

    async def names_near(self, block_key: str, name: str, per_side: int) -> list[tuple[str, str, str]]:
        """(lead_id, normalised company, display name) of the unmerged leads whose normalised company
        sorts nearest to `name` in its block, `per_side` on each side: two short range scans of
        ix_leads_tenant_company_near, however large the block (a sorted neighbourhood)."""
        tenant = self.uow.tenant
        cols = (LeadRow.lead_id, LeadRow.company_norm, LeadRow.display_name)
        # The status and the limit are constants of the text, not parameters: PostgreSQL plans a
        # prepared statement generically from its sixth run, and with them unknown it may sort the
        # block instead of reading a few names of the index (see repositories/imports.py _NEAR_PG).
        block = (
            LeadRow.tenant_id == tenant,
            LeadRow.company_key == block_key,
            LeadRow.status != literal(status.MERGED, literal_execute=True),
        )
        k: ColumnElement[int] = literal_column(str(int(per_side)))
        up = select(*cols).where(*block, LeadRow.company_norm >= name).order_by(LeadRow.company_norm)
        down = select(*cols).where(*block, LeadRow.company_norm < name)
        down = down.order_by(LeadRow.company_norm.desc())
        both = union_all(select(up.limit(k).subquery()), select(down.limit(k).subquery()))
        return [(str(a), str(b), str(c)) for a, b, c in (await self.session.execute(both)).all()]

    async def take_from_pool(self, lead_id: str, user_id: str) -> int | None:
        """Compare-and-set: of many concurrent claims exactly one finds the lead unowned in its pool.
        The winner's open leads after it (its counter locked next, see rep_loads.apply); None: lost."""
        won = await self.session.execute(
            update(LeadRow)
            .where(
                LeadRow.lead_id == lead_id,
                LeadRow.status == status.IN_POOL,
                LeadRow.owner_user_id.is_(None),
            )
            .values(owner_user_id=user_id, status=status.ASSIGNED, version=LeadRow.version + 1)
            .execution_options(synchronize_session=False)
        )
        if won.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return await rep_loads.claimed(self.uow, user_id)  # an UPDATE the counters' flush hook does not see

    async def refresh(self, row: LeadRow) -> None:
        await self.session.refresh(row)

    async def live_after(self, after_id: str, limit: int) -> list[LeadRow]:
        """Leads not closed, by id after `after_id` (batches of a tenant-wide re-grade)."""
        stmt = (
            select(LeadRow)
            .where(LeadRow.status.in_(sorted(status.LIVE)), LeadRow.lead_id > after_id)
            .order_by(LeadRow.lead_id)
            .limit(limit)
        )
        return list(await self.session.scalars(stmt))

    async def move_children(self, from_id: str, to_id: str) -> None:
        """A merge: the source lead's intakes, activities and behaviour events now belong to the target."""
        for table in (IntakeRow, ActivityRow, BehaviorRow):
            await self.session.execute(
                update(table)
                .where(table.lead_id == from_id)
                .values(lead_id=to_id)
                .execution_options(synchronize_session=False)
            )

    async def visible_rows_among(self, who: Principal, lead_ids: list[str]) -> dict[str, LeadRow]:
        """Those of `lead_ids` `who` may see, by id."""
        if not lead_ids:
            return {}
        stmt = select(LeadRow).where(LeadRow.lead_id.in_(lead_ids), visible_to(who))
        return {r.lead_id: r for r in await self.session.scalars(stmt)}

    async def visible_among(self, who: Principal, lead_ids: list[str]) -> set[str]:
        """Which of `lead_ids` `who` may see."""
        if not lead_ids:
            return set()
        stmt = select(LeadRow.lead_id).where(LeadRow.lead_id.in_(lead_ids), visible_to(who))
        return {str(i) for i in await self.session.scalars(stmt)}

    async def ids_visible_to(self, who: Principal) -> Any:
        """A subquery of the ids of the leads `who` may see."""
        return select(LeadRow.lead_id).where(visible_to(who))


__all__ = ["COUNT_CAP", "ORDERS", "LeadRepository", "LeadSearch", "in_team", "phone_visible_to", "visible_to"]
