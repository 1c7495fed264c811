"""The one load / check etag / merge mask / save shape of notify's proto-backed resources.

Templates, channel configurations, escalation policies and preferences are kept as a
serialized proto (`payload`) with an integer version (the etag) and a few columns the
lists filter on. `Documents` does their create, read, update and delete once, with
kit's contract-driven sanitiser and mask merge and the repository's compare-and-set;
each resource supplies only its columns and its own checks (`prepare`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from kit.resources import Repository, UnitOfWork, merge_update, sanitize_create

M = TypeVar("M", bound=Message)


class PayloadRow(Protocol):
    payload: bytes
    updated_at: datetime


RowT = TypeVar("RowT", bound=PayloadRow)

# (stored, proposed) -> the value to store: validation, sealing, kept secrets...
Prepare = Callable[[M | None, M], M]


def _same(_: Any, proposed: M) -> M:
    return proposed


@dataclass(frozen=True)
class Documents(Generic[M, RowT]):
    repository: type[Repository[RowT]]
    message: type[M]
    id_field: str
    # Columns kept beside the payload, from the message (filters and sorts of the lists).
    columns: Callable[[M], Mapping[str, Any]] = field(default=lambda _m: {})
    prepare: Prepare[M] = _same
    # A message field that mirrors the version (Template.revision), if any.
    version_field: str = ""

    def read(self, row: RowT) -> M:
        """The stored message with its etag (and version field) from the row."""
        msg = self.message.FromString(row.payload)
        version = int(getattr(row, self.repository.version))
        msg.etag = str(version)  # type: ignore[attr-defined]
        if self.version_field:
            setattr(msg, self.version_field, version)
        return msg

    def _write(self, row: RowT, value: M) -> None:
        body = self.message()
        body.CopyFrom(value)
        body.ClearField("etag")  # type: ignore[arg-type]
        for name, column in self.columns(body).items():
            setattr(row, name, column)
        row.payload = body.SerializeToString()
        row.updated_at = datetime.now(UTC)

    async def get(self, uow: UnitOfWork, item_id: str) -> M:
        return self.read(await self.repository(uow).get(item_id))

    async def create(
        self,
        uow: UnitOfWork,
        incoming: M,
        item_id: str,
        *,
        check: Callable[[M], Awaitable[None]] | None = None,
    ) -> M:
        """Output-only input dropped (the contract's annotations), checked, inserted at version 1.

        `check` sees the value as given, before `prepare` (which may seal parts of it), and before
        anything is written (e.g. destinations and header values under the outbound policy).
        """
        value = sanitize_create(incoming)
        setattr(value, self.id_field, item_id)
        if check is not None:
            await check(value)
        value = self.prepare(None, value)
        setattr(value, self.id_field, item_id)
        row = self.repository.model(**{self.repository.key_names()[0]: item_id, self.repository.version: 1})
        self._write(row, value)
        await self.repository(uow).add(row)
        return self.read(row)

    async def update(
        self,
        uow: UnitOfWork,
        incoming: M,
        mask: FieldMask,
        *,
        missing: Callable[[], M] | None = None,
        check: Callable[[M], Awaitable[None]] | None = None,
    ) -> M:
        """AIP-134 merge of `incoming` into the stored value, checked, compare-and-set on the etag.

        `missing` makes the update an upsert: the value to merge into when there is no row.
        """
        item_id = getattr(incoming, self.id_field)
        repo = self.repository(uow)
        row = await repo.find(item_id) if missing is not None else await repo.get(item_id)
        if row is None:
            assert missing is not None
            merged = merge_update(missing(), sanitize_create(incoming), mask)
            return await self.create(uow, merged, item_id, check=check)
        current = self.read(row)
        proposed = merge_update(current, sanitize_create(incoming), mask)
        setattr(proposed, self.id_field, item_id)
        if check is not None:
            await check(proposed)
        merged = self.prepare(current, proposed)
        repo.check_etag(row, incoming.etag)  # type: ignore[attr-defined]
        self._write(row, merged)
        await repo.update_if_etag(row, incoming.etag)  # type: ignore[attr-defined]
        return self.read(row)

    async def delete(self, uow: UnitOfWork, item_id: str, etag: str = "") -> None:
        repo = self.repository(uow)
        await repo.delete_if_etag(await repo.get(item_id), etag)
