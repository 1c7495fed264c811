"""What every notify API mixin shares: the runtime's parts and the role checks."""

from __future__ import annotations

from typing import Any

import grpc

from kit.auth import Principal
from kit.errors import PermissionDenied
from kit.net import OutboundPolicy
from kit.resources import Transactions
from kit.runtime import Runtime
from salesops.notify.v1 import notify_service_pb2
from services.notify import live, sending, store
from services.notify.channels import registry
from services.notify.channels.base import Adapter

M = notify_service_pb2
Ctx = grpc.aio.ServicerContext[Any, Any]


def sender_only(p: Principal) -> None:
    if not (p.is_admin or p.is_service):
        raise PermissionDenied("sending takes an admin or service identity")


def admin_only(p: Principal, *, reads_for_services: bool = False) -> None:
    if p.is_admin or (reads_for_services and p.is_service):
        return
    raise PermissionDenied("configuration is admin only")


def user_of(p: Principal, user_id: str) -> str:
    """`me` is the caller; someone else's preferences are for admins and services only."""
    if user_id in ("", "me"):
        return p.user_id
    if user_id != p.user_id and not (p.is_admin or p.is_service):
        raise PermissionDenied("another user's preferences")
    return user_id


class ApiBase:
    """The servicer's state; each resource's mixin adds its RPCs."""

    rt: Runtime
    adapters: dict[int, Adapter]
    outbound: OutboundPolicy
    sender: sending.Sender
    hub: live.InboxHub
    tx: Transactions

    def __init__(self, rt: Runtime, hub: live.InboxHub | None = None) -> None:
        self.rt = rt
        # TestChannelConfig sends through the same adapters as the delivery activities; saving a
        # configuration checks its destinations under the same outbound policy (kit.net).
        self.outbound = OutboundPolicy.from_env()
        self.adapters = registry.adapters(policy=self.outbound)
        self.sender = sending.Sender(rt.db, rt.redis)
        self.hub = hub or live.InboxHub(rt.redis)
        # One unit of work per RPC: the only place RPC work commits.
        self.tx = Transactions(rt.db, source="notify", outbox=store.outbox)
