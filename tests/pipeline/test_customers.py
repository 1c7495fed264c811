"""Customers over real gRPC: dedupe by normalised name and contact keys, scope, AIP-134 updates, paging."""

from __future__ import annotations

import grpc

from salesops.pipeline.v1 import customer_pb2, deal_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import create, mask, new_deal, refused


def acme(**kw: object) -> customer_pb2.Customer:
    kw.setdefault("display_name", "ACME Trading Co., Ltd.")
    return customer_pb2.Customer(industry="mfg", city="Shanghai", **kw)  # type: ignore[arg-type]


async def make(
    p: Pipeline, c: customer_pb2.Customer, user: str = "rep-a1", tenant: str = "demo"
) -> pb.CreateCustomerResponse:
    resp: pb.CreateCustomerResponse = await p.call(
        "CreateCustomer", pb.CreateCustomerRequest(customer=c), user=user, tenant=tenant
    )
    return resp


async def test_create_dedupes_by_normalised_name_and_contact_keys(pipeline: Pipeline) -> None:
    first = await make(
        pipeline,
        acme(
            contacts=[
                customer_pb2.CustomerContact(name="Zhang Wei", phone="138 1234 5678", email=" Zhang@ACME.cn ")
            ]
        ),
    )
    assert not first.matched_existing
    c = first.customer
    assert c.normalized_name == "acmetrading" and c.owner_user_id == "rep-a1" and c.org_path == "east/team-a"
    assert c.contacts[0].phone == "+8613812345678" and c.contacts[0].email == "zhang@acme.cn"
    assert c.contacts[0].contact_id and c.etag == "1"
    # Same company, other spelling: the existing account.
    again = await make(pipeline, acme(display_name="acme trading limited"))
    assert again.matched_existing and again.customer.customer_id == c.customer_id
    # Another name, but a known contact phone (other notation): the same customer.
    by_phone = await make(
        pipeline,
        acme(
            display_name="ACME Shanghai",
            contacts=[customer_pb2.CustomerContact(name="Z", phone="+86-138-1234-5678")],
        ),
    )
    assert by_phone.matched_existing and by_phone.customer.customer_id == c.customer_id
    by_mail = await make(
        pipeline,
        acme(
            display_name="Other Name",
            contacts=[customer_pb2.CustomerContact(name="Z", email="ZHANG@acme.cn")],
        ),
    )
    assert by_mail.customer.customer_id == c.customer_id
    # A rep of another team learns that it exists, not what it holds.
    await refused(make(pipeline, acme(), user="rep-b1"), grpc.StatusCode.ALREADY_EXISTS)
    # Idempotent on the client's id.
    mine = await make(pipeline, customer_pb2.Customer(customer_id="C-1", display_name="Beta GmbH"))
    replay = await make(pipeline, customer_pb2.Customer(customer_id="C-1", display_name="Beta GmbH"))
    assert replay.matched_existing and replay.customer.customer_id == mine.customer.customer_id == "C-1"


async def test_create_refuses_bad_input_with_every_field(pipeline: Pipeline) -> None:
    bad = customer_pb2.Customer(
        display_name="  ",
        contacts=[customer_pb2.CustomerContact(name="", phone="12ab", email="not-mail")],
    )
    status = await refused(make(pipeline, bad), grpc.StatusCode.INVALID_ARGUMENT)
    from google.rpc import error_details_pb2

    detail = error_details_pb2.BadRequest()
    next(d for d in status.details if d.Is(detail.DESCRIPTOR)).Unpack(detail)
    fields = {v.field for v in detail.field_violations}
    assert {
        "customer.display_name",
        "customer.contacts[0].name",
        "customer.contacts[0].phone",
        "customer.contacts[0].email",
    } <= fields
    await refused(make(pipeline, acme(display_name="x" * 301)), grpc.StatusCode.INVALID_ARGUMENT)
    # Output-only input is dropped, not trusted.
    made = await make(pipeline, acme(org_path="west/evil", normalized_name="zzz", lead_ids=["L9"]))
    assert made.customer.org_path == "east/team-a" and made.customer.normalized_name == "acmetrading"
    assert list(made.customer.lead_ids) == []


