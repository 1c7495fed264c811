"""Demo data of the pipeline service, written through its own gRPC API (`make run`), idempotently.

Every demo user gets a member profile (reps report to their team's supervisor,
supervisors to the region's director), so deals land in their owner's team; and
each rep gets a few deals at different stages of the built-in stage model,
moved through the same gates as anyone's (evidence and qualification first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import grpc
from google.protobuf import field_mask_pb2

from kit.seeding import SeedClients, SeedUser
from salesops.common.v1.types_pb2 import AttachmentRef, Money, Role
from salesops.pipeline.v1 import deal_pb2, pipeline_service_pb2_grpc, settings_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import seed_approvals, seed_targets
from services.pipeline.convert import date_proto
from services.pipeline.seed_customers import seed_customers

ROLES = {
    "rep": Role.ROLE_REP,
    "supervisor": Role.ROLE_SUPERVISOR,
    "director": Role.ROLE_DIRECTOR,
    "admin": Role.ROLE_ADMIN,
    "approver": Role.ROLE_APPROVER,
}
# (stage to reach, evidence to attach on the way, qualified) per deal of a rep, by index.
PLAN: list[tuple[str, tuple[str, ...], bool]] = [
    ("initial_contact", (), False),
    ("needs_confirmed", ("meeting_minutes",), False),
    ("solution_confirmed", ("meeting_minutes", "signed_requirement_confirmation"), False),
    ("proposal_quote", ("meeting_minutes", "signed_requirement_confirmation"), True),
]


def profiles(users: Sequence[SeedUser]) -> list[settings_pb2.MemberProfile]:
    supervisors = {u.org: u.user_id for u in users if "supervisor" in u.roles}
    directors = {u.org: u.user_id for u in users if "director" in u.roles}
    out = []
    for u in users:
        role = next((ROLES[r] for r in u.roles if r in ROLES), Role.ROLE_UNSPECIFIED)
        if "rep" in u.roles:
            manager = supervisors.get(u.org, "")
        elif "supervisor" in u.roles:
            manager = directors.get(u.org.split("/")[0], "")
        elif "approver" in u.roles:
            manager = "" if u.user_id == "gm" else "gm"  # the flows escalate to the GM
        else:
            manager = ""
        out.append(
            settings_pb2.MemberProfile(
                user_id=u.user_id,
                display_name=u.display_name,
                org_path=u.org,
                manager_user_id=manager,
                role=role,
                active=True,
                approver_roles=seed_approvals.approver_roles(u),
            )
        )
    return out


def _deal(user: SeedUser, n: int, today: date) -> deal_pb2.Deal:
    deal = deal_pb2.Deal(
        deal_id=f"demo-{user.user_id}-{n}",
        title=f"{user.display_name} opportunity {n + 1}",
        customer=deal_pb2.DealCustomer(
            display_name=f"Demo Customer {user.user_id.upper()}-{n + 1}", industry="manufacturing"
        ),
        owner_user_id=user.user_id,
        amount=Money(amount_minor=(n + 1) * 250_000_00, currency="CNY"),
        expected_close_date=date_proto(today + timedelta(days=20 + 15 * n)),
    )
    if PLAN[n][2]:
        q = deal.qualification
        q.budget_min.CopyFrom(Money(amount_minor=(n + 1) * 200_000_00, currency="CNY"))
        q.budget_max.CopyFrom(Money(amount_minor=(n + 1) * 300_000_00, currency="CNY"))
        q.decision_date.CopyFrom(date_proto(today + timedelta(days=14)))
        q.decision_maker_access = deal_pb2.DECISION_MAKER_ACCESS_MET
    return deal


async def seed(
    address: str, token: Mapping[str, str], users: Sequence[SeedUser], today: date | None = None
) -> None:
    """Profiles and demo deals; running it again rewrites the same profiles and keeps the deals."""
    day = today or date.today()

    def md(user: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token[user]}"),)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = pipeline_service_pb2_grpc.PipelineServiceStub(channel)
        for p in profiles(users):
            req = pb.UpdateMemberProfileRequest(
                member_profile=p, update_mask=field_mask_pb2.FieldMask(), allow_missing=True
            )
            await stub.UpdateMemberProfile(req, metadata=md("admin"), timeout=10)
        for user in (u for u in users if "rep" in u.roles):
            for n, (stage, evidence, _) in enumerate(PLAN):
                deal = _deal(user, n, day)
                try:
                    await stub.CreateDeal(
                        pb.CreateDealRequest(deal=deal), metadata=md(user.user_id), timeout=10
                    )
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.ALREADY_EXISTS:  # seeded on an earlier day: keep it
                        raise
                    continue
                for kind in evidence:
                    ev = deal_pb2.DealEvidence(
                        evidence_id=f"{deal.deal_id}-{kind}",
                        evidence_type_id=kind,
                        attachment=AttachmentRef(uri=f"demo://{deal.deal_id}/{kind}"),
                    )
                    req_ev = pb.CreateDealEvidenceRequest(deal_id=deal.deal_id, evidence=ev)
                    await stub.CreateDealEvidence(req_ev, metadata=md(user.user_id), timeout=10)
                move = pb.MoveStageRequest(deal_id=deal.deal_id, to_stage_id=stage)
                await stub.MoveStage(move, metadata=md(user.user_id), timeout=10)
        await seed_targets.seed(stub, md, users, day)
        # Real accounts (with contacts) for the demo deals: seed_customers.py.
        await seed_customers(stub, md, users, lambda u: [_deal(u, n, day).deal_id for n in range(len(PLAN))])


async def demo_seed(clients: SeedClients) -> None:
    """The ServiceSpec hook `make run` calls."""
    await seed(clients.addresses["pipeline"], dict(clients.tokens), clients.users)
    await seed_approvals.seed(clients)  # the shipped approval flows and the stage model using them
