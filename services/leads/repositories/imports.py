"""Queries of a batched import: what one intake asks of the database, asked once for a whole batch.

Each method answers for many keys in one or a few indexed statements (IN lists in chunks, so a
batch never nears a driver's bound-parameter limit); the import use case then decides in memory.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    Select,
    String,
    TextClause,
    any_,
    bindparam,
    literal_column,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstrumentedAttribute

from kit.db import redact_error_detail
from kit.resources import UnitOfWork
from services.leads.domain import status
from services.leads.store import IntakeRow, LeadRow, settings

CHUNK = 500  # keys per statement
NAMES_PER_STATEMENT = 1000  # names_near: a whole request in one statement


def _chunks(keys: Iterable[str], size: int = CHUNK) -> list[list[str]]:
    unique = sorted({k for k in keys if k})
    return [unique[i : i + size] for i in range(0, len(unique), size)]


class ImportRepository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session
        self._pg = self.session.get_bind().dialect.name == "postgresql"

    def _among(self, column: InstrumentedAttribute[str], keys: list[str]) -> ColumnElement[bool]:
        """`column IN keys`; on PostgreSQL `column = ANY(:keys)`, one array parameter: the same
        text whatever the number of keys, so each statement is rendered and prepared once per
        connection instead of once per group size (its IN list re-rendered on every call)."""
        if not self._pg:
            return column.in_(keys)
        return column == any_(bindparam(None, keys, type_=ARRAY(String)))

    async def intakes(self, intake_ids: Sequence[str]) -> dict[str, IntakeRow]:
        """The intakes already recorded under these ids (the replays), by id."""
        out: dict[str, IntakeRow] = {}
        for chunk in _chunks(intake_ids):
            stmt = select(IntakeRow).where(self._among(IntakeRow.intake_id, chunk))
            out.update({r.intake_id: r for r in await self.session.scalars(stmt)})
        return out

    async def versions_and_intakes(
        self, intake_ids: Sequence[str]
    ) -> tuple[dict[str, int], dict[str, IntakeRow]]:
        """policy_versions (the tenant's policy document versions) and `intakes` in one round trip:
        both are small key reads every CreateLead group makes first, the intakes usually none.
        The intakes come back as unattached rows of the columns a replay answers from (id, lead,
        outcome), read on the connection with the tenant named (IntakeRow's key is per tenant)."""
        chunks = _chunks(intake_ids)
        tenant = self.uow.tenant
        conn = await self.session.connection()
        versions: dict[str, int] = {}
        found: dict[str, IntakeRow] = {}
        if not self._pg:  # the same statement compiled once per number of ids, on the driver
            keys = chunks[0] if chunks else []
            sql = _versions_sqlite(len(keys))
            rows = await _plain_rows(conn, sql, (tenant, *((tenant, *keys) if keys else ())))
        else:  # one driver statement of constant text (the ids as an array)
            rows = await _plain_rows_pg(conn, _VERSIONS_PG, (tenant, chunks[0] if chunks else []))
        for key, version, lead_id, outcome in rows:
            if version is not None:
                versions[str(key)] = int(version)
            else:
                found[str(key)] = IntakeRow(intake_id=str(key), lead_id=str(lead_id), outcome=str(outcome))
        if len(chunks) > 1:
            found.update(await self.intakes([k for c in chunks[1:] for k in c]))
        return versions, found

    async def _versions_pg(self, conn: AsyncConnection, chunks: list[list[str]]) -> list[Any]:
        """versions_and_intakes' rows by SQLAlchemy's execution (what `_VERSIONS_PG` must answer)."""
        t, i = settings.current, IntakeRow
        tenant = self.uow.tenant
        no_text, no_int = null().cast(String), null().cast(Integer)
        versions_part = select(t.c.document, t.c.version, no_text, no_text).where(t.c.tenant_id == tenant)
        stmt = versions_part
        if chunks:
            intakes_part = select(i.intake_id, no_int, i.lead_id, i.outcome).where(
                i.tenant_id == tenant, self._among(i.intake_id, chunks[0])
            )
            stmt = union_all(versions_part, intakes_part)  # type: ignore[assignment]
        return list((await conn.execute(stmt)).all())

    async def by_contacts_and_ids(
        self, phones: Iterable[str], emails: Iterable[str], lead_ids: Iterable[str]
    ) -> tuple[list[LeadRow], dict[str, LeadRow]]:
        """The unmerged leads with any of these phones or e-mails (LeadRepository.by_contact for a
        batch) and the leads with these ids (any status, by id), in one round trip: one indexed lookup per key list (phones, e-mails,
        ids), so no index is traded for a scan, sent together as one UNION ALL (at most CHUNK keys
        of each list a statement). The rows are read through each key's index directly, not as
        `lead_id IN (subquery)`: on PostgreSQL at 100,000 leads that form took 320 ms a statement in
        a profiled bench run (load 29; the plan was not examined). A row is sorted back to its
        lists by the same tests as the lookups' (a lead found twice is one object)."""
        phone_keys, email_keys = _chunks(phones), _chunks(emails)
        id_keys = _chunks(lead_ids)
        found = await self._by_keys_probed(phone_keys, email_keys, id_keys)
        return _sorted_back(found, phone_keys, email_keys, id_keys)

    async def _by_keys_union(
        self, phone_keys: list[list[str]], email_keys: list[list[str]], id_keys: list[list[str]]
    ) -> dict[str, LeadRow]:
        """by_contacts_and_ids' leads read as the session's rows by the three lookups at once."""
        tenant = self.uow.tenant
        live = LeadRow.status != status.MERGED
        parts = [
            [select(LeadRow).where(LeadRow.tenant_id == tenant, self._among(LeadRow.phone, c), live) for c in phone_keys],
            [select(LeadRow).where(LeadRow.tenant_id == tenant, self._among(LeadRow.email, c), live) for c in email_keys],
            [select(LeadRow).where(LeadRow.tenant_id == tenant, self._among(LeadRow.lead_id, c)) for c in id_keys],
        ]  # fmt: skip
        found: dict[str, LeadRow] = {}
        for group in itertools.zip_longest(*parts):  # at most 3 x CHUNK keys a statement
            terms = [p for p in group if p is not None]
            stmt = terms[0] if len(terms) == 1 else select(LeadRow).from_statement(union_all(*terms))
            found.update({r.lead_id: r for r in await self.session.scalars(stmt)})
        return found

    async def _by_keys_probed(
        self, phone_keys: list[list[str]], email_keys: list[list[str]], id_keys: list[list[str]]
    ) -> dict[str, LeadRow]:
        """by_contacts_and_ids' leads: the three indexed lookups for their lead ids only, as driver
        statements (PostgreSQL: one of constant text, the keys as arrays, `_CONTACT_PROBE_PG`;
        SQLite: compiled once per key counts, `_contact_probe_sqlite`), then the leads found
        (usually none) loaded as the session's rows by id. The ORM UNION of three selects of whole
        leads cost its build, cache key and compile whatever it found (~4% of a grouped
        CreateLead's server samples on PostgreSQL at 1,000,000 leads; ~0.7 ms of the event loop's
        CPU per group on SQLite, against ~0.1 ms for the probe)."""
        conn = await self.session.connection()
        tenant = self.uow.tenant
        hits: set[str] = set()
        no_keys: list[str] = []
        group: tuple[list[str], list[str], list[str]]
        for group in itertools.zip_longest(phone_keys, email_keys, id_keys, fillvalue=no_keys):
            if self._pg:
                rows = await _plain_rows_pg(conn, _CONTACT_PROBE_PG, (tenant, *group))
            else:
                sql = _contact_probe_sqlite(len(group[0]), len(group[1]), len(group[2]))
                params = [value for keys in group if keys for value in (tenant, *keys)]
                rows = await _plain_rows(conn, sql, tuple(params))
            hits.update(str(r[0]) for r in rows)
        found: dict[str, LeadRow] = {}
        for chunk in _chunks(hits):
            stmt = select(LeadRow).where(LeadRow.tenant_id == tenant, self._among(LeadRow.lead_id, chunk))
            found.update({r.lead_id: r for r in await self.session.scalars(stmt)})
        return found

    async def names_near(
        self, blocks: Mapping[str, str], per_side: int
    ) -> dict[str, tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]]:
        """LeadRepository.names_near for many normalised company names (name -> its block key): per
        name, the unmerged leads of its block sorting at or after it (ascending) and before it
        (descending), `per_side` each, as (lead_id, normalised company, display name); two short
        range scans of ix_leads_tenant_company_near per name. On PostgreSQL all in one
        statement per NAMES_PER_STATEMENT names, one round trip instead of one per name (a 1,000-row
        validate-only import: 1,019 statements -> 15, the server's CPU 0.85 -> 0.36 s, time awaiting
        the database 13-27 -> 6-7 s at load 25); the names go in as two arrays, so the statement's
        text is the same whatever the batch."""
        out: dict[str, tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]] = {}
        names = sorted(blocks)
        conn = await self.session.connection()
        if not self._pg:
            return await self._names_near_each(conn, names, blocks, per_side)
        for i in range(0, len(names), NAMES_PER_STATEMENT):
            chunk = names[i : i + NAMES_PER_STATEMENT]
            for name in chunk:
                out[name] = ([], [])
            rows = await _plain_rows_pg(
                conn, _near_pg(per_side), (chunk, [blocks[n] for n in chunk], self.uow.tenant)
            )
            for name, side, lead_id, norm, display in rows:
                out[name][side].append((lead_id, norm, display))
        return out

    async def _names_near_each(
        self, conn: AsyncConnection, names: list[str], blocks: Mapping[str, str], per_side: int
    ) -> dict[str, tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]]:
        """names_near on SQLite: the two range scans of every name, up to NAMES_PER_SQLITE names, as
        one compound statement sent as plain SQL (no statement building, no ORM rows). Each name's
        handing to the database thread and its rows' decoding cost more CPU than the scans once
        the index covers them (a group of 8 CreateLead calls: 8 statements -> 1; a name's read
        0.26 -> 0.20 ms of CPU, 100,000 leads).

        Sent by `_plain_rows`: a group of 16 names reads ~2,000 rows, and their Row objects and the
        execution around them cost ~1.5 ms of the event loop's CPU per group (~90 us a lead)
        against ~0.1 ms for the driver's plain tuples. The columns are all text (lead_id,
        company_norm, display_name), as the driver returns them."""
        out: dict[str, tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]] = {}
        tenant = self.uow.tenant
        for i in range(0, len(names), NAMES_PER_SQLITE):
            chunk = names[i : i + NAMES_PER_SQLITE]
            params: list[str | int] = []
            for name in chunk:
                out[name] = ([], [])
                params += [tenant, blocks[name], name, per_side] * 2
            rows = await _plain_rows(conn, _near_sqlite(len(chunk)), tuple(params))
            for pos, side, lead_id, norm, display in cast(list[tuple[int, int, str, str, str]], rows):
                out[chunk[pos]][side].append((lead_id, norm, display))
        return out


