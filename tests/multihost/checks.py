"""What the failover test reads back: the leads service's rows, the watch workflows in Temporal,
and each rep's inbox through the gateway."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import httpx
from temporalio.client import Client

from services.leads.workflows import WORKFLOW_NAME, workflow_id

ASSIGNED = "NOTIFICATION_CATEGORY_LEAD_ASSIGNED"


@dataclass(frozen=True)
class LeadRecord:
    lead_id: str
    owner: str | None
    status: str
    phone: str
    sla_due: datetime | None
    intakes: int


async def lead_records(host: str, port: int, tenant: str, prefix: str) -> list[LeadRecord]:
    """Every lead of this run (ids share `prefix`) with its intake count, from the leads database."""
    conn = await asyncpg.connect(host=host, port=port, user="postgres", database="leads")
    try:
        rows = await conn.fetch(
            """
            SELECT l.lead_id, l.owner_user_id, l.status, l.phone, l.sla_due,
                   (SELECT count(*) FROM lead_intakes i
                     WHERE i.tenant_id = l.tenant_id AND i.lead_id = l.lead_id) AS intakes
              FROM leads l
             WHERE l.tenant_id = $1 AND l.lead_id LIKE $2
            """,
            tenant,
            prefix + "%",
        )
    finally:
        await conn.close()
    return [
        LeadRecord(r["lead_id"], r["owner_user_id"], r["status"], r["phone"], r["sla_due"], r["intakes"])
        for r in rows
    ]


async def running_watches(temporal_address: str, tenant: str, lead_ids: set[str]) -> set[str]:
    """The leads among `lead_ids` whose LeadWatch workflow is running."""
    client = await Client.connect(temporal_address, namespace="default")
    wanted = {workflow_id(tenant, lead_id): lead_id for lead_id in lead_ids}
    found: set[str] = set()
    query = f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query, page_size=1000):
        if execution.id in wanted:
            found.add(wanted[execution.id])
    return found


async def watch_status(temporal_address: str, tenant: str, lead_id: str) -> str:
    """One lead's watch as Temporal describes it (for the failure message)."""
    client = await Client.connect(temporal_address, namespace="default")
    try:
        described = await client.get_workflow_handle(workflow_id(tenant, lead_id)).describe()
    except Exception as exc:  # reported in the failure message, not handled
        return f"{type(exc).__name__}: {exc}"
    return str(described.status.name if described.status else "?")


async def assignment_notices(base_url: str, token: str) -> Counter[str]:
    """How many LEAD_ASSIGNED items the caller's inbox holds per lead (every page, via the gateway)."""
    counts: Counter[str] = Counter()
    page = ""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        while True:
            params = {"pageSize": "500", **({"pageToken": page} if page else {})}
            reply = await client.get("/v1/inbox", params=params, headers={"Authorization": f"Bearer {token}"})
            reply.raise_for_status()
            body = reply.json()
            for item in body.get("items", []):
                if item.get("category") == ASSIGNED:
                    counts[str(item.get("subject", {}).get("id", ""))] += 1
            page = body.get("nextPageToken", "")
            if not page:
                return counts
