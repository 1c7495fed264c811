"""Partner keys: create, read, list, update, revoke, rotate (admins) and the public exchange.

The exchange is a public method (no bearer token, see `api.registrations`): the secret is
the credential. Its order of checks keeps guessing cheap for us and useless for the
guesser: the address's failure budget, the secret's shape and checksum (offline), the
hash lookup, the key's state, address range and scopes (database), then the key's rate
and revocation marker (Redis, as every service checks on each partner call), then a
short-lived token is minted. Nothing logs the secret.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from redis.exceptions import RedisError

from kit.auth import Principal, TokenMinter
from kit.config import deployment_environment
from kit.errors import ResourceExhausted, SalesopsError, Unauthenticated, Unavailable
from kit.grpc import context as call
from kit.grpc.partners import PartnerGuard
from kit.resources import PageRequest
from salesops.common.v1.types_pb2 import Audit
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import partner_pb2 as p
from services.integration import integration_settings, partner_keys
from services.integration.access import require_admin
from services.integration.api.base import ApiBase, Ctx, now
from services.integration.domain import partner_keys as rules
from services.integration.presenters import enum, stamp, ts
from services.integration.repositories.partner_keys import PartnerKeys, owner_of_secret
from services.integration.store_partner_keys import PartnerKeyRow

log = logging.getLogger("salesops.integration.partner_keys")


class PartnerKeyPresenter:
    """Never the secret (it is not stored); its public prefix, state and audit."""

    def present(self, viewer: Principal, row: PartnerKeyRow, at: datetime | None = None) -> p.PartnerKey:
        msg = partner_keys.as_message(row)
        msg.key_prefix = row.key_prefix
        state = rules.state_of(rules.KeyFacts(row.revoked_at, row.expire_at), at or now())
        msg.state = enum(state.value)
        for field, value in (
            ("previous_secret_expire_time", ts(row.previous_secret_expire_at)),
            ("last_used_time", ts(row.last_used_at)),
            ("revoke_time", ts(row.revoked_at)),
        ):
            if value is not None:
                getattr(msg, field).CopyFrom(value)
        msg.revoked_by, msg.revoke_reason = row.revoked_by, row.revoke_reason
        msg.etag = str(row.version)
        msg.audit.CopyFrom(
            Audit(
                create_time=stamp(row.created_at),
                update_time=stamp(row.updated_at),
                created_by=row.created_by,
                updated_by=row.updated_by,
            )
        )
        return msg


PRESENT = PartnerKeyPresenter()


def peer_address(context: Ctx) -> str:
    """``ipv4:203.0.113.9:51234`` / ``ipv6:[::1]:51234`` -> the address alone."""
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rsplit("]", 1)[0].lstrip("[")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    return peer[:64]


class PartnerKeysApi(ApiBase):
    _minter: TokenMinter | None = None

    @property
    def minter(self) -> TokenMinter:
        if self._minter is None:
            self._minter = TokenMinter(self.rt.auth_config)
        return self._minter

    @property
    def partners(self) -> PartnerGuard:
        guard: PartnerGuard | None = getattr(self.rt, "partners", None)
        if guard is None:
            raise Unavailable("partner keys need Redis", reason="PARTNER_CHECK_UNAVAILABLE")
        return guard

    @staticmethod
    def _live() -> bool:
        return deployment_environment() == "production"

    async def CreatePartnerKey(
        self, request: pb.CreatePartnerKeyRequest, context: Ctx
    ) -> pb.CreatePartnerKeyResponse:
        who = call.principal()
        require_admin(who)
        at, live = now(), self._live()
        row, secret = await self.write(
            who, lambda uow: partner_keys.create_key(uow, who, request.partner_key, at, live=live)
        )
        return pb.CreatePartnerKeyResponse(partner_key=PRESENT.present(who, row, at), secret=secret)

    async def GetPartnerKey(self, request: pb.GetPartnerKeyRequest, context: Ctx) -> pb.GetPartnerKeyResponse:
        who = call.principal()
        require_admin(who)
        async with self.read(who) as uow:
            row = await PartnerKeys(uow).get(request.key_id)
        return pb.GetPartnerKeyResponse(partner_key=PRESENT.present(who, row))

    async def ListPartnerKeys(
        self, request: pb.ListPartnerKeysRequest, context: Ctx
    ) -> pb.ListPartnerKeysResponse:
        who = call.principal()
        require_admin(who)
        page = PageRequest.parse(request.page_size, request.page_token)
        at = now()
        async with self.read(who) as uow:
            found = await PartnerKeys(uow).page(request.state, at, page)
        return pb.ListPartnerKeysResponse(
            partner_keys=[PRESENT.present(who, r, at) for r in found.items],
            next_page_token=found.next_page_token,
        )

    async def UpdatePartnerKey(
        self, request: pb.UpdatePartnerKeyRequest, context: Ctx
    ) -> pb.UpdatePartnerKeyResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        row = await self.write(
            who, lambda uow: partner_keys.update_key(uow, who, request.partner_key, request.update_mask, at)
        )
        return pb.UpdatePartnerKeyResponse(partner_key=PRESENT.present(who, row, at))

    async def RevokePartnerKey(
        self, request: pb.RevokePartnerKeyRequest, context: Ctx
    ) -> pb.RevokePartnerKeyResponse:
        """Revoked in the database, then marked in Redis so every service refuses its tokens at once.

        If Redis fails after the commit the answer is UNAVAILABLE: the key can mint nothing
        more, and a retry (revoking twice is harmless) completes the marking.
        """
        who = call.principal()
        require_admin(who)
        at = now()
        row = await self.write(
            who, lambda uow: partner_keys.revoke_key(uow, who, request.key_id, request.reason, at)
        )
        try:
            await self.partners.revoke(who.tenant, row.key_id)
        except RedisError:
            raise Unavailable(
                "the key is revoked but its live tokens could not be cut off yet; retry the revoke",
                reason="PARTNER_REVOCATION_PENDING",
            ) from None
        return pb.RevokePartnerKeyResponse(partner_key=PRESENT.present(who, row, at))

    async def RotatePartnerKey(
        self, request: pb.RotatePartnerKeyRequest, context: Ctx
    ) -> pb.RotatePartnerKeyResponse:
        who = call.principal()
        require_admin(who)
        at, live = now(), self._live()
        grace = (
            request.previous_secret_grace.ToTimedelta() if request.HasField("previous_secret_grace") else None
        )
        row, secret = await self.write(
            who, lambda uow: partner_keys.rotate_key(uow, who, request.key_id, grace, at, live=live)
        )
        return pb.RotatePartnerKeyResponse(partner_key=PRESENT.present(who, row, at), secret=secret)

    async def ExchangePartnerKey(
        self, request: pb.ExchangePartnerKeyRequest, context: Ctx
    ) -> pb.ExchangePartnerKeyResponse:
        address = peer_address(context)
        guard = self.partners
        if await guard.address_blocked(address):
            raise ResourceExhausted(
                "too many failed exchanges from this address",
                retry_after_seconds=60,
                reason="EXCHANGE_THROTTLED",
            )
        try:
            return await self._exchange(request, address, guard)
        except SalesopsError as exc:
            if exc.code_name in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
                await guard.note_failure(address)
            raise

    async def _exchange(
        self, request: pb.ExchangePartnerKeyRequest, address: str, guard: PartnerGuard
    ) -> pb.ExchangePartnerKeyResponse:
        secret = request.secret.strip()
        if not rules.looks_like_secret(secret):
            raise Unauthenticated("not a partner secret", reason="PARTNER_SECRET_INVALID")
        owner = await owner_of_secret(self.tx.db, rules.secret_hash(secret))
        if owner is None:
            raise Unauthenticated("the partner secret is not valid", reason="PARTNER_SECRET_INVALID")
        at = now()
        async with self.tx.read(owner.tenant) as uow:
            grant = await partner_keys.check_exchange(
                uow, owner.key_id, owner.valid_until, address, list(request.scopes), at
            )
            ttl = integration_settings.duration(await integration_settings.get(uow), "partner_token_ttl")
        await guard.admit_key(grant.tenant, grant.key_id, grant.rate_limit_per_minute)  # rate, revocation
        if grant.touch:
            await self.tx.run(grant.tenant, lambda uow: partner_keys.touch(uow, grant.key_id, at))
        lifetime = rules.token_lifetime(ttl, at, grant.key_expires)
        if lifetime <= timedelta(0):
            raise Unauthenticated("the partner key is expired", reason="PARTNER_KEY_EXPIRED")
        token = self.minter.mint(
            f"partner:{grant.key_id}",
            grant.tenant,
            ["partner"],
            org=grant.org_path,
            ttl=lifetime,
            scopes=grant.scopes,
            extra={"pkid": grant.key_id, "rpm": grant.rate_limit_per_minute},
        )
        expires = Timestamp()
        expires.FromDatetime(at + lifetime)
        log.info("partner key exchanged", extra={"tenant": grant.tenant, "key_id": grant.key_id})
        return pb.ExchangePartnerKeyResponse(
            access_token=token, token_type="Bearer", expire_time=expires, scopes=grant.scopes
        )
