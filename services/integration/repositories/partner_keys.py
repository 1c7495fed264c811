"""Every query on partner keys, their secret hashes and their audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from kit.db import Database
from kit.resources import Page, PageRequest, Repository, Sort, query_key
from services.integration.domain.partner_keys import KeyState
from services.integration.store_partner_keys import PartnerKeyChangeRow, PartnerKeyRow, PartnerKeySecretRow


class PartnerKeys(Repository[PartnerKeyRow]):
    model, resource, key = PartnerKeyRow, "integration.PartnerKey", ("key_id",)

    async def page(self, state: int, now: datetime, page: PageRequest) -> Page[PartnerKeyRow]:
        where = []
        if state == KeyState.ACTIVE:
            where += [PartnerKeyRow.revoked_at.is_(None), PartnerKeyRow.expire_at > now]
        elif state == KeyState.REVOKED:
            where.append(PartnerKeyRow.revoked_at.is_not(None))
        elif state == KeyState.EXPIRED:
            where += [PartnerKeyRow.revoked_at.is_(None), PartnerKeyRow.expire_at <= now]
        # Documented order: display name, then id.
        order = [Sort(PartnerKeyRow.display_name), Sort(PartnerKeyRow.key_id)]
        return await self.list(where, order, page, query=query_key("partner_keys", state))

    async def touch(self, key_id: str, at: datetime) -> None:
        """Last use, without a version bump: it is not an admin's change and must not stale an etag."""
        await self.session.execute(
            update(PartnerKeyRow).where(PartnerKeyRow.key_id == key_id).values(last_used_at=at)
        )


class PartnerKeySecrets(Repository[PartnerKeySecretRow]):
    model, resource, key = PartnerKeySecretRow, "integration.PartnerKeySecret", ("secret_hash",)

    async def of_key(self, key_id: str) -> list[PartnerKeySecretRow]:
        return list(
            await self.session.scalars(
                select(PartnerKeySecretRow).where(PartnerKeySecretRow.key_id == key_id)
            )
        )

    async def drop(self, row: PartnerKeySecretRow) -> None:
        await self.session.delete(row)


class PartnerKeyChanges(Repository[PartnerKeyChangeRow]):
    model, resource, key = PartnerKeyChangeRow, "integration.PartnerKeyChange", ("change_id",)

    async def of_key(self, key_id: str) -> list[PartnerKeyChangeRow]:
        stmt = (
            select(PartnerKeyChangeRow)
            .where(PartnerKeyChangeRow.key_id == key_id)
            .order_by(PartnerKeyChangeRow.changed_at, PartnerKeyChangeRow.change_id)
        )
        return list(await self.session.scalars(stmt))


@dataclass(frozen=True)
class SecretOwner:
    tenant: str
    key_id: str
    valid_until: datetime | None


async def owner_of_secret(db: Database, secret_hash: str) -> SecretOwner | None:
    """The tenant and key a secret belongs to: the exchange's one cross-tenant read, by the unique hash."""
    async with db.system_session(read_only=True) as session:
        found = (
            await session.execute(
                select(
                    PartnerKeySecretRow.tenant_id, PartnerKeySecretRow.key_id, PartnerKeySecretRow.valid_until
                ).where(PartnerKeySecretRow.secret_hash == secret_hash)
            )
        ).first()
    return None if found is None else SecretOwner(found[0], found[1], found[2])
