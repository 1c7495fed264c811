"""GetLead's and ListLeads' reads: Core statements of just the columns an answer shows, one per call.

The ORM path (LeadRepository.visible_with_duplicates / search) cost most of a read's CPU in building
the statement and its cache key again on every call (the tenant criteria make a new statement each
time), hydrating entities, and attribute access on them. Here each statement is built once per
*shape* (which filters are set, how many values each holds, the viewer's kind, the order, whether a
page token is given) with every value a bound parameter, so a call only binds values; rows come back
as `LeadView` tuples with LeadRow's attribute names, which the presenter reads like a LeadRow.

These statements do not go through the session's tenant hook (Core statements on tables are not
seen by it): each names `tenant_id` itself. The visibility is lead_scope's, as for every other
leads query; the filters are the bound-parameter twins of `LeadSearch.clauses` in
repositories/leads.py, and tests/leads/test_lead_reads_match.py checks page for page, token for
token, that the two paths agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Engine,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    null,
    or_,
    select,
    tuple_,
)

from kit.auth import Principal
from kit.db import loop_readers
from kit.errors import NotFound
from kit.resources import (
    CaseSensitiveMatch,
    Page,
    PageRequest,
    Repository,
    Sort,
    escape_like,
    glob_pattern,
    like_pattern,
)
from services.leads import access
from services.leads.domain import status
from services.leads.repositories import lead_scope, read_memos, sqlite_driven
from services.leads.repositories.leads import COUNT_CAP, LeadSearch
from services.leads.store import DuplicateRow, LeadRow

LEADS: Table = LeadRow.__table__  # type: ignore[assignment]
DUPLICATES: Table = DuplicateRow.__table__  # type: ignore[assignment]


class LeadView(NamedTuple):
    """What a lead's answer shows of its row (presenters, access, the watch state), by LeadRow's names."""

    lead_id: str
    status: str
    display_name: str
    phone: str
    region: str
    grade: str
    score: int
    grading: dict[str, Any] | None  # None: a list's BASIC view does not read it
    owner_user_id: str | None
    team_path: str
    supervisor_user_id: str
    pool_id: str | None
    pool_entry_reason: str
    assignment_reason: str
    assign_time: datetime | None
    last_decision_id: str
    last_activity_time: datetime | None
    activity_count: int
    sla_state: str
    sla_grade: str
    sla_start: datetime | None
    sla_due: datetime | None
    sla_reminder: datetime | None
    sla_reminded: bool
    sla_response_time: datetime | None
    sla_response_activity_id: str
    sla_responder: str
    sla_business_seconds: float | None
    sla_breach_time: datetime | None
    sla_breach_action: str
    sla_reassignments: int
    needs_attention: bool
    recycle_warned: bool
    duplicate_review_needed: bool
    intake_count: int
    merged_into: str
    converted_opportunity_id: str
    close_time: datetime | None
    body: dict[str, Any] | str  # on SQLite its JSON text, as stored (presenters.put_body)
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


_VIEW = [LEADS.c[name] for name in LeadView._fields]
_N = len(_VIEW)
# A list's BASIC view: the same columns but `grading` (only the FULL view shows it).
_BASIC = [null().label("grading") if c.name == "grading" else c for c in _VIEW]


class DuplicateView(NamedTuple):
    """A duplicate candidate of the lead (lead_views.candidates_of reads it like a DuplicateRow)."""

    other_lead_id: str
    kind: str
    score: float
    display_name: str
    state: str
    detect_time: datetime


class OtherLead(NamedTuple):
    """What a candidate's answer needs of the other lead: access.can_see_phone, masked_display_name."""

    owner_user_id: str | None
    team_path: str
    phone: str
    display_name: str


@dataclass
class FoundLead:
    """GetLead's read: the lead, and its candidates the viewer may see, each with its other lead."""

    lead: LeadView
    candidates: list[tuple[DuplicateView, OtherLead]]


# --- GetLead ------------------------------------------------------------------------------------


