"""One store for tenant settings: a typed, versioned proto document per tenant, with history.

    tables = settings_tables(metadata)                       # in the service's store.py
    RULES = TenantSettings(RulesMessage, defaults=RulesMessage(limit=5))

    rules = await RULES.get(uow)                                 # stored value, else the defaults
    rules = await RULES.put(uow, new_rules, etag=request.etag, actor=principal.user_id)

A service may keep several documents (one per message type by default, or named
with `document=`). The etag is the document's version ("0" before the first
write); `put` is a compare-and-set on it and appends the new version to the
history table, so every past value stays readable. When the message type has an
`etag` field, `get` and `put` fill it in; it is never stored in the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, NamedTuple, TypeVar

from google.protobuf.message import Message
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, String, Table, insert, select, update

from kit.errors import Aborted
from kit.resources.repository import STALE_ETAG
from kit.resources.uow import UnitOfWork

M = TypeVar("M", bound=Message)

SETTINGS_TABLE = "tenant_settings"
SETTINGS_HISTORY_TABLE = "tenant_settings_history"


class SettingsTables(NamedTuple):
    current: Table
    history: Table


def settings_tables(metadata: MetaData) -> SettingsTables:
    """Add the settings tables to a service's metadata (so its migrations create them)."""
    current = Table(
        SETTINGS_TABLE,
        metadata,
        Column("tenant_id", String(64), primary_key=True),
        Column("document", String(128), primary_key=True, comment="which settings: a message type name"),
        Column("version", Integer, nullable=False),
        Column("body", LargeBinary, nullable=False, comment="serialized proto message"),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("updated_by", String(128), nullable=False),
    )
    history = Table(
        SETTINGS_HISTORY_TABLE,
        metadata,
        Column("tenant_id", String(64), primary_key=True),
        Column("document", String(128), primary_key=True),
        Column("version", Integer, primary_key=True),
        Column("body", LargeBinary, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("updated_by", String(128), nullable=False),
    )
    return SettingsTables(current, history)


# Statements compile against these; a service's own tables of the same names
# (made by `settings_tables`) are the same tables in its database.
DEFAULT_TABLES = settings_tables(MetaData())


@dataclass(frozen=True)
class Stored(Generic[M]):
    """A settings document with its version (0: never written, these are the defaults)."""

    value: M
    version: int
    updated_at: datetime | None = None
    updated_by: str = ""

    @property
    def etag(self) -> str:
        return str(self.version)


class TenantSettings(Generic[M]):
    """One typed settings document per tenant. Stateless: share one instance per service."""

    def __init__(
        self,
        message_type: type[M],
        defaults: M,
        *,
        document: str | None = None,
        tables: SettingsTables = DEFAULT_TABLES,
    ) -> None:
        self.message_type = message_type
        self.defaults = defaults
        self.document = document or message_type.DESCRIPTOR.full_name
        self.tables = tables
        self._has_etag = "etag" in message_type.DESCRIPTOR.fields_by_name

    def _with_etag(self, value: M, version: int) -> M:
        if self._has_etag:
            value.etag = str(version)  # type: ignore[attr-defined]
        return value

    def _defaults(self) -> M:
        value = self.message_type()
        value.CopyFrom(self.defaults)
        return value

    async def load(self, uow: UnitOfWork) -> Stored[M]:
        t = self.tables.current
        row = (
            await uow.session.execute(
                select(t.c.version, t.c.body, t.c.updated_at, t.c.updated_by).where(
                    t.c.tenant_id == uow.tenant, t.c.document == self.document
                )
            )
        ).first()
        if row is None:
            return Stored(self._with_etag(self._defaults(), 0), 0)
        value = self._with_etag(self.message_type.FromString(row.body), row.version)
        return Stored(value, row.version, row.updated_at, row.updated_by)

    async def get(self, uow: UnitOfWork) -> M:
        """The tenant's stored settings, else the defaults; `etag` set when the type has one."""
        return (await self.load(uow)).value

    async def history(self, uow: UnitOfWork, *, limit: int = 50) -> list[Stored[M]]:
        """Past versions, newest first."""
        t = self.tables.history
        rows = await uow.session.execute(
            select(t.c.version, t.c.body, t.c.updated_at, t.c.updated_by)
            .where(t.c.tenant_id == uow.tenant, t.c.document == self.document)
            .order_by(t.c.version.desc())
            .limit(limit)
        )
        return [
            Stored(
                self._with_etag(self.message_type.FromString(r.body), r.version),
                r.version,
                r.updated_at,
                r.updated_by,
            )
            for r in rows
        ]

    async def put(self, uow: UnitOfWork, value: M, etag: str, actor: str) -> M:
        """Store `value` as the next version if `etag` (when given) is the current one; ABORTED if not."""
        current = self.tables.current
        stored = await self.load(uow)
        if etag and etag != stored.etag:
            raise Aborted(STALE_ETAG, reason="STALE_ETAG")
        body = self.message_type()
        body.CopyFrom(value)
        if self._has_etag:
            body.ClearField("etag")  # type: ignore[arg-type]
        version, now = stored.version + 1, datetime.now(UTC)
        values = {"version": version, "body": body.SerializeToString(deterministic=True), "updated_at": now}
        values["updated_by"] = actor
        if stored.version == 0:
            # A concurrent first write loses on the primary key; the unit of work retries it.
            await uow.session.execute(
                insert(current).values(tenant_id=uow.tenant, document=self.document, **values)
            )
        else:
            result = await uow.session.execute(
                update(current)
                .where(
                    current.c.tenant_id == uow.tenant,
                    current.c.document == self.document,
                    current.c.version == stored.version,
                )
                .values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise Aborted(STALE_ETAG, reason="STALE_ETAG")
        await uow.session.execute(
            insert(self.tables.history).values(tenant_id=uow.tenant, document=self.document, **values)
        )
        return self._with_etag(body, version)


__all__ = [
    "DEFAULT_TABLES",
    "SETTINGS_HISTORY_TABLE",
    "SETTINGS_TABLE",
    "SettingsTables",
    "Stored",
    "TenantSettings",
    "settings_tables",
]
