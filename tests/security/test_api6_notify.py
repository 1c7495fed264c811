"""Integrity in notify (OWASP API6-style business-flow abuse and the data integrity holes).

- ids were global primary keys: one tenant's "default" escalation policy (or any id a
  client chose) made another tenant's save fail with INTERNAL;
- one tenant's broken digest stopped the daily sweep for every tenant;
- a delivery was sent before it was recorded, so a crash in between sent an SMS twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.struct_pb2 import Struct
from sqlalchemy import select

from salesops.notify.v1 import channel_config_pb2 as C
from salesops.notify.v1 import delivery_pb2 as D
from salesops.notify.v1 import escalation_pb2, template_pb2
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from services.notify import activities, digests
from services.notify.store import DeliveryRow
from services.notify.workflows import DeliveryRef
from tests.notify import conftest as notify_conftest
from tests.notify.conftest import ADMIN, MINTER, SERVICE, TENANT, NotifyStack, auth, seed_directory, token

notify = notify_conftest.notify  # the fixture

OTHER = "acme"
OTHER_ADMIN = token("admin-x", ["admin"], tenant=OTHER)
OTHER_SERVICE = MINTER.mint_service_token("leads", OTHER)


def _policy(name: str) -> escalation_pb2.EscalationPolicy:
    p = escalation_pb2.EscalationPolicy(escalation_policy_id="default", display_name=name)
    p.initial_ack_timeout.FromSeconds(600)
    step = p.steps.add(manager_role=2)  # ROLE_SUPERVISOR
    step.ack_timeout.FromSeconds(3600)
    return p


async def test_ids_are_unique_per_tenant_not_global(notify: NotifyStack) -> None:
    for who, name in ((ADMIN, "demo chain"), (OTHER_ADMIN, "acme chain")):
        saved = await notify.stub.UpdateEscalationPolicy(
            M.UpdateEscalationPolicyRequest(escalation_policy=_policy(name)), metadata=auth(who)
        )
        assert saved.escalation_policy.display_name == name
    got = await notify.stub.GetEscalationPolicy(
        M.GetEscalationPolicyRequest(escalation_policy_id="default"), metadata=auth(ADMIN)
    )
    assert got.escalation_policy.display_name == "demo chain"
    # A client-made template id and notification id, used by both tenants.
    for who in (ADMIN, OTHER_ADMIN):
        made = await notify.stub.CreateTemplate(
            M.CreateTemplateRequest(
                template=template_pb2.Template(
                    template_id="tpl-shared",
                    template_key="shared",
                    locale="en",
                    category=N.NOTIFICATION_CATEGORY_SYSTEM,
                    title="t",
                    body="b",
                )
            ),
            metadata=auth(who),
        )
        assert made.template.template_id == "tpl-shared"
    await seed_directory(notify.stub, OTHER_SERVICE)
    values = Struct()
    values.update({"title": "hello"})
    for who in (SERVICE, OTHER_SERVICE):
        sent = await notify.stub.SendNotification(
            M.SendNotificationRequest(
                notification=N.Notification(
                    notification_id="01HZZZZZZZZZZZZZZZZZZZZZZZ",
                    category=N.NOTIFICATION_CATEGORY_SYSTEM,
                    recipients=[N.Recipient(user_id="rep-a1")],
                    template=N.TemplateContent(variables=values),
                )
            ),
            metadata=auth(who),
        )
        assert not sent.deduplicated  # a new notification in each tenant


async def test_one_tenants_failing_digest_does_not_stop_the_others(
    notify: NotifyStack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await seed_directory(notify.stub, OTHER_SERVICE)
    values = Struct()
    values.update({"deal_name": "Big deal"})
    for who in (SERVICE, OTHER_SERVICE):
        await notify.stub.SendNotification(
            M.SendNotificationRequest(
                notification=N.Notification(
                    category=N.NOTIFICATION_CATEGORY_APPROVAL_WAITING,
                    recipients=[N.Recipient(user_id="rep-a1")],
                    template=N.TemplateContent(variables=values),
                )
            ),
            metadata=auth(who),
        )
    real = digests.entries

    async def broken_for_acme(session, user_id, day):  # type: ignore[no-untyped-def]
        if session.info.get("tenant") == OTHER:
            raise RuntimeError("acme's digest is broken")
        return await real(session, user_id, day)

    monkeypatch.setattr(digests, "entries", broken_for_acme)
    shanghai = ZoneInfo("Asia/Shanghai")
    at = datetime.combine(datetime.now(shanghai).date(), time(9, 0), tzinfo=shanghai).astimezone(UTC)
    acts = activities.DigestActivities(notify.rt.db, notify.rt.redis)
    from temporalio.testing import ActivityEnvironment

    with caplog.at_level(logging.ERROR, logger="salesops.notify.activities"):
        sent = await ActivityEnvironment().run(acts.sweep, digests.SweepRequest(now=at.isoformat()))
    assert sent == 1  # demo's rep-a1 got a digest although acme's sweep failed
    assert any(OTHER in r.getMessage() for r in caplog.records)


class CrashAfterSend:
    """The provider accepts the first send, then the worker dies before recording it."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def send(self, config: C.ChannelConfig, message: object, *, idempotency_key: str = "") -> str:
        self.keys.append(idempotency_key)
        if len(self.keys) == 1:
            raise RuntimeError("worker killed after the provider accepted the message")
        return "provider-1"


