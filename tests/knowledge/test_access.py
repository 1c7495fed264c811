"""Access to cards: visibility levels, roles and tenants, decided in access.py and its SQL twin."""

from __future__ import annotations

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1.sop_card_pb2 import CardStatus, CardVisibility
from tests.knowledge.conftest import Knowledge
from tests.knowledge.helpers import card, publish

V = CardVisibility
NOT_FOUND = grpc.StatusCode.NOT_FOUND


async def visible_ids(k: Knowledge, user: str, tenant: str = "demo") -> list[str]:
    listed = await k.call("ListSopCards", pb.ListSopCardsRequest(order_by="title"), user=user, tenant=tenant)
    return sorted(c.card_id for c in listed.cards)


async def searched_ids(k: Knowledge, user: str) -> list[str]:
    found = await k.call("SearchSopCards", pb.SearchSopCardsRequest(query="价格"), user=user)
    return sorted(r.card.card_id for r in found.results)


async def test_visibility_levels_by_role_and_org(knowledge: Knowledge) -> None:
    k = knowledge
    await publish(k, card("ALL"))
    await publish(k, card("MGR", visibility=V.CARD_VISIBILITY_MANAGERS))
    await publish(k, card("TEAMA", visibility=V.CARD_VISIBILITY_ORG_UNITS, visible_org_paths=["east/team-a"]))
    await k.call("CreateSopCard", pb.CreateSopCardRequest(card=card("DRAFT")))
    expected = {
        "rep-a1": ["ALL", "TEAMA"],  # in team-a
        "rep-b1": ["ALL"],  # neither the managers' card nor team-a's
        "sup-a": ["ALL", "DRAFT", "MGR", "TEAMA"],
        "sup-b": ["ALL", "DRAFT", "MGR"],  # manages cards, but team-a's published card is not its audience
        "director-east": ["ALL", "DRAFT", "MGR", "TEAMA"],  # above team-a
        "admin": ["ALL", "DRAFT", "MGR", "TEAMA"],
    }
    for user, ids in expected.items():
        assert await visible_ids(k, user) == ids, user
        assert await searched_ids(k, user) == ids, user  # search applies the same rule
        for card_id in {"ALL", "MGR", "TEAMA", "DRAFT"} - set(ids):
            await k.fails(NOT_FOUND, "GetSopCard", pb.GetSopCardRequest(card_id=card_id), user=user)
            await k.fails(
                NOT_FOUND, "ListSopCardVersions", pb.ListSopCardVersionsRequest(card_id=card_id), user=user
            )
    # Reps see the card as published: no review notes, no audience paths.
    team = (await k.call("GetSopCard", pb.GetSopCardRequest(card_id="TEAMA"), user="rep-a1")).card
    assert not team.visible_org_paths and not team.status_changed_by_user_id
    managed = (await k.call("GetSopCard", pb.GetSopCardRequest(card_id="TEAMA"), user="sup-a")).card
    assert list(managed.visible_org_paths) == ["east/team-a"]


async def test_reps_read_ops_manage(knowledge: Knowledge) -> None:
    k = knowledge
    await publish(k, card("C1"))
    denied = grpc.StatusCode.PERMISSION_DENIED
    await k.fails(denied, "CreateSopCard", pb.CreateSopCardRequest(card=card("R1")), user="rep-a1")
    update = pb.UpdateSopCardRequest(card=card("C1", tags=["x"]), update_mask=FieldMask(paths=["tags"]))
    await k.fails(denied, "UpdateSopCard", update, user="rep-a1")
    await k.fails(denied, "RetireSopCard", pb.RetireSopCardRequest(card_id="C1", reason="no"), user="rep-a1")
    await k.fails(denied, "RetireSopCard", pb.RetireSopCardRequest(card_id="C1", reason="no"), user="sup-a")
    await k.fails(
        denied, "ListSopCardStatusChanges", pb.ListSopCardStatusChangesRequest(card_id="C1"), user="rep-a1"
    )
    # Only admins credit a card to someone else.
    credited = card("S1", author_user_id="rep-a2")
    await k.fails(denied, "CreateSopCard", pb.CreateSopCardRequest(card=credited), user="sup-a")
    made = (await k.call("CreateSopCard", pb.CreateSopCardRequest(card=credited))).card
    assert made.author_user_id == made.owner_user_id == "rep-a2"
    # The credited rep sees their own draft, asking for drafts (reps list published cards by default).
    assert await visible_ids(k, "rep-a2") == ["C1"]
    drafts = pb.ListSopCardsRequest(filter=pb.SopCardFilter(statuses=[CardStatus.CARD_STATUS_DRAFT]))
    assert [c.card_id for c in (await k.call("ListSopCards", drafts, user="rep-a2")).cards] == ["S1"]
    assert (
        await k.call("GetSopCard", pb.GetSopCardRequest(card_id="S1"), user="rep-a2")
    ).card.card_id == "S1"
    # Other reps asking for drafts get none.
    assert [c.card_id for c in (await k.call("ListSopCards", drafts, user="rep-a3")).cards] == []
    await k.fails(NOT_FOUND, "GetSopCard", pb.GetSopCardRequest(card_id="S1"), user="rep-a3")


async def test_another_tenant_sees_nothing(knowledge: Knowledge) -> None:
    k = knowledge
    await publish(k, card("C1"))
    for method, req in [
        ("GetSopCard", pb.GetSopCardRequest(card_id="C1")),
        ("GetSopCardVersion", pb.GetSopCardVersionRequest(card_id="C1", version=1)),
        ("ListSopCardVersions", pb.ListSopCardVersionsRequest(card_id="C1")),
        ("RetireSopCard", pb.RetireSopCardRequest(card_id="C1", reason="x")),
        ("DeleteSopCard", pb.DeleteSopCardRequest(card_id="C1")),
    ]:
        await k.fails(NOT_FOUND, method, req, user="admin", tenant="acme")
    assert await visible_ids(k, "admin", tenant="acme") == []
    found = await k.call(
        "SearchSopCards", pb.SearchSopCardsRequest(query="价格"), user="admin", tenant="acme"
    )
    assert not found.results
    # The same card id is free in the other tenant, and stays separate.
    await publish(k, card("C1", "另一个租户的卡片"), tenant="acme")
    mine = (await k.call("GetSopCard", pb.GetSopCardRequest(card_id="C1"))).card
    assert mine.title == "价格谈崩时的三步挽回"
