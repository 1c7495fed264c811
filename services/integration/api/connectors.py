"""Connectors: create, read, list, update, delete, test, enable, disable (admins)."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import integration_service_pb2 as pb
from services.integration import adapters, connectors, sync_schedules
from services.integration.access import require_admin
from services.integration.api.base import ApiBase, Ctx, now
from services.integration.presenters import ConnectorPresenter, present_change
from services.integration.repositories.connectors import ConnectorChanges, Connectors

PRESENT = ConnectorPresenter()


class ConnectorsApi(ApiBase):
    async def CreateConnector(
        self, request: pb.CreateConnectorRequest, context: Ctx
    ) -> pb.CreateConnectorResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        row, generated = await self.write(
            who, lambda uow: connectors.create_connector(uow, who, request.connector, at)
        )
        return pb.CreateConnectorResponse(
            connector=PRESENT.present(who, row), generated_signing_secret=generated
        )

    async def GetConnector(self, request: pb.GetConnectorRequest, context: Ctx) -> pb.GetConnectorResponse:
        who = call.principal()
        require_admin(who)
        async with self.read(who) as uow:
            row = await Connectors(uow).get(request.connector_id)
        return pb.GetConnectorResponse(connector=PRESENT.present(who, row))

    async def ListConnectors(
        self, request: pb.ListConnectorsRequest, context: Ctx
    ) -> pb.ListConnectorsResponse:
        who = call.principal()
        require_admin(who)
        page = PageRequest.parse(request.page_size, request.page_token)
        async with self.read(who) as uow:
            found = await Connectors(uow).page(request.kind, request.state, page)
        return pb.ListConnectorsResponse(
            connectors=[PRESENT.present(who, r) for r in found.items], next_page_token=found.next_page_token
        )

    async def UpdateConnector(
        self, request: pb.UpdateConnectorRequest, context: Ctx
    ) -> pb.UpdateConnectorResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        row = await self.write(
            who, lambda uow: connectors.update_connector(uow, who, request.connector, request.update_mask, at)
        )
        return pb.UpdateConnectorResponse(connector=PRESENT.present(who, row))

    async def DeleteConnector(
        self, request: pb.DeleteConnectorRequest, context: Ctx
    ) -> pb.DeleteConnectorResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        await self.write(
            who, lambda uow: connectors.delete_connector(uow, who, request.connector_id, request.etag, at)
        )
        return pb.DeleteConnectorResponse()

    async def EnableConnector(
        self, request: pb.EnableConnectorRequest, context: Ctx
    ) -> pb.EnableConnectorResponse:
        who = call.principal()
        require_admin(who)
        at = now()

        async def work(uow: UnitOfWork) -> object:
            return await connectors.set_state(
                uow, who, request.connector_id, c.CONNECTOR_STATE_ENABLED, request.etag, "", at
            )

        row = await self.write(who, work)
        await sync_schedules.follow_connector(self.rt, self.tx, who.tenant, row)  # type: ignore[arg-type]
        return pb.EnableConnectorResponse(connector=PRESENT.present(who, row))  # type: ignore[arg-type]

    async def DisableConnector(
        self, request: pb.DisableConnectorRequest, context: Ctx
    ) -> pb.DisableConnectorResponse:
        who = call.principal()
        require_admin(who)
        at = now()

        async def work(uow: UnitOfWork) -> object:
            return await connectors.set_state(
                uow, who, request.connector_id, c.CONNECTOR_STATE_DISABLED, request.etag, request.reason, at
            )

        row = await self.write(who, work)
        await sync_schedules.follow_connector(self.rt, self.tx, who.tenant, row)  # type: ignore[arg-type]
        return pb.DisableConnectorResponse(connector=PRESENT.present(who, row))  # type: ignore[arg-type]

    async def TestConnector(self, request: pb.TestConnectorRequest, context: Ctx) -> pb.TestConnectorResponse:
        """Read the configuration, call out with no transaction open, then record the result."""
        who = call.principal()
        require_admin(who)
        async with self.read(who) as uow:
            row = await Connectors(uow).get(request.connector_id)
            settings, secrets = connectors.check_candidate(row, request.candidate)
            provider = row.provider
        checks = await adapters.run_test(provider, settings, secrets, self.outbound)
        at = now()
        stamp = Timestamp()
        stamp.FromDatetime(at)
        result = c.ConnectionTestResult(
            ok=all(ch.ok for ch in checks), checks=checks, test_time=stamp, tested_by=who.user_id
        )
        if not request.HasField("candidate"):  # a candidate's test says nothing about the stored connector
            await self.write(
                who, lambda uow: connectors.record_test(uow, who, request.connector_id, result, at)
            )
        return pb.TestConnectorResponse(result=result)

    async def ListConnectorChanges(
        self, request: pb.ListConnectorChangesRequest, context: Ctx
    ) -> pb.ListConnectorChangesResponse:
        who = call.principal()
        require_admin(who)
        page = PageRequest.parse(request.page_size, request.page_token)
        async with self.read(who) as uow:
            found = await ConnectorChanges(uow).page(request.connector_id, page)
            if not found.items and not request.page_token:
                await Connectors(uow).get(request.connector_id)  # NOT_FOUND: unknown here (another tenant's)
        return pb.ListConnectorChangesResponse(
            changes=[present_change(r) for r in found.items], next_page_token=found.next_page_token
        )
