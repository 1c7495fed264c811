"""What `make run` seeds into notify: the demo organisation as subscribers (through the public API)."""

from __future__ import annotations

from kit.seeding import SeedClients
from salesops.common.v1 import types_pb2
from salesops.notify.v1 import notify_service_pb2, notify_service_pb2_grpc, subscriber_pb2


async def demo_seed(clients: SeedClients) -> None:
    subscribers = [
        subscriber_pb2.Subscriber(
            user_id=u.user_id,
            display_name=u.display_name,
            org_unit_path=u.org,
            roles=[types_pb2.Role.Value("ROLE_" + r.upper()) for r in u.roles],  # type: ignore[misc]
            active=True,
            email=f"{u.user_id}@demo.salesops.test",
        )
        for u in clients.users
    ]
    async with clients.channel("notify") as channel:
        await notify_service_pb2_grpc.NotifyServiceStub(channel).BatchUpsertSubscribers(
            notify_service_pb2.BatchUpsertSubscribersRequest(subscribers=subscribers),
            metadata=clients.metadata("admin"),
            timeout=10,
        )