NAMES_PER_SQLITE = 100  # two compound terms a name: SQLite allows 500


def _sorted_back(
    found: dict[str, LeadRow],
    phone_keys: list[list[str]],
    email_keys: list[list[str]],
    id_keys: list[list[str]],
) -> tuple[list[LeadRow], dict[str, LeadRow]]:
    """by_contacts_and_ids' answer from the leads found: each sorted back to its lists by the same
    tests as the lookups' (a lead found twice is one object)."""
    phone_set = {k for c in phone_keys for k in c}
    email_set = {k for c in email_keys for k in c}
    id_set = {k for c in id_keys for k in c}
    contacts = [
        r
        for r in found.values()
        if r.status != status.MERGED and (r.phone in phone_set or r.email in email_set)
    ]
    return contacts, {i: r for i, r in found.items() if i in id_set}


@functools.lru_cache(maxsize=1024)
def _contact_probe_sqlite(phones: int, emails: int, ids: int) -> str:
    """The lead ids of by_contacts_and_ids' three lookups (unmerged by phone, by e-mail; any by
    id) for these numbers of keys, compiled once for SQLite; its parameters, for each list with
    keys: the tenant, then the keys."""
    lookups: list[tuple[tuple[str, ...], Select[Any]]] = []
    for column, n, live in (
        (LeadRow.phone, phones, True),
        (LeadRow.email, emails, True),
        (LeadRow.lead_id, ids, False),
    ):
        if not n:
            continue
        pos = len(lookups)
        keys: list[Any] = [bindparam(f"k{pos}_{j}") for j in range(n)]
        where = [LeadRow.tenant_id == bindparam(f"t{pos}"), column.in_(keys)]
        if live:
            where.append(LeadRow.status != literal_column(f"'{status.MERGED}'"))
        lookups.append(
            ((f"t{pos}", *(f"k{pos}_{j}" for j in range(n))), select(LeadRow.lead_id).where(*where))
        )
    stmt = lookups[0][1] if len(lookups) == 1 else union_all(*(q for _, q in lookups))
    compiled = stmt.compile(dialect=sqlite_dialect())
    assert compiled.positiontup == [name for names, _ in lookups for name in names]
    return str(compiled)


