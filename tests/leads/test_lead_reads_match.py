"""GetLead and ListLeads answer byte for byte what the ORM read path answers (repositories/leads.py
`visible_with_duplicates` / `search`, presented by lead_views.present and LEADS.present): every
field, the phone masking, the candidates each viewer may see and how they are named, the totals
and the page tokens, for every kind of viewer, over many filters, orders and page sizes.

The served path (repositories/lead_reads.py) binds every value into a statement built once per
shape, so the same shape is asked again with other values here (cached statements must not keep
the values they were built with)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Table, insert

from kit.auth import Principal, TokenVerifier
from kit.errors import NotFound
from kit.resources import PageRequest, query_key
from salesops.leads.v1 import enums_pb2, lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import access, lead_views
from services.leads.api.leads import DEFAULT_ORDER, lead_order, lead_search
from services.leads.presenters import LEADS, LeadDetails
from services.leads.repositories.leads import LeadRepository
from services.leads.store import DuplicateRow, IntakeRow, LeadRow, transactions
from tests.leads.conftest import CONFIG, Leads, token
from tests.leads.helpers import configure

VIEWERS = ("admin", "director-east", "sup-a", "sup-b", "rep-a1", "rep-b2")
OWNERS = (None, "rep-a1", "rep-a2", "rep-b1", "rep-b2", "sup-a")
TEAMS = ("", "east/team-a", "east/team-b", "west/team-x", "east/team-a/sub", "East/Team-A")  # case counts
STATUSES = ("IN_POOL", "ASSIGNED", "WORKING", "CONVERTED", "DISQUALIFIED", "MERGED")
REGIONS = ("east/shanghai", "east/hangzhou", "east", "north/beijing", "")
GRADES = ("A", "B", "C", "")
N = 70


def _rows(rnd: random.Random) -> list[dict[str, Any]]:
    base = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

    def maybe() -> datetime | None:
        return base + timedelta(minutes=rnd.randrange(1, 50_000)) if rnd.random() < 0.5 else None

    out = []
    for i in range(N):
        phone = f"+86138{i:08d}" if rnd.random() < 0.8 else ""
        name = phone if phone and rnd.random() < 0.3 else f"Company {i % 9}"  # some named by their number
        owner = rnd.choice(OWNERS)
        created = base + timedelta(hours=rnd.randrange(0, 6) * 7)  # ties in create_time
        body: dict[str, Any] = {}
        if rnd.random() < 0.7:
            body = {
                "contact": {"name": "Li", "phone": phone, "email": f"m{i}@example.com"},
                "company": {"name": name},
                "tags": rnd.sample(["vip", "expo", "web", "cold"], rnd.randrange(0, 3)),
                "productLines": rnd.sample(["crm", "erp"], rnd.randrange(0, 2)),
            }
        out.append(
            {
                "tenant_id": "demo",
                "lead_id": f"M{i:03d}",
                "status": "IN_POOL" if owner is None and rnd.random() < 0.6 else rnd.choice(STATUSES),
                "display_name": name,
                "phone": phone,
                "email": f"m{i}@example.com",
                "company_norm": name.lower(),
                "company_key": name.lower()[:2],
                "region": rnd.choice(REGIONS),
                "language": "zh-CN",
                "channel": rnd.choice(["WEB_FORM", "CALL_CENTER", ""]),
                "source_code": rnd.choice(["", "expo-2026"]),
                "grade": rnd.choice(GRADES),
                "score": rnd.randrange(0, 5) * 20,  # ties in score
                "grading": {"ruleIds": ["r1"], "score": 40} if rnd.random() < 0.3 else {},
                "owner_user_id": owner,
                "team_path": rnd.choice(TEAMS),
                "supervisor_user_id": rnd.choice(["", "sup-a"]),
                "pool_id": rnd.choice([None, "default", "fallback"]),
                "pool_entry_reason": rnd.choice(["", "NEW_LEAD", "RECYCLED"]),
                "assignment_reason": rnd.choice(["", "ROUTED", "CLAIMED"]) if owner else "",
                "assign_time": maybe() if owner else None,
                "last_decision_id": "",
                "last_activity_time": maybe(),
                "activity_count": rnd.randrange(0, 4),
                "sla_state": rnd.choice(["NOT_APPLICABLE", "PENDING", "BREACHED", "MET"]),
                "sla_grade": rnd.choice(GRADES),
                "sla_start": maybe(),
                "sla_due": maybe(),
                "sla_reminder": maybe(),
                "sla_reminded": rnd.random() < 0.3,
                "sla_response_time": maybe(),
                "sla_response_activity_id": "",
                "sla_responder": rnd.choice(["", "rep-a1"]),
                "sla_business_seconds": rnd.choice([None, 3600.0, 12.5]),
                "sla_breach_time": maybe(),
                "sla_breach_action": rnd.choice(["", "REASSIGN_NEXT_REP"]),
                "sla_reassignments": rnd.randrange(0, 2),
                "needs_attention": rnd.random() < 0.3,
                "recycle_warned": rnd.random() < 0.2,
                "duplicate_review_needed": rnd.random() < 0.3,
                "intake_count": 2 if i % 11 == 0 else 1,
                "merged_into": "",
                "converted_opportunity_id": "",
                "close_time": maybe(),
                "body": body,
                "version": rnd.randrange(1, 5),
                "created_by": "seed",
                "created_at": created,
                "updated_at": created + timedelta(minutes=rnd.randrange(0, 3)),
            }
        )
    return out


async def _seed(leads: Leads) -> list[str]:
    await configure(leads)
    rnd = random.Random(20261206)
    rows = _rows(rnd)
    ids = [r["lead_id"] for r in rows]
    dups, intakes = [], []
    for i, lead_id in enumerate(ids):
        for other in rnd.sample(ids, rnd.randrange(0, 4)):
            if other != lead_id:
                dups.append(
                    {
                        "tenant_id": "demo",
                        "lead_id": lead_id,
                        "other_lead_id": other,
                        "kind": rnd.choice(["PHONE", "EMAIL"]),
                        "score": rnd.random(),
                        "display_name": f"as found {other}",
                        "state": rnd.choice(["OPEN", "DISMISSED"]),
                        "detect_time": datetime(2026, 11, 2, tzinfo=UTC) + timedelta(minutes=i),
                    }
                )
        if rows[i]["intake_count"] > 1:
            intakes.append(
                {
                    "tenant_id": "demo",
                    "intake_id": f"I{i}",
                    "lead_id": lead_id,
                    "outcome": "MERGED",
                    "receive_time": datetime(2026, 11, 3, tzinfo=UTC),
                    "body": {"contact": {"phone": rows[i]["phone"], "name": "again"}},
                }
            )
    unique = {(d["lead_id"], d["other_lead_id"], d["kind"]): d for d in dups}
    other_tenant = dict(rows[0], tenant_id="other", display_name="Other tenant's")
    async with leads.db.engine.begin() as conn:
        await conn.execute(insert(cast(Table, LeadRow.__table__)), [*rows, other_tenant])
        await conn.execute(insert(cast(Table, DuplicateRow.__table__)), list(unique.values()))
        await conn.execute(insert(cast(Table, IntakeRow.__table__)), intakes)
    return ids


def _who(user: str) -> Principal:
    return TokenVerifier(CONFIG).verify_bearer("Bearer " + token(user))


async def _get_by_orm(leads: Leads, who: Principal, lead_id: str, view: int) -> bytes | None:
    async with transactions(leads.db).read("demo") as uow:
        repo = LeadRepository(uow)
        try:
            if view == pb.LEAD_VIEW_BASIC:
                row, candidates = await repo.visible(who, lead_id), None
            else:
                row, dups = await repo.visible_with_duplicates(who, lead_id)
                candidates = lead_views.candidates_of(dups)
        except NotFound:
            return None
        lead = await lead_views.present(uow, who, row, view, read_only=True, found_candidates=candidates)
        return pb.GetLeadResponse(lead=lead).SerializeToString(deterministic=True)


async def _list_by_orm(leads: Leads, who: Principal, request: pb.ListLeadsRequest) -> pb.ListLeadsResponse:
    page = PageRequest.parse(request.page_size, request.page_token)
    order_by = (request.order_by or DEFAULT_ORDER).strip()
    query = query_key("ListLeads", who.user_id, request.filter, order_by)
    async with transactions(leads.db).read("demo") as uow:
        found = await LeadRepository(uow).search(
            who, lead_search(who, request.filter), lead_order(request.order_by), page, query
        )
    full = request.view == pb.LEAD_VIEW_FULL
    return pb.ListLeadsResponse(
        leads=[LEADS.present(who, LeadDetails(r, full=full)) for r in found.items],
        total_size=found.total_size or 0,
        next_page_token=found.next_page_token,
    )


async def test_get_lead_answers_what_the_orm_path_answers(leads: Leads) -> None:
    ids = await _seed(leads)
    rows = {r["lead_id"]: SimpleNamespace(**r) for r in _rows(random.Random(20261206))}  # as seeded
    answered = hidden = candidates = masked = 0
    for user in VIEWERS:
        who = _who(user)
        # The lists' SQL agrees with access.py's rules in Python (team paths match exactly in case:
        # "East/Team-A" is not below "east" on SQLite either, whose LIKE ignores case).
        listed = await leads.call("ListLeads", pb.ListLeadsRequest(page_size=100), user)
        assert {lead.lead_id for lead in listed.leads} == {
            i for i in ids if access.can_view(who, rows[i]) and rows[i].status != "MERGED"
        }, user
        for lead_id in [*ids, "nope"]:
            for view in (pb.LEAD_VIEW_FULL, pb.LEAD_VIEW_BASIC):
                want = await _get_by_orm(leads, who, lead_id, view)
                try:
                    got = await leads.call("GetLead", pb.GetLeadRequest(lead_id=lead_id, view=view), user)
                except Exception as exc:  # grpc.aio.AioRpcError
                    assert want is None, (user, lead_id, exc)
                    assert "NOT_FOUND" in str(exc)
                    hidden += 1
                    continue
                assert got.SerializeToString(deterministic=True) == want, (user, lead_id, view)
                answered += 1
                candidates += len(got.lead.duplicate_candidates)
                masked += sum("*" in c.display_name for c in got.lead.duplicate_candidates)
    # The data exercises what it claims to: answers, hidden leads, candidates, masked candidates.
    assert answered > 300 and hidden > 100 and candidates > 200 and masked > 5


def _filters(rnd: random.Random) -> list[pb.LeadFilter]:
    def one() -> pb.LeadFilter:
        f = pb.LeadFilter()
        pick = rnd.random
        if pick() < 0.4:
            f.regions.extend(
                rnd.sample(["east/shanghai", "east/*", "north/beijing", "east"], rnd.randrange(1, 3))
            )
        if pick() < 0.4:
            f.grades.extend(
                rnd.sample(
                    [enums_pb2.LEAD_GRADE_A, enums_pb2.LEAD_GRADE_B, enums_pb2.LEAD_GRADE_C],
                    rnd.randrange(1, 3),
                )
            )
        if pick() < 0.2:
            f.statuses.extend(
                rnd.sample(
                    [
                        lead_pb2.LEAD_STATUS_IN_POOL,
                        lead_pb2.LEAD_STATUS_ASSIGNED,
                        lead_pb2.LEAD_STATUS_MERGED,
                    ],
                    rnd.randrange(1, 3),
                )
            )
        if pick() < 0.2:
            f.owner_user_ids.extend(rnd.sample(["me", "rep-a1", "rep-b2"], rnd.randrange(1, 3)))
        if pick() < 0.15:
            f.pool_ids.append(rnd.choice(["default", "fallback"]))
        if pick() < 0.15:
            f.team_path = rnd.choice(["east/team-a", "east", "west"])
        if pick() < 0.15:
            f.channels.append(
                rnd.choice([enums_pb2.LEAD_CHANNEL_WEB_FORM, enums_pb2.LEAD_CHANNEL_CALL_CENTER])
            )
        if pick() < 0.1:
            f.source_codes.append("expo-2026")
        if pick() < 0.15:
            f.tags.extend(rnd.sample(["vip", "expo", "web"], rnd.randrange(1, 3)))
        if pick() < 0.1:
            f.product_lines.append(rnd.choice(["crm", "erp"]))
        if pick() < 0.1:
            f.phone = f"138{rnd.randrange(0, N):08d}"
        if pick() < 0.1:
            f.email = f"m{rnd.randrange(0, N)}@example.com"
        if pick() < 0.15:
            f.query = rnd.choice(["company 3", "138000000", "ompan", "%", "_"])
        if pick() < 0.15:
            f.duplicate_review_needed = rnd.random() < 0.5
        if pick() < 0.15:
            start = Timestamp()
            start.FromDatetime(datetime(2026, 11, 1, 10, tzinfo=UTC))
            f.create_period.start_time.CopyFrom(start)
        if pick() < 0.1:
            f.min_idle_days = rnd.randrange(1, 30)
        return f

    return [pb.LeadFilter(), *(one() for _ in range(40))]


ORDER_BYS = (
    "",
    "score desc",
    "score",
    "create_time",
    "update_time desc",
    "last_activity_time",
    "last_activity_time desc",
    "first_response.due_time",
)


@pytest.mark.parametrize("seed", [1, 2])
async def test_list_leads_answers_what_the_orm_path_answers(leads: Leads, seed: int) -> None:
    await _seed(leads)
    rnd = random.Random(seed)
    pages = listed = 0
    for f in _filters(rnd):
        user = rnd.choice(VIEWERS)
        who = _who(user)
        request = pb.ListLeadsRequest(
            filter=f,
            order_by=rnd.choice(ORDER_BYS),
            page_size=rnd.randrange(1, 8),
            view=rnd.choice([pb.LEAD_VIEW_UNSPECIFIED, pb.LEAD_VIEW_FULL]),
        )
        for _ in range(30):  # walk the pages (the tokens must match too)
            want = await _list_by_orm(leads, who, request)
            got = await leads.call("ListLeads", request, user)
            assert got.SerializeToString(deterministic=True) == want.SerializeToString(deterministic=True), (
                user,
                request,
            )
            pages += 1
            listed += len(got.leads)
            if not got.next_page_token:
                break
            request.page_token = got.next_page_token
    assert pages > 60 and listed > 100
