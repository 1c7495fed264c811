"""OWASP API3 (object property level) in notify: output-only input is ignored on create and
update (one sanitiser driven by the contract's field_behavior), secrets and webhook header
values are sealed at rest and never returned.

Before: a create persisted whatever output-only fields the caller sent (health, audit...),
channel secrets and webhook header values were stored in plaintext, and header values
came back in every response.
"""

from __future__ import annotations

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import select

from salesops.common.v1 import types_pb2
from salesops.notify.v1 import channel_config_pb2 as C
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.notify.v1 import template_pb2
from services.notify.store import ChannelConfigRow
from tests.notify import conftest as notify_conftest
from tests.notify.conftest import ADMIN, TENANT, NotifyStack, auth

notify = notify_conftest.notify  # the fixture


@pytest.fixture(autouse=True)
def loopback_destinations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESOPS_OUTBOUND_ALLOW", "127.0.0.1")


def _audit() -> types_pb2.Audit:
    audit = types_pb2.Audit(created_by="mallory")
    audit.create_time.FromSeconds(1)
    return audit


async def test_output_only_fields_of_a_channel_config_are_ignored_and_secrets_sealed(
    notify: NotifyStack,
) -> None:
    cfg = C.ChannelConfig(
        display_name="ops hook",
        channel=N.CHANNEL_WEBHOOK,
        enabled=True,
        webhook=C.WebhookSettings(
            url="http://127.0.0.1:9/hook",
            signing_secret=C.Secret(value="whsec-0123456789", hint="FAKE"),
            headers={"Authorization": "Bearer downstream-token-42"},
        ),
        audit=_audit(),
    )
    cfg.health.consecutive_failures = 99
    created = (
        await notify.stub.CreateChannelConfig(
            M.CreateChannelConfigRequest(channel_config=cfg), metadata=auth(ADMIN)
        )
    ).channel_config
    got = (
        await notify.stub.GetChannelConfig(
            M.GetChannelConfigRequest(channel_config_id=created.channel_config_id), metadata=auth(ADMIN)
        )
    ).channel_config
    for shown in (created, got):
        assert not shown.HasField("health") and not shown.HasField("audit")
        assert shown.webhook.signing_secret.set and shown.webhook.signing_secret.hint == "6789"
        assert not shown.webhook.signing_secret.value
        assert dict(shown.webhook.headers) == {"Authorization": ""}  # names only
    async with notify.rt.db.session(TENANT) as s:
        payload = await s.scalar(
            select(ChannelConfigRow.payload).where(ChannelConfigRow.id == created.channel_config_id)
        )
    assert payload is not None
    assert b"whsec-0123456789" not in payload and b"downstream-token-42" not in payload
    stored = C.ChannelConfig.FromString(payload)
    assert stored.webhook.signing_secret.value.startswith("sealed:v1:")
    assert stored.webhook.headers["Authorization"].startswith("sealed:v1:")
    # Saving back what was read (values empty) keeps the stored secret and header values.
    got.display_name = "renamed"
    got.health.consecutive_failures = 7
    renamed = (
        await notify.stub.UpdateChannelConfig(
            M.UpdateChannelConfigRequest(
                channel_config=got, update_mask=FieldMask(paths=["display_name", "webhook", "health"])
            ),
            metadata=auth(ADMIN),
        )
    ).channel_config
    assert renamed.display_name == "renamed" and not renamed.HasField("health")
    async with notify.rt.db.session(TENANT) as s:
        again = C.ChannelConfig.FromString(
            await s.scalar(
                select(ChannelConfigRow.payload).where(ChannelConfigRow.id == created.channel_config_id)
            )
        )
    assert again.webhook.signing_secret.value == stored.webhook.signing_secret.value
    assert again.webhook.headers["Authorization"] == stored.webhook.headers["Authorization"]


async def test_output_only_fields_of_a_template_are_ignored(notify: NotifyStack) -> None:
    draft = template_pb2.Template(
        template_key="probe",
        locale="en",
        category=N.NOTIFICATION_CATEGORY_SYSTEM,
        title="t",
        body="b",
        built_in=True,
        revision=41,
        audit=_audit(),
    )
    created = (
        await notify.stub.CreateTemplate(M.CreateTemplateRequest(template=draft), metadata=auth(ADMIN))
    ).template
    got = (
        await notify.stub.GetTemplate(
            M.GetTemplateRequest(template_id=created.template_id), metadata=auth(ADMIN)
        )
    ).template
    for shown in (created, got):
        assert not shown.built_in and shown.revision == 1 and not shown.HasField("audit")


async def test_header_values_are_checked_as_given_before_they_are_sealed(notify: NotifyStack) -> None:
    import grpc

    cfg = C.ChannelConfig(
        display_name="hook",
        channel=N.CHANNEL_WEBHOOK,
        enabled=True,
        webhook=C.WebhookSettings(url="http://127.0.0.1:9/hook", headers={"X-Env": "prod\r\nX-Injected: 1"}),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.CreateChannelConfig(
            M.CreateChannelConfigRequest(channel_config=cfg), metadata=auth(ADMIN)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
