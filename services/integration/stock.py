"""CheckStock: ask the ERP connector live, fall back to the last STOCK sync. Read-only.

The connector's configuration is read in a read-only unit of work; the ERP is
called with no transaction open (SSRF-safe transport); when it cannot answer,
the STOCK sync's records (`sync_records`) answer instead, marked SNAPSHOT with
the time they were synced. Neither: UNAVAILABLE, so the caller shows "unknown".
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from google.protobuf import json_format

from kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, Unavailable
from kit.net import SafeClient
from kit.resources import Transactions
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import stock_pb2 as st
from salesops.integration.v1 import sync_pb2 as s
from services.integration.connectors import unsealed_secrets
from services.integration.domain import stock as rules
from services.integration.domain.providers import effective_settings
from services.integration.presenters import stamp
from services.integration.repositories.connectors import Connectors
from services.integration.repositories.sync import SyncRecords, connectors_of_kind
from services.integration.source_reads import SourceError, read_stock
from services.integration.store import ConnectorRow


def validate(req: pb.CheckStockRequest) -> None:
    problems = []
    if not 1 <= len(req.lines) <= rules.MAX_LINES:
        problems.append(FieldViolation("lines", f"1 to {rules.MAX_LINES} lines"))
    for i, line in enumerate(req.lines[: rules.MAX_LINES]):
        if not line.sku.strip() or len(line.sku) > 128:
            problems.append(FieldViolation(f"lines[{i}].sku", "required, at most 128 characters"))
        if line.quantity <= 0:
            problems.append(FieldViolation(f"lines[{i}].quantity", "more than 0"))
    if not 0 <= req.max_substitutes <= rules.MAX_SUBSTITUTES:
        problems.append(FieldViolation("max_substitutes", f"0 (default {rules.DEFAULT_SUBSTITUTES}) to 10"))
    if problems:
        raise InvalidArgument("invalid stock check", problems)


async def erp_connector(connectors: Connectors, connector_id: str) -> ConnectorRow:
    if connector_id:
        conn = await connectors.get(connector_id)
        if conn.kind != c.CONNECTOR_KIND_ERP:
            raise FailedPrecondition("the connector is not an ERP connector", reason="NOT_ERP")
        if conn.state != c.CONNECTOR_STATE_ENABLED:
            raise FailedPrecondition("the ERP connector is disabled", reason="CONNECTOR_DISABLED")
        return conn
    found = await connectors_of_kind(connectors.session, c.CONNECTOR_KIND_ERP)
    enabled = [r for r in found if r.state == c.CONNECTOR_STATE_ENABLED]
    if len(enabled) != 1:
        why = "no enabled ERP connector" if not enabled else "several ERP connectors: name connector_id"
        raise FailedPrecondition(why, reason="NO_ERP_CONNECTOR" if not enabled else "SEVERAL_ERP_CONNECTORS")
    return enabled[0]


async def check(
    tx: Transactions, client: SafeClient, tenant: str, req: pb.CheckStockRequest
) -> pb.CheckStockResponse:
    validate(req)
    async with tx.read(tenant) as uow:
        conn = await erp_connector(Connectors(uow), req.connector_id)
        settings = effective_settings(
            conn.provider, json_format.MessageToDict(c.Connector.FromString(conn.body).settings)
        )
        secrets = unsealed_secrets(conn)
    skus = list(dict.fromkeys(line.sku for line in req.lines))
    source, as_of = st.STOCK_DATA_SOURCE_LIVE, None
    try:
        items, as_of = await read_stock(client, settings, secrets, skus)
        extra = rules.substitute_skus(items)
        subs = (await read_stock(client, settings, secrets, extra))[0] if extra else {}
    except SourceError as exc:
        items, subs, as_of = await _snapshot(tx, tenant, conn.connector_id, skus)
        if not items:
            raise Unavailable(
                f"the ERP did not answer ({exc.message}) and no stock sync holds these SKUs"
            ) from exc
        source = st.STOCK_DATA_SOURCE_SNAPSHOT
    known = {**subs, **items}
    limit = req.max_substitutes or rules.DEFAULT_SUBSTITUTES
    lines = [
        rules.assess(line, items.get(line.sku), known, list(req.warehouse_codes), limit) for line in req.lines
    ]
    out = pb.CheckStockResponse(
        lines=lines, all_available=all(x.status == st.STOCK_STATUS_AVAILABLE for x in lines), source=source
    )
    if as_of is not None:
        out.as_of_time.CopyFrom(stamp(as_of))
    return out


async def _snapshot(
    tx: Transactions, tenant: str, connector_id: str, skus: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], datetime | None]:
    async with tx.read(tenant) as uow:
        records = SyncRecords(uow)
        held = await records.held(connector_id, s.SYNC_DATA_KIND_STOCK, skus)
        items = {k: json.loads(r.body) for k, r in held.items() if r.body}
        extra = rules.substitute_skus(items)
        subs_held = await records.held(connector_id, s.SYNC_DATA_KIND_STOCK, extra)
    subs = {k: json.loads(r.body) for k, r in subs_held.items() if r.body}
    synced = [r.synced_at for r in held.values()]
    return items, subs, (min(synced) if synced else None)
