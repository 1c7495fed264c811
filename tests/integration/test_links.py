"""External links: a payment quoting only its contract reaches the linked deal; one link per external record."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import select

from kit.events import EventEnvelope
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import integration_service_pb2 as pb
from services.integration.store import outbox
from tests.integration.conftest import Integration, service_token
from tests.integration.helpers import finance_connector, ingest, payment, standard_headers


def contract_link(link_id: str, external_id: str = "HT-2026-0612", deal_id: str = "D-7") -> c.ExternalLink:
    ref = c.ExternalReference(
        connector_id="fin-1", object_type=c.EXTERNAL_OBJECT_TYPE_CONTRACT, external_id=external_id
    )
    return c.ExternalLink(link_id=link_id, deal_id=deal_id, external=ref)


async def code_of(coro: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await coro  # type: ignore[misc]
    return err.value.code()


async def test_a_linked_contract_gives_the_payment_its_deal(integration: Integration) -> None:
    await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=finance_connector()))
    await integration.call("EnableConnector", pb.EnableConnectorRequest(connector_id="fin-1"))
    made = (
        await integration.call("CreateExternalLink", pb.CreateExternalLinkRequest(link=contract_link("L1")))
    ).link
    assert made.deal_id == "D-7" and made.origin == c.LINK_ORIGIN_MANUAL and made.audit.created_by == "admin"
    again = await integration.call(
        "CreateExternalLink", pb.CreateExternalLinkRequest(link=contract_link("L1"))
    )
    assert again.link.link_id == "L1"  # idempotent
    taken = integration.call(
        "CreateExternalLink", pb.CreateExternalLinkRequest(link=contract_link("L2", deal_id="D-8"))
    )
    assert await code_of(taken) == grpc.StatusCode.ALREADY_EXISTS  # one link per external record
    body = payment("evt_link", deal_id="", contract_id="HT-2026-0612")
    await integration.call_with(
        service_token(), "IngestWebhook", ingest("fin-1", body, standard_headers("evt_link", body))
    )
    async with integration.db.engine.connect() as conn:
        (raw,) = (
            await conn.execute(
                select(outbox.c.envelope).where(outbox.c.type == "integration.PaymentReceived")
            )
        ).one()
    envelope = EventEnvelope.FromString(raw)
    paid = ev.PaymentReceived()
    envelope.payload.Unpack(paid)
    assert paid.deal_id == "D-7" and envelope.subject == "D-7" and paid.contract.external_id == "HT-2026-0612"
    listed = await integration.call("ListExternalLinks", pb.ListExternalLinksRequest(deal_id="D-7"))
    assert [link.link_id for link in listed.links] == ["L1"]
    assert (
        await code_of(integration.call("ListExternalLinks", pb.ListExternalLinksRequest(), user="rep-a1"))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    other = integration.call("DeleteExternalLink", pb.DeleteExternalLinkRequest(link_id="L1"), tenant="acme")
    assert await code_of(other) == grpc.StatusCode.NOT_FOUND
    foreign = integration.call(
        "CreateExternalLink", pb.CreateExternalLinkRequest(link=contract_link("L3")), tenant="acme"
    )
    assert await code_of(foreign) == grpc.StatusCode.NOT_FOUND  # the connector is not theirs
    await integration.call("DeleteExternalLink", pb.DeleteExternalLinkRequest(link_id="L1"))
    assert list((await integration.call("ListExternalLinks", pb.ListExternalLinksRequest())).links) == []
    bad = c.ExternalLink(link_id="L4", external=c.ExternalReference(connector_id="fin-1"))
    assert (
        await code_of(integration.call("CreateExternalLink", pb.CreateExternalLinkRequest(link=bad)))
        == grpc.StatusCode.INVALID_ARGUMENT
    )