async def _plain_rows(conn: AsyncConnection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    """The rows of `sql` (SQLite, qmark parameters) as the driver returns them (tuples), sent on the
    session connection's driver connection in its transaction (a BEGIN still pending goes with
    it): no SQLAlchemy execution around it and no Row objects, which cost a grouped CreateLead's
    reads several times what the driver does. A database error is raised as SQLAlchemy's (e.g.
    OperationalError: a lock timeout is still UNAVAILABLE), parameters hidden."""
    driver: Any = (await conn.get_raw_connection()).driver_connection
    cursor = await driver.cursor()
    try:
        await cursor.execute(sql, params)
        return list(await cursor.fetchall())
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, params, exc, sqlite3.Error, hide_parameters=True) from exc
    finally:
        await cursor.close()


@functools.lru_cache(maxsize=CHUNK + 1)
def _versions_sqlite(n: int) -> str:
    """versions_and_intakes' statement for `n` intake ids (n = 0: the versions alone), compiled
    once for SQLite; its parameters: the tenant, then (if n) the tenant and the ids."""
    t, i = settings.current, IntakeRow
    no_text, no_int = null().cast(String), null().cast(Integer)
    stmt = select(t.c.document, t.c.version, no_text, no_text).where(t.c.tenant_id == bindparam("t0"))
    if n:
        ids: list[Any] = [bindparam(f"k{j}") for j in range(n)]
        intakes = select(i.intake_id, no_int, i.lead_id, i.outcome).where(
            i.tenant_id == bindparam("t1"), i.intake_id.in_(ids)
        )
        stmt = union_all(stmt, intakes)  # type: ignore[assignment]
    compiled = stmt.compile(dialect=sqlite_dialect())
    assert compiled.positiontup == ["t0", *(["t1", *(f"k{j}" for j in range(n))] if n else [])]
    return str(compiled)


