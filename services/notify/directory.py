"""Subscriber directory reads: who a recipient is, and the snapshot role resolution works on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from salesops.notify.v1 import notification_pb2
from salesops.notify.v1 import notification_pb2 as N
from services.notify import convert, read_memo
from services.notify.domain import recipients
from services.notify.domain.recipients import Member
from services.notify.repositories import on_session
from services.notify.repositories.subscribers import SubscriberRepository
from services.notify.store import SubscriberRow


def member(row: SubscriberRow) -> Member:
    return Member(row.user_id, row.org_unit_path, frozenset(r for r in row.roles.split(",") if r), row.active)


async def members(session: AsyncSession) -> list[Member]:
    rows = await SubscriberRepository(on_session(session)).members()
    return [Member(u, o, frozenset(r for r in roles.split(",") if r), a) for u, o, roles, a in rows]


async def subscribers(session: AsyncSession, user_ids: Iterable[str]) -> dict[str, Any]:
    """user id -> contact columns (user_id, display_name, active, phone, email, chat ids) of known users.

    Read once per user in a consumer's transaction (read_memo): a send asked twice (recipients, fan-out)."""
    return await read_memo.per_key(
        session, "subscribers", user_ids, SubscriberRepository(on_session(session)).contacts
    )


def address_for(sub: Any, channel: int) -> str:
    if sub is None:
        return ""
    by_channel: dict[int, str] = {
        N.CHANNEL_SMS: sub.phone,
        N.CHANNEL_EMAIL: sub.email,
        N.CHANNEL_WECOM_BOT: sub.wecom_user_id or sub.phone,
        N.CHANNEL_DINGTALK_BOT: sub.dingtalk_user_id or sub.phone,
        N.CHANNEL_WEBHOOK: sub.user_id,
    }
    return by_channel.get(channel, "")


async def resolve(session: AsyncSession, targets: Sequence[notification_pb2.Recipient]) -> list[str]:
    """User ids of the targets, in order, each once. Inactive subscribers are skipped."""
    snapshot: list[recipients.Member] | None = None
    found: dict[str, None] = {}
    for target in targets:
        kind = target.WhichOneof("target")
        if kind == "user_id":
            found[target.user_id] = None
            continue
        if snapshot is None:
            snapshot = await members(session)
        if kind == "org_role":
            role = convert.role_name(target.org_role.role)
            users = recipients.holders(
                snapshot, role, target.org_role.org_unit_path, descendants=target.org_role.include_descendants
            )
        elif kind == "manager":
            users = recipients.managers(
                snapshot, target.manager.user_id, convert.role_name(target.manager.role)
            )
        else:
            continue  # group destinations (channel_config_id) have no inbox
        found.update(dict.fromkeys(users))
    if not found:
        return []
    subs = await subscribers(session, found)
    return [u for u in found if u not in subs or subs[u].active]
