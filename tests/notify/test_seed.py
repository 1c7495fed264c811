"""The demo seed fills notify's directory through its API, idempotently."""

from __future__ import annotations

from deploy.local.demo import DEMO_USERS, TENANT
from kit.seeding import SeedClients
from salesops.notify.v1 import notify_service_pb2 as M
from services.notify import seed
from services.notify.app import SPEC
from tests.notify.conftest import ADMIN, NotifyStack, auth


async def test_demo_seed_upserts_the_demo_organisation(notify: NotifyStack) -> None:
    assert SPEC.demo_seed is seed.demo_seed  # the launcher finds it in the spec
    clients = SeedClients(TENANT, {"notify": notify.server.address}, {"admin": ADMIN}, DEMO_USERS)
    for _ in range(2):  # `make run` twice: the same directory
        await seed.demo_seed(clients)
    listed = await notify.stub.ListSubscribers(M.ListSubscribersRequest(page_size=500), metadata=auth(ADMIN))
    ids = {s.user_id for s in listed.subscribers}
    assert {u.user_id for u in DEMO_USERS} <= ids
    assert listed.total_size == len(ids)
