"""Inbound webhooks: the kept connector snapshots never outlive a rotation, a disable or a delete,
and a burst written in groups answers every delivery as if it were alone."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import select

from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration import webhook_checks, webhooks
from services.integration.api.ingest_groups import IngestGroups
from services.integration.store import ConnectorRow, ReceivedWebhookRow, transactions
from tests.integration.conftest import Integration
from tests.integration.helpers import finance_connector, ingest, payment, standard_headers
from tests.integration.test_inbound import emitted, ready, refused, send, stored

NEW_SECRET = "whsec_" + base64.b64encode(b"the rotated secret, 32 bytes ...").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"a re-created connector's secret.").decode()


def signed(event_id: str, secret: str | None = None) -> pb.IngestWebhookRequest:
    body = payment(event_id)
    headers = (
        standard_headers(event_id, body)
        if secret is None
        else standard_headers(event_id, body, secret=secret)
    )
    return ingest("fin-1", body, headers)


async def rotate(integration: Integration, secret: str) -> None:
    conn = c.Connector(connector_id="fin-1", inbound=c.InboundWebhookConfig(signing_secret=secret))
    await integration.call(
        "UpdateConnector",
        pb.UpdateConnectorRequest(connector=conn, update_mask=FieldMask(paths=["inbound.signing_secret"])),
    )


async def test_a_rotated_secret_is_refused_at_its_first_use(integration: Integration) -> None:
    await ready(integration)
    assert not (await send(integration, signed("evt_before"))).duplicate  # the snapshot is kept
    await rotate(integration, NEW_SECRET)
    # The old secret passes the kept snapshot, but the write finds the row changed: refused.
    assert await refused(integration, signed("evt_old_1")) == grpc.StatusCode.UNAUTHENTICATED
    assert not (await send(integration, signed("evt_new_1", NEW_SECRET))).duplicate
    await rotate(integration, OTHER_SECRET)
    # The new secret fails the kept (older) snapshot: the current row decides, and takes it.
    assert not (await send(integration, signed("evt_other", OTHER_SECRET))).duplicate
    assert await refused(integration, signed("evt_new_2", NEW_SECRET)) == grpc.StatusCode.UNAUTHENTICATED
    assert sorted(r.external_event_id for r in await stored(integration)) == [
        "evt_before",
        "evt_new_1",
        "evt_other",
    ]


async def test_disable_and_delete_apply_to_the_next_delivery(integration: Integration) -> None:
    await ready(integration)
    assert not (await send(integration, signed("evt_1"))).duplicate
    await integration.call("DisableConnector", pb.DisableConnectorRequest(connector_id="fin-1"))
    assert await refused(integration, signed("evt_2")) == grpc.StatusCode.UNAVAILABLE
    await integration.call("EnableConnector", pb.EnableConnectorRequest(connector_id="fin-1"))
    assert not (await send(integration, signed("evt_2"))).duplicate
    await integration.call("DisableConnector", pb.DisableConnectorRequest(connector_id="fin-1"))
    await integration.call("DeleteConnector", pb.DeleteConnectorRequest(connector_id="fin-1"))
    assert await refused(integration, signed("evt_3")) == grpc.StatusCode.NOT_FOUND
    # Created again under the same id (its version starts at 1 again), with another secret.
    await ready(integration, finance_connector(signing_secret=OTHER_SECRET))
    assert await refused(integration, signed("evt_4")) == grpc.StatusCode.UNAUTHENTICATED
    assert not (await send(integration, signed("evt_4", OTHER_SECRET))).duplicate


async def test_a_burst_is_answered_delivery_by_delivery(integration: Integration) -> None:
    await ready(integration)
    forged = signed("evt_forged", NEW_SECRET)
    requests = [signed(f"evt_{n % 20}") for n in range(40)] + [forged]
    answers: list[Any] = await asyncio.gather(
        *(send(integration, r) for r in requests), return_exceptions=True
    )
    refusal = answers.pop()
    assert isinstance(refusal, grpc.aio.AioRpcError) and refusal.code() == grpc.StatusCode.UNAUTHENTICATED
    by_event: dict[str, set[str]] = {}
    for req, answer in zip(requests, answers, strict=False):
        assert answer.state == wh.RECEIVED_WEBHOOK_STATE_PROCESSED
        by_event.setdefault(req.headers["webhook-id"], set()).add(answer.received_webhook_id)
    assert sum(not a.duplicate for a in answers) == 20 and all(len(ids) == 1 for ids in by_event.values())
    rows = await stored(integration)
    assert len(rows) == 20 and sum(r.duplicate_count for r in rows) == 20
    assert len(await emitted(integration, "integration.PaymentReceived")) == 20
    async with integration.db.session("demo") as session:
        assert (
            await session.scalar(
                select(ReceivedWebhookRow).where(ReceivedWebhookRow.external_event_id == "evt_forged")
            )
            is None
        )


async def test_groups_write_what_waits_together_and_a_failed_group_alone() -> None:
    calls: list[list[str]] = []
    release = asyncio.Event()

    async def write(tenant: str, deliveries: list[Any]) -> list[Any]:
        calls.append(list(deliveries))
        if len(calls) == 1:
            await release.wait()
        if len(deliveries) > 1 and len(calls) == 2:
            raise RuntimeError("the group's transaction failed")
        return [(d, False) for d in deliveries]

    groups: Any = IngestGroups(write)  # deliveries stand in as strings: only the grouping is tested
    first = asyncio.ensure_future(groups.record("demo", "a"))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(groups.record("demo", x)) for x in "bcd"]
    await asyncio.sleep(0)
    release.set()
    assert await first == ("a", False)
    assert [await r for r in rest] == [("b", False), ("c", False), ("d", False)]
    # One alone, then the three that waited in one group, which failed: each written alone.
    assert calls[0] == ["a"] and calls[1] == ["b", "c", "d"] and sorted(calls[2:]) == [["b"], ["c"], ["d"]]


async def test_after_a_group_the_next_waits_briefly_for_more() -> None:
    """Deliveries arriving one by one just after a group go together (the linger), not one alone
    and the rest behind it; a lone sender's delivery is still written at once."""
    calls: list[list[str]] = []
    release = asyncio.Event()

    async def write(tenant: str, deliveries: list[Any]) -> list[Any]:
        calls.append(list(deliveries))
        if len(calls) == 1:
            await release.wait()
        return [(d, False) for d in deliveries]

    groups: Any = IngestGroups(write, linger=30.0)  # ends early: as many came back as were answered
    first = asyncio.ensure_future(groups.record("demo", "a"))
    await asyncio.sleep(0)
    waiting = [asyncio.ensure_future(groups.record("demo", x)) for x in "bc"]
    await asyncio.sleep(0)
    release.set()
    assert [await t for t in (first, *waiting)] == [("a", False), ("b", False), ("c", False)]
    later = asyncio.ensure_future(groups.record("demo", "d"))
    await asyncio.sleep(0.01)
    assert calls == [["a"], ["b", "c"]]  # "d" waits for a second one (or the linger's end)
    assert await groups.record("demo", "e") == ("e", False)
    assert await later == ("d", False)
    assert calls[2] == ["d", "e"]
    alone: Any = IngestGroups(write, linger=30.0)
    assert await asyncio.wait_for(alone.record("other", "f"), 5) == ("f", False)  # no group before it
    assert calls[3] == ["f"]


