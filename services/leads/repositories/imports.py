"""Queries of a batched import: what one intake asks of the database, asked once for a whole batch.

Each method answers for many keys in one or a few indexed statements (IN lists in chunks, so a
batch never nears a driver's bound-parameter limit); the import use case then decides in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select, union_all

from kit.resources import UnitOfWork
from services.leads.domain import status
from services.leads.store import IntakeRow, LeadRow

CHUNK = 500  # keys per statement
BLOCKS_PER_STATEMENT = 50  # fuzzy-match blocks per statement (one limited SELECT each)


def _chunks(keys: Iterable[str], size: int = CHUNK) -> list[list[str]]:
    unique = sorted({k for k in keys if k})
    return [unique[i : i + size] for i in range(0, len(unique), size)]


class ImportRepository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session

    async def intakes(self, intake_ids: Sequence[str]) -> dict[str, IntakeRow]:
        """The intakes already recorded under these ids (the replays), by id."""
        out: dict[str, IntakeRow] = {}
        for chunk in _chunks(intake_ids):
            stmt = select(IntakeRow).where(IntakeRow.intake_id.in_(chunk))
            out.update({r.intake_id: r for r in await self.session.scalars(stmt)})
        return out

    async def leads(self, lead_ids: Iterable[str]) -> dict[str, LeadRow]:
        """The leads with these ids, by id (absent ids are absent)."""
        out: dict[str, LeadRow] = {}
        for chunk in _chunks(lead_ids):
            stmt = select(LeadRow).where(LeadRow.lead_id.in_(chunk))
            out.update({r.lead_id: r for r in await self.session.scalars(stmt)})
        return out

    async def by_contacts(self, phones: Iterable[str], emails: Iterable[str]) -> list[LeadRow]:
        """Unmerged leads with any of these phones or e-mails (LeadRepository.by_contact for a batch):
        one indexed lookup per key list, by id, so neither index is traded for a scan."""
        tenant = self.uow.tenant
        keyed = [
            *(select(LeadRow.lead_id).where(LeadRow.tenant_id == tenant, LeadRow.phone.in_(c)) for c in _chunks(phones)),
            *(select(LeadRow.lead_id).where(LeadRow.tenant_id == tenant, LeadRow.email.in_(c)) for c in _chunks(emails)),
        ]  # fmt: skip
        out: dict[str, LeadRow] = {}
        for ids in keyed:
            stmt = select(LeadRow).where(LeadRow.lead_id.in_(ids), LeadRow.status != status.MERGED)
            out.update({r.lead_id: r for r in await self.session.scalars(stmt)})
        return list(out.values())

    async def names_in_blocks(
        self, block_keys: Iterable[str], limit: int = 1000
    ) -> dict[str, list[tuple[str, str, str]]]:
        """LeadRepository.names_in_block for many blocks: (lead_id, normalised company, display name)
        of unmerged leads per block, at most `limit` each; one limited indexed SELECT per block,
        joined by UNION ALL (a window over the blocks would read every name of a large block)."""
        out: dict[str, list[tuple[str, str, str]]] = {}
        tenant = self.uow.tenant
        for chunk in _chunks(block_keys, BLOCKS_PER_STATEMENT):
            for key in chunk:
                out[key] = []
            parts: list[Any] = []
            for key in chunk:
                block = (
                    select(LeadRow.company_key, LeadRow.lead_id, LeadRow.company_norm, LeadRow.display_name)
                    .where(
                        LeadRow.tenant_id == tenant,
                        LeadRow.company_key == key,
                        LeadRow.status != status.MERGED,
                    )
                    .limit(limit)
                    .subquery()
                )
                parts.append(select(block))
            stmt: Any = parts[0] if len(parts) == 1 else union_all(*parts)
            for found in (await self.session.execute(stmt)).all():
                out[str(found[0])].append((str(found[1]), str(found[2]), str(found[3])))
        return out