def _get_statement(who: Principal) -> Select[Any]:
    d, other = DUPLICATES, LEADS.alias("other")
    joined = LEADS.outerjoin(
        d, and_(d.c.tenant_id == LEADS.c.tenant_id, d.c.lead_id == LEADS.c.lead_id)
    ).outerjoin(
        other,
        and_(
            other.c.tenant_id == LEADS.c.tenant_id,
            other.c.lead_id == d.c.other_lead_id,
            lead_scope.visible(
                who, other.c
            ),  # a candidate names another lead: listed only if the viewer sees it
        ),
    )
    return (
        select(
            *_VIEW,
            *(d.c[n] for n in DuplicateView._fields),
            other.c.lead_id,
            *(other.c[n] for n in OtherLead._fields),
        )
        .select_from(joined)
        .where(LEADS.c.tenant_id == bindparam("tenant"), LEADS.c.lead_id == bindparam("lead_id"))
        .order_by(d.c.other_lead_id, d.c.kind)  # the candidates' primary-key order
    )


# --- ListLeads ----------------------------------------------------------------------------------


def _binds(prefix: str, values: Sequence[Any]) -> list[BindParameter[Any]]:
    return [bindparam(f"{prefix}_{i}") for i in range(len(values))]


def _body_list_has_any(dialect: str, key: str, values: list[BindParameter[Any]]) -> ColumnElement[bool]:
    """leads._body_list_has_any over bound values."""
    if dialect == "postgresql":
        items = func.json_array_elements_text(LEADS.c.body[key]).table_valued("value").render_derived()
    else:
        items = func.json_each(LEADS.c.body, f"$.{key}").table_valued("value")
    return exists(select(1).select_from(items).where(items.c.value.in_(values)))


def _list_columns() -> dict[str, Any]:
    c = LEADS.c
    return {
        "grades": c.grade,
        "owners": c.owner_user_id,
        "pools": c.pool_id,
        "channels": c.channel,
        "source_codes": c.source_code,
        "sla_states": c.sla_state,
    }


_LISTS = ("grades", "owners", "pools", "channels", "source_codes", "sla_states")
_TIMES = ("created_from", "created_before", "idle_since")


def _search_params(who: Principal, s: LeadSearch, dialect: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The shape of `s` (what `_filters` builds for it) and the values it binds, cheaply per call."""
    params = lead_scope.viewer_params(who)
    for name in ("statuses", *_LISTS, "tags", "product_lines"):
        params.update((f"{name}_{i}", v) for i, v in enumerate(getattr(s, name)))
    if s.team_path:
        params |= lead_scope.team_params("team", s.team_path)
    for i, code in enumerate(s.regions):
        if code.endswith("/*"):
            params[f"region_{i}"] = code[:-2]
            params[f"region_{i}_below"], params[f"region_{i}_glob"] = (
                like_pattern(code[:-1]),
                glob_pattern(code[:-1]),
            )
        else:
            params[f"region_{i}"] = code
    if s.phone:
        params["phone"] = s.phone
    if s.email:
        params["email"] = s.email
    if s.query:
        params["query"] = f"%{escape_like(s.query)}%"
    for name in _TIMES:
        if getattr(s, name) is not None:
            params[name] = getattr(s, name)
    shape = (
        dialect,
        lead_scope.viewer_shape(who),
        *(len(getattr(s, name)) for name in ("statuses", *_LISTS, "tags", "product_lines")),
        tuple(code.endswith("/*") for code in s.regions),
        *(bool(getattr(s, name)) for name in ("team_path", "phone", "email", "query", *_TIMES)),
        s.duplicate_review_needed,
    )
    return shape, params


def _filters(who: Principal, s: LeadSearch, dialect: str) -> list[ColumnElement[bool]]:
    """LeadSearch.clauses (and the tenant) with every value bound as `_search_params` names it."""
    c = LEADS.c
    out: list[ColumnElement[bool]] = [c.tenant_id == bindparam("tenant"), lead_scope.visible(who, c)]
    if s.statuses:
        out.append(c.status.in_(_binds("statuses", s.statuses)))
    else:
        out.append(c.status != status.MERGED)
    for name, column in _list_columns().items():
        if getattr(s, name):
            out.append(column.in_(_binds(name, getattr(s, name))))
    if s.team_path:
        out.append(lead_scope.in_team(c.team_path, "team"))
    if s.regions:
        regions = []
        for i, code in enumerate(s.regions):
            exact = c.region == bindparam(f"region_{i}")
            if code.endswith("/*"):  # "east/*": east and its sub-territories
                below = CaseSensitiveMatch(
                    c.region, bindparam(f"region_{i}_below"), bindparam(f"region_{i}_glob")
                )
                exact = or_(exact, below)
            regions.append(exact)
        out.append(or_(*regions))
    for key in ("tags", "product_lines"):
        if getattr(s, key):
            out.append(_body_list_has_any(dialect, key, _binds(key, getattr(s, key))))
    if s.phone:
        # Only over leads whose phone the caller sees: a masked number must not be confirmable.
        out += [c.phone == bindparam("phone"), lead_scope.phone_visible(who, c)]
    if s.email:
        out.append(c.email == bindparam("email"))
    if s.query:
        # Where the caller sees the phone masked, the text is matched against the name without it.
        named = case(
            (lead_scope.phone_visible(who, c), c.display_name),
            else_=func.replace(c.display_name, func.coalesce(c.phone, ""), ""),
        )
        out.append(named.ilike(bindparam("query"), escape="\\"))
    if s.duplicate_review_needed is not None:
        out.append(c.duplicate_review_needed.is_(s.duplicate_review_needed))
    when = {name: bindparam(name, type_=c.created_at.type) for name in _TIMES}
    if s.created_from is not None:
        out.append(c.created_at >= when["created_from"])
    if s.created_before is not None:
        out.append(c.created_at < when["created_before"])
    if s.idle_since is not None:
        out.append(or_(c.last_activity_time.is_(None), c.last_activity_time < when["idle_since"]))
    return out


def _after(sorts: Sequence[Sort], last: Sequence[Any]) -> ColumnElement[bool]:
    """kit's `after` (rows past the token's row) with the token's values bound (`after_<i>`); which
    of them are NULL is part of the statement's shape."""
    cols = [LEADS.c[s.name] for s in sorts]
    binds = [bindparam(f"after_{i}", type_=col.type) for i, col in enumerate(cols)]
    if len({s.descending for s in sorts}) == 1 and not any(col.nullable for col in cols):
        left, right = tuple_(*cols), tuple_(*binds)
        return left < right if sorts[0].descending else left > right
    branches = []
    for i, (sort, col) in enumerate(zip(sorts, cols, strict=True)):
        equal = [cols[j].is_(None) if last[j] is None else cols[j] == binds[j] for j in range(i)]
        if last[i] is None:
            beyond: ColumnElement[bool] = false()
        else:
            beyond = col < binds[i] if sort.descending else col > binds[i]
            if col.nullable:
                beyond = or_(beyond, col.is_(None))
        branches.append(and_(*equal, beyond))
    return or_(*branches)