async def _one_delivery(notify: NotifyStack, channel: int, cfg: C.ChannelConfig) -> str:
    await notify.stub.CreateChannelConfig(
        M.CreateChannelConfigRequest(channel_config=cfg), metadata=auth(ADMIN)
    )
    values = Struct()
    values.update({"lead_name": "ACME"})
    sent = await notify.stub.SendNotification(
        M.SendNotificationRequest(
            notification=N.Notification(
                category=N.NOTIFICATION_CATEGORY_LEAD_ASSIGNED,
                recipients=[N.Recipient(user_id="rep-a1")],
                template=N.TemplateContent(variables=values),
                channels=[channel],  # type: ignore[list-item]
            )
        ),
        metadata=auth(SERVICE),
    )
    async with notify.rt.db.session(TENANT) as s:
        return str(
            await s.scalar(
                select(DeliveryRow.id).where(
                    DeliveryRow.notification_id == sent.notification.notification_id,
                    DeliveryRow.channel == channel,
                )
            )
        )


async def test_an_sms_in_doubt_is_resent_under_the_same_idempotency_key(notify: NotifyStack) -> None:
    cfg = C.ChannelConfig(
        display_name="sms",
        channel=N.CHANNEL_SMS,
        enabled=True,
        sms=C.SmsSettings(
            access_key_id="id", sign_name="销售云", access_key_secret=C.Secret(value="0123456789")
        ),
    )
    delivery_id = await _one_delivery(notify, N.CHANNEL_SMS, cfg)
    provider = CrashAfterSend()
    acts = activities.DeliveryActivities(notify.rt.db, {N.CHANNEL_SMS: provider})  # type: ignore[dict-item]
    ref = DeliveryRef(TENANT, delivery_id, "")
    with pytest.raises(RuntimeError):
        await acts.attempt(ref)
    assert await acts.attempt(ref) == "sent"
    # The retry is the same attempt as far as the provider can tell: it drops the duplicate.
    assert provider.keys == [f"{delivery_id}:1", f"{delivery_id}:1"]
    async with notify.rt.db.session(TENANT) as s:
        row = await s.scalar(select(DeliveryRow).where(DeliveryRow.id == delivery_id))
    assert row is not None and row.status == D.DELIVERY_STATUS_SENT and row.attempts == 1


async def test_a_bot_message_in_doubt_is_not_sent_twice(notify: NotifyStack) -> None:
    cfg = C.ChannelConfig(
        display_name="bot",
        channel=N.CHANNEL_WECOM_BOT,
        enabled=True,
        wecom_bot=C.WeComBotSettings(webhook_key=C.Secret(value="0123456789")),
    )
    delivery_id = await _one_delivery(notify, N.CHANNEL_WECOM_BOT, cfg)
    provider = CrashAfterSend()
    acts = activities.DeliveryActivities(notify.rt.db, {N.CHANNEL_WECOM_BOT: provider})  # type: ignore[dict-item]
    ref = DeliveryRef(TENANT, delivery_id, "")
    with pytest.raises(RuntimeError):
        await acts.attempt(ref)
    assert await acts.attempt(ref) == "in_doubt"
    assert len(provider.keys) == 1  # no second post to the group
    async with notify.rt.db.session(TENANT) as s:
        row = await s.scalar(select(DeliveryRow).where(DeliveryRow.id == delivery_id))
    assert row is not None and row.status == D.DELIVERY_STATUS_FAILED and row.last_error_code == "IN_DOUBT"
