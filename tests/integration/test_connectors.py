"""Connectors over real gRPC: typed settings, write-only secrets, states, tests against a loopback system, audit."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.struct_pb2 import Struct
from sqlalchemy import select

from kit import secrets as sealing
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import integration_service_pb2 as pb
from services.integration.store import ConnectorChangeRow, ConnectorRow
from tests.integration.conftest import Integration
from tests.integration.fakes import fake_system
from tests.integration.helpers import SECRET, finance_connector


async def code_of(coro: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await coro  # type: ignore[misc]
    return err.value.code()


async def test_create_hides_secrets_and_shows_a_generated_one_once(integration: Integration) -> None:
    conn = finance_connector(signing_secret="")
    made = await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=conn))
    generated = made.generated_signing_secret
    assert generated.startswith("whsec_") and len(generated) > 30
    got = made.connector
    assert got.state == c.CONNECTOR_STATE_DISABLED and got.health == c.CONNECTOR_HEALTH_UNKNOWN
    assert list(got.secret_names) == ["api_key"] and not got.secrets and not got.inbound.signing_secret
    assert got.inbound.signing_secret_hint == generated[-4:]
    assert got.inbound.endpoint_url == "/hooks/v1/demo/fin-1"
    assert got.audit.created_by == "admin" and got.etag == "1"
    # The same create again is the same connector, and the secret is not shown a second time.
    again = await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=conn))
    assert again.connector.connector_id == "fin-1" and again.generated_signing_secret == ""
    other = finance_connector(signing_secret="")
    other.display_name = "something else"
    assert (
        await code_of(integration.call("CreateConnector", pb.CreateConnectorRequest(connector=other)))
        == grpc.StatusCode.ALREADY_EXISTS
    )
    # At rest: sealed, never the plaintext, and the body holds no secret.
    async with integration.db.session("demo") as session:
        row = await session.scalar(select(ConnectorRow))
    assert row is not None
    raw = row.sealed_secrets + row.sealed_signing_secret + row.body.decode("latin-1")
    assert "the-api-key" not in raw and generated not in raw
    assert sealing.unseal(json.loads(row.sealed_secrets)["api_key"]) == "the-api-key"
    assert sealing.unseal(row.sealed_signing_secret) == generated
    for read in (
        await integration.call("GetConnector", pb.GetConnectorRequest(connector_id="fin-1")),
        await integration.call("ListConnectors", pb.ListConnectorsRequest()),
    ):
        assert "the-api-key" not in str(read) and generated not in str(read)


async def test_typed_settings_every_problem_at_once(integration: Integration) -> None:
    conn = finance_connector()
    conn.settings.update({"base_url": "ftp://x", "colour": "blue"})
    conn.secrets["password"] = "x"
    conn.inbound.verification_public_key = "whpk_AAAA"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=conn))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    for expected in ("settings.base_url", "settings.colour", "secrets.password", "verification_public_key"):
        assert expected in details or expected in str(err.value.trailing_metadata()), expected
    wrong_kind = finance_connector()
    wrong_kind.provider = "dingtalk"
    wrong_kind.settings.Clear()
    code = await code_of(integration.call("CreateConnector", pb.CreateConnectorRequest(connector=wrong_kind)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_admins_only_and_other_tenants_see_nothing(integration: Integration) -> None:
    await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=finance_connector()))
    denied = await code_of(
        integration.call("GetConnector", pb.GetConnectorRequest(connector_id="fin-1"), user="rep-a1")
    )
    assert denied == grpc.StatusCode.PERMISSION_DENIED
    create = pb.CreateConnectorRequest(connector=finance_connector("fin-2"))
    assert (
        await code_of(integration.call("CreateConnector", create, user="director-east"))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    for method, req in [
        ("GetConnector", pb.GetConnectorRequest(connector_id="fin-1")),
        ("EnableConnector", pb.EnableConnectorRequest(connector_id="fin-1")),
        ("TestConnector", pb.TestConnectorRequest(connector_id="fin-1")),
        ("DeleteConnector", pb.DeleteConnectorRequest(connector_id="fin-1")),
    ]:
        assert await code_of(integration.call(method, req, tenant="acme")) == grpc.StatusCode.NOT_FOUND, (
            method
        )
    listed = await integration.call("ListConnectors", pb.ListConnectorsRequest(), tenant="acme")
    assert list(listed.connectors) == []


async def test_update_secrets_write_only_and_audit(integration: Integration) -> None:
    await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=finance_connector()))
    incoming = c.Connector(
        connector_id="fin-1", display_name="Kingdee east (prod)", secrets={"api_key": "rotated-key"}, etag="1"
    )
    updated = (
        await integration.call(
            "UpdateConnector",
            pb.UpdateConnectorRequest(
                connector=incoming, update_mask=FieldMask(paths=["display_name", "secrets.api_key"])
            ),
        )
    ).connector
    assert updated.display_name == "Kingdee east (prod)" and updated.etag == "2" and not updated.secrets
    stale = await code_of(
        integration.call(
            "UpdateConnector",
            pb.UpdateConnectorRequest(connector=incoming, update_mask=FieldMask(paths=["display_name"])),
        )
    )
    assert stale == grpc.StatusCode.ABORTED
    immutable = c.Connector(connector_id="fin-1", provider="erp_http")
    code = await code_of(
        integration.call(
            "UpdateConnector",
            pb.UpdateConnectorRequest(connector=immutable, update_mask=FieldMask(paths=["provider"])),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    await integration.call("EnableConnector", pb.EnableConnectorRequest(connector_id="fin-1"))
    blocked = await code_of(
        integration.call("DeleteConnector", pb.DeleteConnectorRequest(connector_id="fin-1"))
    )
    assert blocked == grpc.StatusCode.FAILED_PRECONDITION
    await integration.call(
        "DisableConnector", pb.DisableConnectorRequest(connector_id="fin-1", reason="maintenance")
    )
    await integration.call("DeleteConnector", pb.DeleteConnectorRequest(connector_id="fin-1"))
    async with integration.db.session("demo") as session:
        changes = list(
            await session.scalars(
                select(ConnectorChangeRow).order_by(
                    ConnectorChangeRow.changed_at, ConnectorChangeRow.change_id
                )
            )
        )
    assert [(ch.action, ch.changed_by) for ch in changes] == [
        ("create", "admin"),
        ("update", "admin"),
        ("enable", "admin"),
        ("disable", "admin"),
        ("delete", "admin"),
    ]
    assert changes[1].fields == "display_name,secrets.api_key" and changes[3].reason == "maintenance"
    # Readable by admins after the delete, page by page, oldest first; nobody else, no other tenant.
    seen: list[c.ConnectorChange] = []
    token = ""
    while True:
        page = await integration.call(
            "ListConnectorChanges",
            pb.ListConnectorChangesRequest(connector_id="fin-1", page_size=2, page_token=token),
        )
        seen += page.changes
        token = page.next_page_token
        if not token:
            break
    assert [ch.action for ch in seen] == ["create", "update", "enable", "disable", "delete"]
    assert list(seen[1].fields) == ["display_name", "secrets.api_key"] and seen[0].changed_by == "admin"
    for user, tenant, expected in (
        ("rep-a1", "demo", grpc.StatusCode.PERMISSION_DENIED),
        ("admin", "acme", grpc.StatusCode.NOT_FOUND),
    ):
        req = pb.ListConnectorChangesRequest(connector_id="fin-1")
        assert (
            await code_of(integration.call("ListConnectorChanges", req, user=user, tenant=tenant)) == expected
        )
    assert all("rotated-key" not in ch.fields + ch.reason and SECRET not in ch.fields for ch in changes)


async def test_connection_test_against_a_loopback_system_moves_health(integration: Integration) -> None:
    async with fake_system() as system:
        await integration.call(
            "CreateConnector", pb.CreateConnectorRequest(connector=finance_connector(base_url=system.url))
        )
        ok = (await integration.call("TestConnector", pb.TestConnectorRequest(connector_id="fin-1"))).result
        assert ok.ok and ok.checks[0].name == "auth" and ok.tested_by == "admin"
        assert system.seen[-1][1]["authorization"] == "Bearer the-api-key"
        got = (await integration.call("GetConnector", pb.GetConnectorRequest(connector_id="fin-1"))).connector
        assert (
            got.health == c.CONNECTOR_HEALTH_HEALTHY
            and got.HasField("last_success_time")
            and got.last_test.ok
        )
        # A candidate key is tried without being saved; the stored state does not move.
        bad = await integration.call(
            "TestConnector",
            pb.TestConnectorRequest(
                connector_id="fin-1", candidate=c.Connector(secrets={"api_key": "wrong"})
            ),
        )
        assert not bad.result.ok and bad.result.checks[0].message == "answered HTTP 401"
        assert "wrong" not in str(bad)
        assert (
            await integration.call("GetConnector", pb.GetConnectorRequest(connector_id="fin-1"))
        ).connector.health == c.CONNECTOR_HEALTH_HEALTHY
        # A DingTalk connector: its token endpoint refuses a wrong secret.
        settings = Struct()
        settings.update({"base_url": system.url, "app_key": system.app_key})
        ding = c.Connector(
            connector_id="ding-1",
            display_name="DingTalk",
            kind=c.CONNECTOR_KIND_MESSAGING,
            provider="dingtalk",
            settings=settings,
            secrets={"app_secret": "nope"},
        )
        await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=ding))
        failing = (
            await integration.call("TestConnector", pb.TestConnectorRequest(connector_id="ding-1"))
        ).result
        assert not failing.ok and "errcode 40001" in failing.checks[0].message
        got = (
            await integration.call("GetConnector", pb.GetConnectorRequest(connector_id="ding-1"))
        ).connector
        assert (
            got.health == c.CONNECTOR_HEALTH_FAILING
            and got.last_error.startswith("test: auth")
            and got.HasField("last_error_time")
        )
        good = await integration.call(
            "TestConnector",
            pb.TestConnectorRequest(
                connector_id="ding-1", candidate=c.Connector(secrets={"app_secret": system.app_secret})
            ),
        )
        assert good.result.ok


async def test_outbound_calls_refuse_private_addresses_and_redirects(
    integration: Integration, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fake_system() as system:
        await integration.call(
            "CreateConnector",
            pb.CreateConnectorRequest(connector=finance_connector(base_url="http://169.254.169.254")),
        )
        meta = (await integration.call("TestConnector", pb.TestConnectorRequest(connector_id="fin-1"))).result
        assert not meta.ok and meta.checks[0].message == "address refused by the outbound policy"
        conn = finance_connector("fin-2", base_url=system.url)
        conn.settings.update({"health_path": "/moved"})
        await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=conn))
        moved = (
            await integration.call("TestConnector", pb.TestConnectorRequest(connector_id="fin-2"))
        ).result
        assert not moved.ok and moved.checks[0].message == "answered HTTP 302"  # not followed
