"""Public-pool rules: which pool a lead lands in, claim checks (caps, cooldown), recycling dates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kit.errors import PreconditionViolation
from services.leads.domain import status as lead_status


@dataclass(frozen=True)
class RecycleRule:
    grade: str
    enabled: bool = True
    recycle_after_days: int = 0
    warn_before_days: int = 0


@dataclass(frozen=True)
class Pool:
    pool_id: str
    display_name: str = ""
    region: str = ""
    private_lead_cap: int = 0
    daily_claim_cap: int = 0
    reclaim_cooldown_days: int = 0
    recycle_rules: tuple[RecycleRule, ...] = field(default_factory=tuple)


def default_pools() -> tuple[Pool, ...]:
    recycle = (RecycleRule("A", True, 7, 2), RecycleRule("B", True, 15, 3), RecycleRule("C", True, 30, 5))
    return (
        Pool("default", "Tenant pool", "", 50, 20, 7, recycle),
        Pool("fallback", "Fallback queue", "", 50, 20, 7, recycle),
    )


def pool_for_region(pools: Sequence[Pool], region: str) -> Pool:
    """Longest region prefix wins; else the tenant-wide pool ("default", or any pool without a region)."""
    best: Pool | None = None
    for p in pools:
        covers = p.region and (region == p.region or region.startswith(p.region + "/"))
        if covers and (best is None or len(p.region) > len(best.region)):
            best = p
    if best is not None:
        return best
    for p in pools:
        if p.pool_id == "default":
            return p
    for p in pools:
        if not p.region:
            return p
    return Pool("default")


def find_pool(pools: Sequence[Pool], pool_id: str) -> Pool:
    for p in pools:
        if p.pool_id == pool_id:
            return p
    return pool_for_region(pools, "")


@dataclass(frozen=True)
class ClaimContext:
    owned_count: int  # open leads the rep owns
    claims_today: int
    cooldown_until: datetime | None  # when the rep may re-claim this lead again
    accepting: bool = True
    rep_cap_override: int = 0


def claim_violations(pool: Pool, ctx: ClaimContext, now: datetime) -> list[PreconditionViolation]:
    """Every anti-hoarding rule the claim breaks; empty = allowed."""
    out: list[PreconditionViolation] = []
    if not ctx.accepting:
        out.append(PreconditionViolation("NOT_ACCEPTING", "rep", "the rep is not accepting leads"))
    cap = ctx.rep_cap_override or pool.private_lead_cap
    if cap and ctx.owned_count >= cap:
        out.append(
            PreconditionViolation(
                "PRIVATE_LEAD_CAP", "rep", f"already owns {ctx.owned_count} leads (cap {cap})"
            )
        )
    if pool.daily_claim_cap and ctx.claims_today >= pool.daily_claim_cap:
        out.append(
            PreconditionViolation(
                "DAILY_CLAIM_CAP", "rep", f"{ctx.claims_today} claims today (cap {pool.daily_claim_cap})"
            )
        )
    if ctx.cooldown_until is not None and now < ctx.cooldown_until:
        out.append(
            PreconditionViolation(
                "RECLAIM_COOLDOWN",
                "lead",
                f"lost this lead recently; may re-claim from {ctx.cooldown_until.isoformat()}",
            )
        )
    return out


def cooldown_until(pool: Pool, lost_at: datetime) -> datetime | None:
    return lost_at + timedelta(days=pool.reclaim_cooldown_days) if pool.reclaim_cooldown_days else None


@dataclass(frozen=True)
class RecyclePlan:
    exempt: bool
    warn_time: datetime | None = None
    recycle_time: datetime | None = None
    recycle_after_days: int = 0


def recycle_plan(pool: Pool, grade: str, status: str, last_touch: datetime | None) -> RecyclePlan:
    """When an owned lead returns to the pool without follow-up; closed and pooled leads never do."""
    if not lead_status.is_open(status) or last_touch is None:
        return RecyclePlan(True)
    rule = next((r for r in pool.recycle_rules if r.grade == grade), None)
    if rule is None or not rule.enabled or rule.recycle_after_days <= 0:
        return RecyclePlan(True)
    at = last_touch + timedelta(days=rule.recycle_after_days)
    warn = at - timedelta(days=rule.warn_before_days) if rule.warn_before_days else None
    return RecyclePlan(False, warn, at, rule.recycle_after_days)