# One name's two range scans on SQLite (the 0/1 of `side` and the name's position are constants).
_SIDE_SQLITE = (
    "SELECT * FROM (SELECT {pos}, {side}, lead_id, company_norm, display_name FROM leads"
    " WHERE tenant_id = ? AND company_key = ? AND status != '{merged}' AND company_norm {op} ?"
    " ORDER BY company_norm {order} LIMIT ?)"
)


@functools.cache
def _near_sqlite(n: int) -> str:
    terms = []
    for pos in range(n):
        for side, op, order in ((0, ">=", "ASC"), (1, "<", "DESC")):
            terms.append(_SIDE_SQLITE.format(pos=pos, side=side, merged=status.MERGED, op=op, order=order))
    return " UNION ALL ".join(terms)


# versions_and_intakes on PostgreSQL ($1 the tenant, $2 the intake ids as an array, empty for none): the
# tenant's policy document versions, then the intakes recorded under those ids. The Core UNION it
# replaces was built, keyed and compiled per CreateLead group (~5% of a group's CPU in a profile).
_VERSIONS_PG = (
    f"SELECT document, version, NULL::text, NULL::text FROM {settings.current.name} WHERE tenant_id = $1"
    f" UNION ALL SELECT intake_id, NULL::integer, lead_id, outcome FROM {IntakeRow.__tablename__}"
    " WHERE tenant_id = $1 AND intake_id = ANY($2::text[])"
)

