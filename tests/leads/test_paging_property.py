"""Paging is correct on every List RPC of LeadsService (AIP-158), found from the service descriptor.

For each one, over a data set with ties in the sort key: walking the pages with any page size from 1
to 7 returns every row exactly once, in the documented order, with the same total_size on every page
where the contract has one; a page token used by another tenant, with another query, or forged is
INVALID_ARGUMENT. A List RPC added to the contract without a seeder here fails the suite.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from salesops.leads.v1 import enums_pb2, leads_service_pb2, routing_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.store import LeadRow
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, hot_lead, mask
from tests.leads.test_api import call_activity

SERVICE = leads_service_pb2.DESCRIPTOR.services_by_name["LeadsService"]
LIST_RPCS = sorted(m.name for m in SERVICE.methods if m.name.startswith("List"))


def stamp(t: Any) -> tuple[int, int]:
    return (t.seconds, t.nanos)


def neg(t: tuple[int, int]) -> tuple[int, int]:
    return (-t[0], -t[1])


@dataclass(frozen=True)
class Query:
    """One way of listing: the request (without paging), where the items are, each item's id and its
    documented sort key (ties broken by the id ascending), and another query a token must not serve."""

    request: Callable[[], Message]
    items: str
    ident: Callable[[Any], str]
    key: Callable[[Any], Any]
    other: Callable[[Message], None]  # turns the request into another query (a different filter)
    has_total: bool = False


@dataclass
class World:
    leads: list[str]  # every seeded lead
    hot: list[str]  # the A leads (owned; dormant candidates)
    activities: list[str]
    reps: list[str]
    skilled: list[str]  # reps with the "paging" skill


def queries(world: World) -> dict[str, list[tuple[Query, set[str]]]]:
    """Per List RPC: its queries and the ids each must return (the seeders' ground truth)."""
    every = set(world.leads)
    return {
        "ListLeads": [
            (
                Query(
                    lambda: pb.ListLeadsRequest(order_by="score desc"),
                    "leads",
                    lambda x: x.lead_id,
                    lambda x: (-x.score, x.lead_id),
                    lambda r: r.filter.grades.append(enums_pb2.LEAD_GRADE_A),  # type: ignore[attr-defined]
                    has_total=True,
                ),
                every,
            ),
            (
                Query(
                    lambda: pb.ListLeadsRequest(order_by="create_time"),
                    "leads",
                    lambda x: x.lead_id,
                    lambda x: (stamp(x.audit.create_time), x.lead_id),
                    lambda r: setattr(r, "order_by", "create_time desc"),
                    has_total=True,
                ),
                every,
            ),
        ],
        "ListActivities": [
            (
                Query(
                    lambda: pb.ListActivitiesRequest(lead_id="-"),
                    "activities",
                    lambda x: x.activity_id,
                    lambda x: (neg(stamp(x.occur_time)), x.activity_id),
                    lambda r: r.filter.actor_user_ids.append("rep-a1"),  # type: ignore[attr-defined]
                ),
                set(world.activities),
            )
        ],
        "ListAttentionItems": [
            (
                Query(
                    lambda: pb.ListAttentionItemsRequest(),
                    "items",
                    lambda x: x.lead.lead_id,
                    lambda x: (stamp(x.since_time), x.lead.lead_id),
                    lambda r: r.grades.append(enums_pb2.LEAD_GRADE_A),  # type: ignore[attr-defined]
                    has_total=True,
                ),
                every,
            )
        ],
        "ListDormantLeads": [
            (
                Query(
                    lambda: pb.ListDormantLeadsRequest(),
                    "leads",
                    lambda x: x.lead.lead_id,
                    lambda x: (-x.lead.score, x.lead.lead_id),
                    lambda r: setattr(r, "min_score", 1),
                ),
                set(world.hot),
            )
        ],
        "ListRepProfiles": [
            (
                Query(
                    lambda: pb.ListRepProfilesRequest(),
                    "rep_profiles",
                    lambda x: x.user_id,
                    lambda x: x.user_id,
                    lambda r: r.skills.append("paging"),  # type: ignore[attr-defined]
                ),
                set(world.reps),
            ),
            (  # filtered after the query: pages skip rows and must still hold every match once
                Query(
                    lambda: pb.ListRepProfilesRequest(skills=["paging"]),
                    "rep_profiles",
                    lambda x: x.user_id,
                    lambda x: x.user_id,
                    lambda r: r.skills.append("other"),  # type: ignore[attr-defined]
                ),
                set(world.skilled),
            ),
        ],
    }


async def seed(leads: Leads) -> World:
    await configure(leads)
    ids, hot = [], []
    for i in range(12):
        cold = i % 3 == 0  # grade C waits in the pool; the rest are A leads with the same score
        lead = hot_lead(
            f"PG{i:02d}",
            phone=f"1380009{i:04d}",
            company=f"Paging Company {chr(65 + i)}",
            **({"budget": 100_000_00, "channel": 1} if cold else {}),
        )
        created = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=lead))).lead
        ids.append(created.lead_id)
        if not cold:
            hot.append(created.lead_id)
    # Activities sharing one time: ties in ListActivities' order.
    at = datetime.now(UTC)  # after every assignment: within the activity time bounds
    activities = []
    for lead_id in hot[:4]:
        owner = (await leads.call("GetLead", pb.GetLeadRequest(lead_id=lead_id))).lead.owner_user_id
        for k in range(2):
            act = call_activity(activity_id=f"ACT-{lead_id}-{k}")
            act.occur_time.FromDatetime(at)
            await leads.call(
                "CreateActivity", pb.CreateActivityRequest(lead_id=lead_id, activity=act), user=owner
            )
            activities.append(act.activity_id)
    # More reps, some with a skill, interleaved with the others in id order.
    skilled = []
    for user in ("rep-a1x", "rep-a3x", "rep-b2x", "rep-b4x", "rep-b9"):
        profile = routing_pb2.RepProfile(
            user_id=user, team_path="east/team-b", accepting_leads=True, weight=1
        )
        if user.endswith("x"):
            profile.skills.append("paging")
            skilled.append(user)
        await leads.call(
            "UpdateRepProfile",
            pb.UpdateRepProfileRequest(
                rep_profile=profile,
                update_mask=mask("team_path", "accepting_leads", "weight", "skills"),
                allow_missing=True,
            ),
        )
    reps = [f"rep-{t}{n}" for t in "ab" for n in range(1, 5)] + [
        "rep-a1x",
        "rep-a3x",
        "rep-b2x",
        "rep-b4x",
        "rep-b9",
    ]
    # Old, idle, under review: every lead is on the board and the A leads are dormant; two creation
    # times only, so the board's order (since when) and create_time have ties.
    old = datetime.now(UTC) - timedelta(days=30)
    async with leads.db.session("demo") as s:
        for n, lead_id in enumerate(ids):
            await s.execute(
                update(LeadRow)
                .where(LeadRow.lead_id == lead_id)
                .values(
                    created_at=old + timedelta(hours=n % 2),
                    assign_time=None,
                    last_activity_time=None,
                    duplicate_review_needed=True,
                )
            )
        await s.commit()
    return World(ids, hot, activities, reps, skilled)