async def test_scope_owner_team_deal_holders_and_tenants(pipeline: Pipeline) -> None:
    c = (await make(pipeline, acme())).customer
    get = pb.GetCustomerRequest(customer_id=c.customer_id)
    assert (await pipeline.call("GetCustomer", get, user="rep-a1")).customer.customer_id == c.customer_id
    assert (await pipeline.call("GetCustomer", get, user="sup-a")).customer.customer_id == c.customer_id
    assert (
        await pipeline.call("GetCustomer", get, user="director-east")
    ).customer.customer_id == c.customer_id
    for user in ("rep-a2", "rep-b1", "sup-b"):
        await refused(pipeline.call("GetCustomer", get, user=user), grpc.StatusCode.NOT_FOUND)
    await refused(pipeline.call("GetCustomer", get, user="admin", tenant="acme"), grpc.StatusCode.NOT_FOUND)
    # rep-b1 cannot name an account they do not see (that would open it to them)...
    deal = new_deal("D-B1", owner="rep-b1")
    deal.customer.customer_id = c.customer_id
    status = await refused(
        pipeline.call("CreateDeal", pb.CreateDealRequest(deal=deal), user="rep-b1"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "deal.customer.customer_id" in str(status)
    # ...but gets a deal with it from the admin: the account becomes visible to them (read only).
    await create(pipeline, deal, user="admin")
    assert (await pipeline.call("GetCustomer", get, user="rep-b1")).customer.customer_id == c.customer_id
    listed = await pipeline.call("ListCustomers", pb.ListCustomersRequest(), user="rep-b1")
    assert [x.customer_id for x in listed.customers] == [c.customer_id] and listed.total_size == 1
    upd = customer_pb2.Customer(customer_id=c.customer_id, city="Beijing")
    await refused(
        pipeline.call(
            "UpdateCustomer", pb.UpdateCustomerRequest(customer=upd, update_mask=mask("city")), user="rep-b1"
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    # Deals list by customer agrees.
    deals = await pipeline.call(
        "ListDeals", pb.ListDealsRequest(filter=pb.DealFilter(customer_id=c.customer_id)), user="admin"
    )
    assert [d.deal_id for d in deals.deals] == ["D-B1"]


async def test_update_merges_with_etag_and_keeps_keys_unique(pipeline: Pipeline) -> None:
    a = (
        await make(pipeline, acme(contacts=[customer_pb2.CustomerContact(name="A", phone="13800000001")]))
    ).customer
    b = (await make(pipeline, customer_pb2.Customer(display_name="Beta Corp"))).customer
    upd = customer_pb2.Customer(customer_id=a.customer_id, city="Beijing", etag=a.etag)
    out = (
        await pipeline.call(
            "UpdateCustomer", pb.UpdateCustomerRequest(customer=upd, update_mask=mask("city"))
        )
    ).customer
    assert out.city == "Beijing" and out.display_name == a.display_name and out.etag == "2"
    assert out.contacts[0].phone == "+8613800000001"
    # Stale etag: ABORTED.
    await refused(
        pipeline.call("UpdateCustomer", pb.UpdateCustomerRequest(customer=upd, update_mask=mask("city"))),
        grpc.StatusCode.ABORTED,
    )
    # Another customer's name or contact key: ALREADY_EXISTS.
    clash = customer_pb2.Customer(customer_id=b.customer_id, display_name="ACME TRADING INC")
    await refused(
        pipeline.call(
            "UpdateCustomer", pb.UpdateCustomerRequest(customer=clash, update_mask=mask("display_name"))
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    key = customer_pb2.Customer(
        customer_id=b.customer_id,
        contacts=[customer_pb2.CustomerContact(name="B", phone="+86 138 0000 0001")],
    )
    await refused(
        pipeline.call("UpdateCustomer", pb.UpdateCustomerRequest(customer=key, update_mask=mask("contacts"))),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    # Immutable id, and the contact key freed by a removal can be taken.
    a2 = customer_pb2.Customer(customer_id=a.customer_id, contacts=[])
    await pipeline.call("UpdateCustomer", pb.UpdateCustomerRequest(customer=a2, update_mask=mask("contacts")))
    moved = (
        await pipeline.call(
            "UpdateCustomer", pb.UpdateCustomerRequest(customer=key, update_mask=mask("contacts"))
        )
    ).customer
    assert moved.contacts[0].phone == "+8613800000001"
    found = await pipeline.call(
        "ListCustomers", pb.ListCustomersRequest(filter=pb.CustomerFilter(contact_key="138-0000-0001"))
    )
    assert [x.customer_id for x in found.customers] == [b.customer_id]


async def test_list_pages_every_customer_once_in_order(pipeline: Pipeline) -> None:
    ids = []
    for i in range(9):
        ids.append(
            (await make(pipeline, customer_pb2.Customer(display_name=f"Firm {i:02d}"))).customer.customer_id
        )
    for size in range(1, 8):
        seen: list[str] = []
        token = ""
        while True:
            resp = await pipeline.call(
                "ListCustomers",
                pb.ListCustomersRequest(page_size=size, page_token=token, order_by="display_name"),
            )
            seen.extend(c.customer_id for c in resp.customers)
            token = resp.next_page_token
            if not token:
                break
        assert seen == ids, size
    forged = pb.ListCustomersRequest(page_size=2, page_token="forged")
    await refused(pipeline.call("ListCustomers", forged), grpc.StatusCode.INVALID_ARGUMENT)
    await refused(
        pipeline.call("ListCustomers", pb.ListCustomersRequest(order_by="secret")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_demo_seed_gives_every_demo_deal_a_real_customer(pipeline: Pipeline) -> None:
    from deploy.local.demo import DEMO_USERS
    from services.pipeline import seed
    from tests.pipeline.conftest import token

    tokens = {u.user_id: token(u.user_id) for u in DEMO_USERS}
    await seed.seed(pipeline.address, tokens, DEMO_USERS)
    first = await pipeline.call("ListDeals", pb.ListDealsRequest(page_size=500))
    await seed.seed(pipeline.address, tokens, DEMO_USERS)  # `make run` twice: nothing changes
    again = await pipeline.call("ListDeals", pb.ListDealsRequest(page_size=500))
    assert [(d.deal_id, d.etag) for d in again.deals] == [(d.deal_id, d.etag) for d in first.deals]
    customers = (await pipeline.call("ListCustomers", pb.ListCustomersRequest(page_size=500))).customers
    assert len(customers) == 16 and all(c.contacts for c in customers)
    by_id = {c.customer_id: c for c in customers}
    for d in again.deals:
        assert (
            d.customer.customer_id in by_id
            and d.customer.display_name == by_id[d.customer.customer_id].display_name
        )
        assert by_id[d.customer.customer_id].owner_user_id == d.owner_user_id
    view = await pipeline.call(
        "GetCustomerView",
        pb.GetCustomerViewRequest(customer_id=again.deals[0].customer.customer_id),
        user="admin",
    )
    assert len(view.view.deals) == 2


async def test_a_renamed_customer_renames_its_deals(pipeline: Pipeline) -> None:
    c = (await make(pipeline, acme())).customer
    deal = new_deal("D-R1")
    deal.customer.customer_id = c.customer_id
    before = await create(pipeline, deal)
    upd = customer_pb2.Customer(customer_id=c.customer_id, display_name="ACME Group Holdings")
    await pipeline.call(
        "UpdateCustomer", pb.UpdateCustomerRequest(customer=upd, update_mask=mask("display_name"))
    )
    after = (await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="D-R1"))).deal
    assert after.customer.display_name == "ACME Group Holdings" and after.etag != before.etag
    other = (await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="D-R1"), tenant="demo")).deal
    assert other.customer.customer_id == c.customer_id


async def test_a_deal_names_only_a_customer_its_caller_sees(pipeline: Pipeline) -> None:
    """CreateDeal / UpdateDeal refuse an unknown, unseen or other tenant's customer id (one answer for
    all three), nothing stored; a known one links; an unchanged link is not re-checked."""
    mine = (await make(pipeline, acme())).customer
    theirs = (await make(pipeline, acme(display_name="Beta Robotics"), user="rep-b1")).customer
    elsewhere = (await make(pipeline, acme(display_name="Gamma Foods"), user="admin", tenant="acme")).customer
    for cid in ("C-NOPE", theirs.customer_id, elsewhere.customer_id):
        deal = new_deal("D-X")
        deal.customer.customer_id = cid
        status = await refused(
            pipeline.call("CreateDeal", pb.CreateDealRequest(deal=deal), user="rep-a1"),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert "deal.customer.customer_id" in str(status), cid
    await refused(pipeline.call("GetDeal", pb.GetDealRequest(deal_id="D-X")), grpc.StatusCode.NOT_FOUND)
    made = await create(pipeline, new_deal("D-Y"))
    for cid in ("C-NOPE", theirs.customer_id):
        link = deal_pb2.Deal(deal_id="D-Y", customer=deal_pb2.DealCustomer(customer_id=cid, display_name="x"))
        await refused(
            pipeline.call(
                "UpdateDeal", pb.UpdateDealRequest(deal=link, update_mask=mask("customer")), user="rep-a1"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    link = deal_pb2.Deal(
        deal_id="D-Y", customer=deal_pb2.DealCustomer(customer_id=mine.customer_id, display_name="ACME")
    )
    linked = (
        await pipeline.call(
            "UpdateDeal", pb.UpdateDealRequest(deal=link, update_mask=mask("customer")), user="rep-a1"
        )
    ).deal
    assert linked.customer.customer_id == mine.customer_id and linked.etag != made.etag
    # The admin hands the deal to rep-b1, who does not see ACME by itself: later edits still pass.
    handed = deal_pb2.Deal(deal_id="D-Y", owner_user_id="rep-b1")
    await pipeline.call(
        "UpdateDeal", pb.UpdateDealRequest(deal=handed, update_mask=mask("owner_user_id")), user="admin"
    )
    step = deal_pb2.Deal(deal_id="D-Y", next_step="call the CFO")
    await pipeline.call(
        "UpdateDeal", pb.UpdateDealRequest(deal=step, update_mask=mask("next_step")), user="rep-b1"
    )