# by_contacts_and_ids' three lookups on PostgreSQL ($1 the tenant; $2 phones, $3 e-mails, $4 lead ids,
# each an array, empty for none): each through its own index, the merged status a constant of the
# text (a generic plan then knows it, as for _NEAR_PG).
_CONTACT_PROBE_PG = (
    f"SELECT lead_id FROM leads WHERE tenant_id = $1 AND phone = ANY($2::text[]) AND status <> '{status.MERGED}'"
    " UNION ALL SELECT lead_id FROM leads WHERE tenant_id = $1 AND email = ANY($3::text[])"
    f" AND status <> '{status.MERGED}'"
    " UNION ALL SELECT lead_id FROM leads WHERE tenant_id = $1 AND lead_id = ANY($4::text[])"
)


# The two range scans of names_near per name, for a list of names: a LATERAL join over the arrays,
# each side in its scan's order (equal names as the index holds them, as for a single intake).
# The status and the limit are constants of the text, not parameters: PostgreSQL plans a prepared
# statement generically from its sixth run, and with those unknown it took the status filter to
# keep nothing and sorted half the block per name instead of reading 64 names of the index (a
# thousand names: 80 s of waiting, 9 s of the server's CPU, against 0.4 s with them known).
_NEAR_PG = """
SELECT n.name, s.side, s.lead_id, s.company_norm, s.display_name
FROM unnest(CAST(:names AS text[]), CAST(:keys AS text[])) AS n(name, key)
CROSS JOIN LATERAL (
  (SELECT 0 AS side, l.lead_id, l.company_norm, l.display_name FROM leads l
   WHERE l.tenant_id = :tenant AND l.company_key = n.key AND l.status <> '{merged}' AND l.company_norm >= n.name
   ORDER BY l.company_norm LIMIT {k})
  UNION ALL
  (SELECT 1 AS side, l.lead_id, l.company_norm, l.display_name FROM leads l
   WHERE l.tenant_id = :tenant AND l.company_key = n.key AND l.status <> '{merged}' AND l.company_norm < n.name
   ORDER BY l.company_norm DESC LIMIT {k})
) AS s
"""


@functools.cache
def _near(per_side: int) -> TextClause:
    return text(_NEAR_PG.format(merged=status.MERGED, k=int(per_side)))


@functools.cache
def _near_pg(per_side: int) -> str:
    """_near's text for the driver (asyncpg): the names, the keys and the tenant as $1, $2, $3."""
    sql = _NEAR_PG.format(merged=status.MERGED, k=int(per_side))
    return sql.replace(":names", "$1").replace(":keys", "$2").replace(":tenant", "$3")


async def _plain_rows_pg(conn: AsyncConnection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    """_plain_rows on PostgreSQL: `sql` ($n parameters) on the session connection's asyncpg
    connection, inside the unit of work's transaction (`_begun`), its records as asyncpg returns
    them. A group's ~2,000 neighbour names as SQLAlchemy rows cost ~4 ms of the event loop's CPU per
    group of 16 (~250 us a lead, the largest read of a group)."""
    import asyncpg

    raw = await conn.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    driver: Any = raw.driver_connection
    try:
        await _begun(adapted)
        return list(await driver.fetch(sql, *params))
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, adapted.dbapi.Error) as exc:
        # As SQLAlchemy's execution raises it: DETAIL hidden (it quotes rows), and a connection the
        # server ended is invalidated and said so, for the unit of work to run once more on a new one.
        redact_error_detail(exc)
        lost = driver.is_closed()
        if lost:
            await conn.invalidate(exc)
        raise DBAPIError.instance(
            sql, params, exc, Exception, hide_parameters=True, connection_invalidated=lost
        ) from exc


async def _begun(adapted: Any) -> None:
    """The unit of work's transaction begun on SQLAlchemy's asyncpg adapter (`adapted`), as its own
    first execute would begin it (its isolation level, read-only and deferrable settings): the
    adapter sends BEGIN lazily, at its first statement, so a group's first reads (versions_and_intakes,
    the contact probe), sent on the driver, ran outside the transaction, each in a snapshot of its
    own. The same BEGIN, sent before them instead of before SQLAlchemy's first statement: no round
    trip more. A private part of the adapter (SQLAlchemy 2.1): tests/leads/test_intake_plain_reads.py
    checks each driver read runs in the transaction."""
    if adapted._transaction is None:
        await adapted._start_transaction()
