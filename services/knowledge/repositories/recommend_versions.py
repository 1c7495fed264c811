"""What RecommendSopCards checks its in-process copies against, read in one statement.

A call keeps, per process, the tenant's settings, the published library's placement (and the
picked cards' rows), each cell's lifts, the week's newcomer uses and the ranked candidates of a
context and audience. Each copy is valid while the database's version of what it was made from
is unchanged, so the service may run as several replicas: the versions are read on every call,
all of them (and the caller's recent uses of cards on the deal or lead) in one SELECT of scalar
subqueries, each an index seek or a short covered range:

- settings: the document's (version, updated_at);
- library: `sop_card_library` (version, changed_at), bumped by every card write, and the
  newest published card's `updated_at` (a database made anew under the same URL);
- newcomers: the week's row count and total uses (counters only grow);
- cell: the lift cell row (version, closed, won, refreshed_at), bumped by every change of it
  or of its cards' rows;
- recent: the card ids the caller used on this deal (or lead) since the skip window's start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Date, Select, String, and_, bindparam, case, func, select

from kit.resources import UnitOfWork
from services.knowledge.domain.cards import PUBLISHED
from services.knowledge.knowledge_settings import STORE
from services.knowledge.store import SopCardLibraryRow, SopCardRow
from services.knowledge.store_outcomes import LiftCellRow
from services.knowledge.store_usage_days import CardNewcomerDayRow
from services.knowledge.store_uses import CardUseRow

SEPARATOR = "\x1f"  # between aggregated card ids (never in an id)

SettingsVersion = tuple[int, datetime | None]
LibraryVersion = tuple[int, datetime | None, datetime | None]
NewcomerVersion = tuple[int, int]
CellVersion = tuple[int, int, int, datetime]


@dataclass(frozen=True)
class Versions:
    settings: SettingsVersion
    library: LibraryVersion
    newcomers: NewcomerVersion
    cell: CellVersion | None  # None: no cell row (or no stage asked)
    recent: frozenset[str] | None  # None: not asked


def db_key(uow: UnitOfWork) -> str:
    """Which database a copy was made from (the URL; its password is masked)."""
    return str(uow.session.get_bind().engine.url)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _statement(with_cell: bool, recent: str) -> Select[Any]:
    """The versions' SELECT for one shape (with or without the cell; recent uses on a "deal", a
    "lead" or ""), its values bound by name: built once per shape, so a call builds no SQL."""
    t = STORE.tables.current
    tenant = bindparam("tenant", type_=String)
    settings_of = [t.c.tenant_id == tenant, t.c.document == STORE.document]
    lib = SopCardLibraryRow
    nc = CardNewcomerDayRow
    week = [nc.tenant_id == tenant, nc.day >= bindparam("newcomers_since", type_=Date)]
    cell = LiftCellRow
    cell_of = [
        cell.tenant_id == tenant,
        cell.industry == bindparam("industry", type_=String),
        cell.stage_id == bindparam("stage_id", type_=String),
    ]
    columns: list[Any] = [
        select(t.c.version).where(*settings_of).scalar_subquery(),
        select(t.c.updated_at).where(*settings_of).scalar_subquery(),
        select(lib.version).where(lib.tenant_id == tenant).scalar_subquery(),
        select(lib.changed_at).where(lib.tenant_id == tenant).scalar_subquery(),
        select(func.max(SopCardRow.updated_at))
        .where(SopCardRow.tenant_id == tenant, SopCardRow.status == PUBLISHED)
        .scalar_subquery(),
        select(func.count()).where(*week).scalar_subquery(),
        select(func.coalesce(func.sum(nc.uses), 0)).where(*week).scalar_subquery(),
    ]
    if with_cell:
        columns += [
            select(c).where(*cell_of).scalar_subquery()
            for c in (cell.version, cell.closed, cell.won, cell.refreshed_at)
        ]
    u = CardUseRow
    user, since = bindparam("user_id", type_=String), bindparam("recent_since", type_=u.used_at.type)
    if recent == "deal":
        # By the deal index alone, the user and time tested per row (a time range in the
        # condition made SQLite range over every use by time).
        mine = case((and_(u.user_id == user, u.used_at >= since), u.card_id))
        where = [u.tenant_id == tenant, u.deal_id == bindparam("deal_id", type_=String)]
        columns.append(select(func.aggregate_strings(mine, SEPARATOR)).where(*where).scalar_subquery())
    elif recent == "lead":
        lead = bindparam("lead_id", type_=String)
        where = [u.tenant_id == tenant, u.user_id == user, u.lead_id == lead, u.used_at >= since]
        columns.append(select(func.aggregate_strings(u.card_id, SEPARATOR)).where(*where).scalar_subquery())
    return select(*columns)


_STATEMENTS = {(c, r): _statement(c, r) for c in (False, True) for r in ("", "deal", "lead")}


async def read_versions(
    uow: UnitOfWork,
    *,
    newcomers_since: date,
    industry: str,
    stage_id: str,
    user_id: str,
    deal_id: str,
    lead_id: str,
    recent_since: datetime | None,
) -> Versions:
    """Every version in one round trip; `recent` only when `recent_since` is given (and a deal or lead)."""
    asked = recent_since is not None and bool(deal_id or lead_id)
    shape = ("deal" if deal_id else "lead") if asked else ""
    params = {
        "tenant": uow.tenant,
        "newcomers_since": newcomers_since,
        "industry": industry,
        "stage_id": stage_id,
        "user_id": user_id,
        "recent_since": recent_since,
        "deal_id": deal_id,
        "lead_id": lead_id,
    }
    row = (await uow.session.execute(_STATEMENTS[bool(stage_id), shape], params)).one()
    s_version, s_at, l_version, l_at, published_at, n, total = row[:7]
    rest = list(row[7:])
    cell_version: CellVersion | None = None
    if stage_id:
        v, closed, won, at = rest[:4]
        rest = rest[4:]
        if v is not None:
            cell_version = (int(v), int(closed), int(won), _aware(at) or datetime.min.replace(tzinfo=UTC))
    recent: frozenset[str] | None = None
    if asked:
        recent = frozenset(x for x in (rest[0] or "").split(SEPARATOR) if x)
    return Versions(
        settings=(int(s_version or 0), _aware(s_at)),
        library=(int(l_version or 0), _aware(l_at), _aware(published_at)),
        newcomers=(int(n), int(total)),
        cell=cell_version,
        recent=recent,
    )