async def connector_row(integration: Integration) -> ConnectorRow:
    async with integration.db.session("demo") as session:
        return (await session.scalars(select(ConnectorRow).where(ConnectorRow.connector_id == "fin-1"))).one()


async def test_health_is_written_when_it_changes_not_per_delivery(integration: Integration) -> None:
    """A group reads the connector's stamp and health without its row; the row is rewritten only on
    a change: a failure, a recovery, or the once-a-minute success refresh."""
    await ready(integration)
    assert not (await send(integration, signed("evt_h1"))).duplicate
    first = await connector_row(integration)
    assert first.health == c.CONNECTOR_HEALTH_HEALTHY and first.last_success_at is not None
    assert not (await send(integration, signed("evt_h2"))).duplicate
    assert (await connector_row(integration)).last_success_at == first.last_success_at  # within the minute
    broken = payment("evt_h3", amount="12.50")  # type: ignore[arg-type]
    failed = await send(integration, ingest("fin-1", broken, standard_headers("evt_h3", broken)))
    assert failed.state == wh.RECEIVED_WEBHOOK_STATE_FAILED
    degraded = await connector_row(integration)
    assert degraded.health == c.CONNECTOR_HEALTH_DEGRADED and "evt_h3" in degraded.last_error
    assert not (await send(integration, signed("evt_h4"))).duplicate  # recovers at once
    assert (await connector_row(integration)).health == c.CONNECTOR_HEALTH_HEALTHY
    # An hour later (as the row says) the next success refreshes it.
    async with integration.db.session("demo") as session:
        row = (await session.scalars(select(ConnectorRow).where(ConnectorRow.connector_id == "fin-1"))).one()
        row.last_success_at = first.last_success_at.replace(year=2000) if first.last_success_at else None
        await session.commit()
    assert not (await send(integration, signed("evt_h5"))).duplicate
    refreshed = (await connector_row(integration)).last_success_at
    assert refreshed is not None and refreshed.year > 2000


class RolledBack(Exception):
    pass


async def test_a_prepared_delivery_is_written_afresh_by_every_run(integration: Integration) -> None:
    """Records and events are built before the transaction (prepare); a run that rolls back (a
    unique-key clash, a failed group) leaves them as built, so the next run counts a twin once."""
    await ready(integration)
    tx = transactions(integration.db)
    async with tx.read("demo") as uow:
        found = await webhook_checks.load_receiver(uow, "fin-1")
    at = datetime.now(UTC)
    deliveries = [
        webhooks.delivery("demo", tx.source, r, webhook_checks.check("demo", found, r, at), at, None)
        for r in (signed("evt_twice"), signed("evt_twice"))
    ]

    async def rolled_back(uow: Any) -> None:
        await webhooks.record(uow, deliveries)
        raise RolledBack

    with pytest.raises(RolledBack):
        await tx.run("demo", rolled_back)
    got = await tx.run("demo", lambda uow: webhooks.record(uow, deliveries))
    assert [a is not None and a[1] for a in got] == [False, True]
    rows = await stored(integration)
    assert len(rows) == 1 and rows[0].duplicate_count == 1
    assert rows[0].state == wh.RECEIVED_WEBHOOK_STATE_PROCESSED and rows[0].attempt_count == 1
    assert len(await emitted(integration, "integration.PaymentReceived")) == 1