@pytest.fixture
async def world(leads: Leads) -> AsyncIterator[tuple[Leads, World]]:
    yield leads, await seed(leads)


def test_every_list_rpc_has_a_seeder() -> None:
    covered = set(queries(World([], [], [], [], [])))
    assert LIST_RPCS and set(LIST_RPCS) <= covered, (
        f"List RPCs without a paging seeder: {set(LIST_RPCS) - covered}"
    )


async def walk(leads: Leads, rpc: str, q: Query, size: int) -> list[Any]:
    seen: list[Any] = []
    token, totals = "", set()
    for _ in range(200):
        request = q.request()
        request.page_size, request.page_token = size, token  # type: ignore[attr-defined]
        page = await leads.call(rpc, request)
        items = list(getattr(page, q.items))
        assert len(items) <= size
        seen += items
        if q.has_total:
            totals.add(page.total_size)
        token = page.next_page_token
        if not token:
            break
    else:
        pytest.fail(f"{rpc}: paging did not end")
    if q.has_total:
        assert totals == {len(seen)}, f"{rpc}: total_size {totals} for {len(seen)} rows"
    return seen


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(size=st.integers(1, 7), choice=st.integers(0, 1))
async def test_pages_hold_every_row_once_in_the_documented_order(
    world: tuple[Leads, World], size: int, choice: int
) -> None:
    leads, data = world
    for rpc, options in queries(data).items():
        q, expected = options[choice % len(options)]
        seen = await walk(leads, rpc, q, size)
        ids = [q.ident(x) for x in seen]
        assert len(ids) == len(set(ids)), f"{rpc}: a row came twice"
        assert set(ids) == expected, f"{rpc}: rows missing or extra"
        keys = [q.key(x) for x in seen]
        assert keys == sorted(keys), f"{rpc}: not in the documented order"


def forge(token: str) -> list[str]:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[len(raw) // 2] ^= 0x01
    flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    made_up = base64.urlsafe_b64encode(b'\x01[{"i":"0"}]' + b"\x00" * 16).rstrip(b"=").decode()
    return [flipped, made_up, "not a token", base64.urlsafe_b64encode(b"7").decode()]


async def assert_refused(leads: Leads, rpc: str, request: Message, tenant: str = "demo") -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call(rpc, request, tenant=tenant)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{rpc}: {err.value.code()}"


async def test_tokens_of_another_tenant_another_query_or_forged_are_refused(
    world: tuple[Leads, World],
) -> None:
    leads, data = world
    for rpc, options in queries(data).items():
        q, _ = options[0]
        first = q.request()
        first.page_size = 1  # type: ignore[attr-defined]
        token = (await leads.call(rpc, first)).next_page_token
        assert token, f"{rpc}: the seeded data should need more than one page"
        again = q.request()
        again.page_size, again.page_token = 1, token  # type: ignore[attr-defined]
        await leads.call(rpc, again)  # the token serves its own query
        await assert_refused(leads, rpc, again, tenant="acme")
        other = q.request()
        q.other(other)
        other.page_size, other.page_token = 1, token  # type: ignore[attr-defined]
        await assert_refused(leads, rpc, other)
        for bad in forge(token):
            forged = q.request()
            forged.page_size, forged.page_token = 1, bad  # type: ignore[attr-defined]
            await assert_refused(leads, rpc, forged)
