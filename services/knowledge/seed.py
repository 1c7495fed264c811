"""Demo data of the knowledge service, written through its own gRPC API (`make run`), idempotently.

The 25 cards of seed_cards.py: created by their author, submitted, published by
the admin (version 1), and left where the demo wants them (one in review, one
retired, one draft). Running it again finds the cards and moves nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from kit.seeding import SeedClients
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1 import knowledge_service_pb2_grpc
from salesops.knowledge.v1.sop_card_pb2 import CardStatus
from services.knowledge.seed_cards import CARDS, DemoCard
from services.knowledge.seed_contributions import seed_contributions
from services.knowledge.seed_uses import seed_uses

Metadata = Callable[[str], tuple[tuple[str, str], ...]]
TIMEOUT = 30


async def seed_card(
    stub: knowledge_service_pb2_grpc.KnowledgeServiceAsyncStub, md: Metadata, demo: DemoCard
) -> None:
    try:
        card = (await stub.GetSopCard(pb.GetSopCardRequest(card_id=demo.card_id), metadata=md("admin"))).card
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        create = pb.CreateSopCardRequest(card=demo.proto())
        card = (await stub.CreateSopCard(create, metadata=md(demo.author), timeout=TIMEOUT)).card
    if demo.end == "draft" or card.status != CardStatus.CARD_STATUS_DRAFT:
        return  # already where an earlier run left it
    await stub.SubmitSopCardForReview(
        pb.SubmitSopCardForReviewRequest(card_id=demo.card_id, note="ready for review"),
        metadata=md(demo.author),
        timeout=TIMEOUT,
    )
    if demo.end == "review":
        return
    await stub.PublishSopCard(
        pb.PublishSopCardRequest(card_id=demo.card_id, change_note="first version"),
        metadata=md("admin"),
        timeout=TIMEOUT,
    )
    if demo.end == "retired":
        await stub.RetireSopCard(
            pb.RetireSopCardRequest(card_id=demo.card_id, reason="replaced by the team-a trade show card"),
            metadata=md("admin"),
            timeout=TIMEOUT,
        )


async def seed(clients: SeedClients) -> None:
    async with clients.channel("knowledge") as channel:
        stub: knowledge_service_pb2_grpc.KnowledgeServiceAsyncStub = (
            knowledge_service_pb2_grpc.KnowledgeServiceStub(channel)  # type: ignore[assignment]
        )
        for demo in CARDS:
            await seed_card(stub, clients.metadata, demo)
        # Uses and feedback in every duty state (rated, late, pending, overdue).
        await seed_uses(stub, clients.metadata)
        # Field cases: one accepted into a LIGHT card (points, leaderboard), one queued, one rejected.
        await seed_contributions(stub, clients.metadata)


async def demo_seed(clients: SeedClients) -> None:
    """The ServiceSpec hook `make run` calls."""
    await seed(clients)