def _order(sorts: Sequence[Sort]) -> list[Any]:
    out = []
    for s in sorts:
        col = LEADS.c[s.name]
        term = col.desc() if s.descending else col.asc()
        out.append(term.nulls_last() if col.nullable else term)
    return out


def _bounded_count(where: list[ColumnElement[bool]]) -> Any:
    ids = select(LEADS.c.lead_id).where(*where).limit(COUNT_CAP + 1)
    return select(func.count()).select_from(ids.subquery()).scalar_subquery()


# Statements by shape. Shapes are few (a filter form's combinations), each a few kB; bounded anyway.
_STATEMENTS: dict[tuple[Any, ...], Any] = {}
_STATEMENTS_MAX = 2000


def _cached(shape: tuple[Any, ...], build: Any) -> Any:
    found = _STATEMENTS.get(shape)
    if found is None:
        if len(_STATEMENTS) >= _STATEMENTS_MAX:
            _STATEMENTS.clear()
            sqlite_driven.forget()
        found = _STATEMENTS[shape] = build()
    return found


class LeadReads(Repository[LeadRow]):
    """The read paths of GetLead and ListLeads (the keyset and token as LeadRepository's)."""

    model = LeadRow
    resource = "lead"
    key = ("lead_id",)
    # The last statement's answer as sqlite_driven names it (None: read otherwise, or unnamed):
    # ListLeads' page memo (presenters.LeadPresenter.present_page) is keyed by it.
    answer: sqlite_driven.Answer | None = None

    def _keyset(self, order: Sequence[Sort], query: str) -> Any:
        if len(order) != 1:
            return super()._keyset(order, query)
        return read_memos.keyset(super()._keyset, order[0], query)

    def next_token(self, keyset: Any, items: Sequence[Any], *, more: bool) -> str:
        if not more:
            return ""
        values = [getattr(items[-1], s.name) for s in keyset.sorts]
        return read_memos.page_token(self.uow.tokens, self.uow.tenant, keyset.fingerprint, values)

    async def _rows(self, stmt: Any, params: dict[str, Any]) -> list[Any]:
        """The rows of a cached statement (from `_cached`): on SQLite run on the driver itself
        (sqlite_driven: on the loop's thread, else on the connection's), elsewhere by SQLAlchemy
        (asyncpg's rows need no conversion to speak of)."""
        params = params | {"tenant": self.uow.tenant}
        self.answer = None
        bind = self.uow.bind  # a loop read opens no session (a statement reads' one is lazy)
        if bind.dialect.name == "sqlite":
            run = sqlite_driven.driven(stmt, bind.dialect)
            if run is not None:
                # Only statement reads (snapshot=False) may read on the loop: a writer's unit of
                # work sees what it has not committed, a snapshot read its transaction's snapshot,
                # a session bound to one connection that connection's: only it answers them.
                readers = loop_readers(bind) if isinstance(bind, Engine) else None
                if readers is not None and not self.uow.writable:
                    found = sqlite_driven.answered_on_loop(readers, run, params)
                    if found is not None:
                        rows, self.answer = found
                        return rows
                return await sqlite_driven.on_thread(await self.session.connection(), run, params)
        conn = await self.session.connection()  # the unit of work's transaction
        return list((await conn.execute(stmt, params)).all())

    async def get(self, who: Principal, lead_id: str) -> FoundLead:  # type: ignore[override]
        """The lead and its candidates the viewer may see, in one statement. A lead the viewer may
        not see is NOT_FOUND exactly like one that is not there."""
        stmt = _cached(("get", lead_scope.viewer_shape(who)), lambda: _get_statement(who))
        rows = await self._rows(stmt, {"lead_id": lead_id, **lead_scope.viewer_params(who)})
        if not rows:
            raise NotFound(self.resource, lead_id)
        lead = LeadView._make(rows[0][:_N])
        if not access.can_view(who, lead):
            raise NotFound(self.resource, lead_id)
        dup, seen = _N + len(DuplicateView._fields), _N + len(DuplicateView._fields) + 1
        candidates = [
            (DuplicateView._make(r[_N:dup]), OtherLead._make(r[seen:]))
            for r in rows
            if r[_N] is not None and r[dup] is not None
        ]
        return FoundLead(lead, candidates)

    async def search(
        self,
        who: Principal,
        search: LeadSearch,
        order: Sort,
        page: PageRequest,
        query: str,
        *,
        full: bool = True,
    ) -> Page[LeadView]:
        """LeadRepository.search's page, token and bounded total, in one statement. Not `full`:
        the leads' `grading` is not read (None; only the FULL view shows it, a JSON document to
        decode per row)."""
        dialect = self.uow.bind.dialect.name
        keyset = self._keyset([order], query)
        last = self.last_values(keyset, page)
        shape, params = _search_params(who, search, dialect)
        sorts = keyset.sorts
        if last is not None:
            params.update((f"after_{i}", v) for i, v in enumerate(last))

        def build() -> Any:
            where = _filters(who, search, dialect)
            columns = _VIEW if full else _BASIC
            stmt = select(*columns, _bounded_count(where).label("total")).where(*where)
            if last is not None:
                stmt = stmt.where(_after(sorts, last))
            return stmt.order_by(*_order(sorts)).limit(bindparam("page_limit", type_=Integer()))

        after_shape = None if last is None else tuple(v is None for v in last)
        key = ("list", shape, tuple((s.name, s.descending) for s in sorts), after_shape, full)
        rows = await self._rows(_cached(key, build), params | {"page_limit": page.size + 1})
        answer = self.answer  # the page's (a count below is another statement)
        items = [LeadView._make(r[:_N]) for r in rows[: page.size]]
        token = self.next_token(keyset, items, more=len(rows) > page.size)  # type: ignore[arg-type]
        if rows:
            total = int(rows[0][_N] or 0)
        elif not page.token:
            total = 0
        else:  # an empty page has no row to carry it (a token past the last match)
            count = _cached(("count", shape), lambda: select(_bounded_count(_filters(who, search, dialect))))
            total = int((await self._rows(count, params))[0][0] or 0)
        self.answer = answer
        return Page(items, token, total)


__all__ = ["DuplicateView", "FoundLead", "LeadReads", "LeadView", "OtherLead"]
