"""A lead's watch state: which of its timers (SLA reminder and breach, no-follow-up attention,
recycle warning and recycle) apply, from its columns and the tenant's policies."""

from __future__ import annotations

from services.leads.convert import aware
from services.leads.domain import pool as pool_rules
from services.leads.domain import sla, status
from services.leads.policies import TenantPolicies
from services.leads.repositories.lead_reads import LeadView
from services.leads.store import LeadRow


def watch_state(row: LeadRow | LeadView, tenant: TenantPolicies) -> sla.WatchState:
    owned = bool(row.owner_user_id) and status.is_open(row.status)
    last_touch = max(
        (t for t in (aware(row.assign_time), aware(row.last_activity_time)) if t is not None), default=None
    )
    pool = pool_rules.pool_for_region(tenant.pools, row.region)
    plan = pool_rules.recycle_plan(pool, row.grade, row.status, last_touch)
    return sla.WatchState(
        owned=owned,
        sla_state=row.sla_state,
        reminder_time=aware(row.sla_reminder),
        due_time=aware(row.sla_due),
        reminded=row.sla_reminded,
        last_touch=last_touch,
        attention_after_days=tenant.sla.attention_after_days,
        needs_attention=row.needs_attention,
        recycle_warn_time=plan.warn_time,
        recycle_time=plan.recycle_time,
        recycle_warned=row.recycle_warned,
    )
