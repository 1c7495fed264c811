"""Demo targets (`make run`), written through the service's own API, idempotently.

For the current quarter and the two before it: company -> region -> team -> rep, each level
committing less than it was handed (10.0M -> 9.2M -> 8.5M -> 7.6M: the attrition the cascade
shows), challenges 20 % above; the owners sign (in the current quarter one rep has not yet), and
each rep's target gets this week's calibration with a deviation reason. Ids are derived from the
period, so a second run replays the same creates and signatures and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

import grpc

from kit.seeding import SeedUser
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import pipeline_service_pb2_grpc, target_pb2, types_pb2
from services.pipeline.convert import date_proto
from services.pipeline.domain import forecast as f

Metadata = Callable[[str], tuple[tuple[str, str], ...]]
CNY = 100  # minor units per yuan
COMPANY = 10_000_000 * CNY
RETAINED = {"REGION": 0.92, "TEAM": 0.85, "REP": 0.76}  # of the company's committed, level by level
REASONS = (
    target_pb2.DEVIATION_REASON_TYPE_DECISION_CHAIN_CHANGED,
    target_pb2.DEVIATION_REASON_TYPE_COMPETITOR_PRICE_CUT,
    target_pb2.DEVIATION_REASON_TYPE_DELIVERY_LATE,
    target_pb2.DEVIATION_REASON_TYPE_NO_DEVIATION,
)
NOTES = {
    target_pb2.DEVIATION_REASON_TYPE_DECISION_CHAIN_CHANGED: "new CIO at the customer, sponsor moved",
    target_pb2.DEVIATION_REASON_TYPE_COMPETITOR_PRICE_CUT: "competitor quoted 15 % lower",
    target_pb2.DEVIATION_REASON_TYPE_DELIVERY_LATE: "pilot delivery slipped two weeks",
}


def quarters(day: date) -> list[date]:
    """First days of the quarter holding `day` and of the two before it, oldest first."""
    start = f.period_bounds(f.Granularity.QUARTER, day)[0]
    out = [start]
    for _ in range(2):
        out.insert(0, f.period_bounds(f.Granularity.QUARTER, out[0] - timedelta(days=1))[0])
    return out


def _money(minor: float) -> Money:
    return Money(amount_minor=round(minor / CNY) * CNY, currency="CNY")


def plan(users: Sequence[SeedUser], start: date) -> list[tuple[target_pb2.Target, str]]:
    """The quarter's targets top-down, each with the user who signs it."""
    period = types_pb2.SalesPeriod(
        granularity=types_pb2.PERIOD_GRANULARITY_QUARTER, start_date=date_proto(start)
    )
    teams = sorted({u.org for u in users if "rep" in u.roles})
    regions = sorted({t.split("/")[0] for t in teams})
    reps = [u for u in users if "rep" in u.roles]
    out: list[tuple[target_pb2.Target, str]] = []

    def add(
        key: str,
        level: types_pb2.OrgLevel.ValueType,
        committed: float,
        assigned: float,
        signer: str,
        org_path: str = "",
        user_id: str = "",
    ) -> None:
        t = target_pb2.Target(
            target_id=f"demo-{start.isoformat()}-{key}",
            period=period,
            level=level,
            org_path=org_path,
            user_id=user_id,
            committed_amount=_money(committed),
            assigned_amount=_money(assigned),
            challenge_amount=_money(committed * 1.2),
        )
        out.append((t, signer))

    admin = next(u.user_id for u in users if "admin" in u.roles)
    add("company", types_pb2.ORG_LEVEL_COMPANY, COMPANY, COMPANY, admin)
    for region in regions:
        director = next(u.user_id for u in users if "director" in u.roles and u.org == region)
        share = COMPANY / len(regions)
        add(region, types_pb2.ORG_LEVEL_REGION, share * RETAINED["REGION"], share, director, org_path=region)
    for team in teams:
        supervisor = next(u.user_id for u in users if "supervisor" in u.roles and u.org == team)
        share = COMPANY / len(teams)
        committed = share * RETAINED["TEAM"]
        add(team.replace("/", "-"), types_pb2.ORG_LEVEL_TEAM, committed, share, supervisor, org_path=team)
    for rep in reps:
        share = COMPANY / len(reps)
        committed = share * RETAINED["REP"]
        # Handed the team's committed in equal parts; each rep commits to less.
        handed = COMPANY * RETAINED["TEAM"] / len(reps)
        add(rep.user_id, types_pb2.ORG_LEVEL_REP, committed, handed, rep.user_id, user_id=rep.user_id)
    return out


async def seed(
    stub: pipeline_service_pb2_grpc.PipelineServiceAsyncStub,
    md: Metadata,
    users: Sequence[SeedUser],
    day: date,
) -> None:
    """Create (or replay) the three quarters' cascades, sign them, calibrate this week."""
    current = quarters(day)[-1]
    pending = [u.user_id for u in users if "rep" in u.roles][-1]
    for start in quarters(day):
        for target, signer in plan(users, start):
            made = (
                await stub.CreateTarget(
                    pb.CreateTargetRequest(target=target), metadata=md("admin"), timeout=10
                )
            ).target
            if start == current and made.user_id == pending:
                continue  # one rep has not signed this quarter's target yet
            sign = pb.SignTargetRequest(target_id=made.target_id, committed_amount=made.committed_amount)
            await stub.SignTarget(sign, metadata=md(signer), timeout=10)
    monday = day - timedelta(days=day.weekday())
    reps = [u for u in users if "rep" in u.roles]
    for n, rep in enumerate(reps):
        target_id = f"demo-{current.isoformat()}-{rep.user_id}"
        reason = REASONS[n % len(REASONS)]
        committed = COMPANY * RETAINED["REP"] / len(reps)
        calibration = target_pb2.TargetCalibration(
            calibration_id=f"demo-{monday.isoformat()}-{rep.user_id}",
            target_id=target_id,
            week_start_date=date_proto(monday),
            forecast_amount=_money(committed * (0.8 + 0.05 * (n % 5))),
            reason_type=reason,
            reason_detail=NOTES.get(reason, ""),
        )
        try:
            await stub.CreateTargetCalibration(
                pb.CreateTargetCalibrationRequest(calibration=calibration),
                metadata=md(rep.user_id),
                timeout=10,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:  # calibrated this week already
                raise


__all__ = ["plan", "quarters", "seed"]
