"""Paging is correct on every List RPC of NotifyService (AIP-158), found from the service descriptor.

For each one, over a data set with ties in the sort key: walking the pages with any page size from 1
to 7 returns every row exactly once, in the documented order, with the same total_size on every page
where the contract has one; a page token used by another tenant, with another query, or forged is
INVALID_ARGUMENT. A List RPC added to the contract without a seeder here fails the suite.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesops.common.v1 import types_pb2
from salesops.notify.v1 import channel_config_pb2 as C
from salesops.notify.v1 import escalation_pb2, notify_service_pb2_grpc, subscriber_pb2, template_pb2
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from services.notify.domain.templates import built_in_templates
from tests.notify.conftest import ADMIN, REP_A1, SERVICE, NotifyStack, auth, token

SERVICE_DESCRIPTOR = M.DESCRIPTOR.services_by_name["NotifyService"]
LIST_RPCS = sorted(m.name for m in SERVICE_DESCRIPTOR.methods if m.name.startswith("List"))
# In the contract, answered UNIMPLEMENTED until admin-defined rules exist (the mapping is code).
NOT_BUILT = {"ListNotificationRules"}
OTHER_TENANT = {
    ADMIN: token("admin-x", ["admin"], tenant="acme"),
    REP_A1: token("rep-a1", ["rep"], tenant="acme"),
}


@dataclass(frozen=True)
class Query:
    """One way of listing: who asks, the request (without paging), where the items are, each item's
    id and its documented sort key (ties broken by the id), and another query a token must not serve
    (None when the request has no filter to vary)."""

    who: str
    request: Callable[[], Message]
    items: str
    ident: Callable[[Any], str]
    key: Callable[[Any], Any]
    other: Callable[[Message], None] | None
    has_total: bool = True
    paged: bool = True


@dataclass
class World:
    notifications: list[str]
    to_rep_a1: list[str]
    deliveries: int
    templates: list[str]
    configs: list[str]
    policies: list[str]
    subscribers: list[str]
    devices: list[str]


def desc(text: str) -> tuple[int, ...]:
    """A string's descending order as an ascending key."""
    return (*(-ord(c) for c in text), 1)


def queries(world: World) -> dict[str, tuple[Query, set[str] | int]]:
    """Per List RPC: a query and what it must return (ids, or just how many)."""
    builtins = {f"builtin.{t.key}.{t.locale}" for t in built_in_templates()}
    return {
        "ListNotifications": (
            Query(
                ADMIN,
                lambda: M.ListNotificationsRequest(),
                "notifications",
                lambda n: n.notification_id,
                lambda n: desc(n.notification_id),
                lambda r: r.filter.categories.append(N.NOTIFICATION_CATEGORY_SLA_REMINDER),  # type: ignore[attr-defined]
            ),
            set(world.notifications),
        ),
        "ListDeliveries": (
            Query(
                ADMIN,
                lambda: M.ListDeliveriesRequest(notification_id="-"),
                "deliveries",
                lambda d: d.delivery_id,
                lambda d: desc(d.delivery_id),
                lambda r: r.filter.statuses.append(4),  # type: ignore[attr-defined]
            ),
            world.deliveries,
        ),
        "ListInboxItems": (
            Query(
                REP_A1,
                lambda: M.ListInboxItemsRequest(),
                "items",
                lambda i: i.notification_id,
                lambda i: desc(i.item_id),
                lambda r: setattr(r.filter, "unread_only", True),  # type: ignore[attr-defined]
            ),
            set(world.to_rep_a1),
        ),
        "ListTemplates": (
            Query(
                ADMIN,
                lambda: M.ListTemplatesRequest(),
                "templates",
                lambda t: t.template_id,
                lambda t: (t.template_key, t.locale, t.template_id),
                lambda r: setattr(r.filter, "locale", "en"),  # type: ignore[attr-defined]
            ),
            set(world.templates) | builtins,
        ),
        "ListChannelConfigs": (
            Query(
                ADMIN,
                lambda: M.ListChannelConfigsRequest(),
                "channel_configs",
                lambda c: c.channel_config_id,
                lambda c: (int(c.channel), c.display_name, c.channel_config_id),
                lambda r: setattr(r, "channel", N.CHANNEL_SMS),
            ),
            set(world.configs),
        ),
        "ListEscalationPolicies": (
            Query(
                ADMIN,
                lambda: M.ListEscalationPoliciesRequest(),
                "escalation_policies",
                lambda p: p.escalation_policy_id,
                lambda p: (p.display_name, p.escalation_policy_id),
                None,  # no filter in the request
            ),
            set(world.policies) | {"default"},
        ),
        "ListSubscribers": (
            Query(
                ADMIN,
                lambda: M.ListSubscribersRequest(),
                "subscribers",
                lambda s: s.user_id,
                lambda s: (s.org_unit_path, s.display_name, s.user_id),
                lambda r: setattr(r, "role", types_pb2.ROLE_REP),
            ),
            set(world.subscribers),
        ),
        "ListDevices": (
            Query(
                REP_A1,
                lambda: M.ListDevicesRequest(),
                "devices",
                lambda d: d.device_id,
                # Most recently registered first (seeded in order, so the last is newest).
                lambda d: -world.devices.index(d.device_id),
                None,
                has_total=False,
                paged=False,
            ),
            set(world.devices),
        ),
    }


async def seed(stack: NotifyStack) -> World:
    stub = stack.stub
    admin, svc = auth(ADMIN), auth(SERVICE)
    # Subscribers with ties in (org unit, display name).
    extra = [
        subscriber_pb2.Subscriber(
            user_id=f"pg-{n}",
            display_name=f"Twin {n % 2}",
            org_unit_path="east/team-a",
            active=True,
            roles=[types_pb2.ROLE_REP],
            phone=f"+8613900000{n:03d}",  # type: ignore[list-item]
        )
        for n in range(6)
    ]
    await stub.BatchUpsertSubscribers(M.BatchUpsertSubscribersRequest(subscribers=extra), metadata=svc)
    subscribers = [
        s.user_id
        for s in (
            await stub.ListSubscribers(M.ListSubscribersRequest(page_size=500), metadata=admin)
        ).subscribers
    ]
    # Channel configs with ties in (channel, display name); one SMS config carries the deliveries.
    configs = []
    for n, (channel, kind) in enumerate(
        [
            (N.CHANNEL_SMS, "sms"),
            (N.CHANNEL_SMS, "sms"),
            (N.CHANNEL_WECOM_BOT, "wecom_bot"),
            (N.CHANNEL_WECOM_BOT, "wecom_bot"),
            (N.CHANNEL_DINGTALK_BOT, "dingtalk_bot"),
        ]
    ):
        cfg = C.ChannelConfig(display_name=f"cfg {n // 2}", channel=channel, enabled=True)  # type: ignore[arg-type]
        if kind == "sms":
            cfg.sms.CopyFrom(
                C.SmsSettings(
                    access_key_id="k", sign_name="s", access_key_secret=C.Secret(value="secret-123456")
                )
            )
        elif kind == "wecom_bot":
            cfg.wecom_bot.CopyFrom(C.WeComBotSettings(webhook_key=C.Secret(value="key-123456789")))
        else:
            cfg.dingtalk_bot.CopyFrom(C.DingTalkBotSettings(access_token=C.Secret(value="tok-123456789")))
        made = await stub.CreateChannelConfig(
            M.CreateChannelConfigRequest(channel_config=cfg), metadata=admin
        )
        configs.append(made.channel_config.channel_config_id)
    # Templates: a tenant override ties with its built-in on (key, locale).
    templates = []
    for key, locale in [("sla_reminder", "zh-CN"), ("aa.one", "en"), ("aa.one", "zh-CN"), ("zz.last", "en")]:
        t = template_pb2.Template(
            template_key=key,
            locale=locale,
            category=N.NOTIFICATION_CATEGORY_SYSTEM
            if key != "sla_reminder"
            else N.NOTIFICATION_CATEGORY_SLA_REMINDER,
            title="t",
            body="b",
        )
        templates.append(
            (
                await stub.CreateTemplate(M.CreateTemplateRequest(template=t), metadata=admin)
            ).template.template_id
        )
    # Escalation policies with ties in display name.
    policies = []
    for n in range(4):
        p = escalation_pb2.EscalationPolicy(display_name=f"Chain {n // 2}")
        p.initial_ack_timeout.FromSeconds(600)
        step = p.steps.add(manager_role=types_pb2.ROLE_SUPERVISOR)
        step.ack_timeout.FromSeconds(600)
        made_p = await stub.CreateEscalationPolicy(
            M.CreateEscalationPolicyRequest(escalation_policy=p), metadata=admin
        )
        policies.append(made_p.escalation_policy.escalation_policy_id)
    # Notifications (with SMS deliveries) to a few users; rate limits allow 5 per user.
    notifications, to_rep_a1 = [], []
    values = Struct()
    values.update({"title": "paging"})
    for n in range(9):
        user = ["rep-a1", "rep-a2", "rep-b1"][n % 3]
        sent = await stub.SendNotification(
            M.SendNotificationRequest(
                notification=N.Notification(
                    category=N.NOTIFICATION_CATEGORY_SYSTEM,
                    recipients=[N.Recipient(user_id=user)],
                    template=N.TemplateContent(variables=values),
                    channels=[N.CHANNEL_SMS],
                )
            ),
            metadata=svc,
        )
        notifications.append(sent.notification.notification_id)
        if user == "rep-a1":
            to_rep_a1.append(sent.notification.notification_id)
    every = await stub.ListDeliveries(
        M.ListDeliveriesRequest(notification_id="-", page_size=500), metadata=admin
    )
    deliveries = len(every.deliveries)
    assert deliveries >= 9
    devices = []
    for n in range(3):
        d = subscriber_pb2.Device(
            device_id=f"dev-{n}",
            platform=subscriber_pb2.DEVICE_PLATFORM_ANDROID,
            push_provider=C.PUSH_PROVIDER_HUAWEI,
            push_token=C.Secret(value=f"token-{n}-0123456789"),
        )
        await stub.RegisterDevice(M.RegisterDeviceRequest(device=d), metadata=auth(REP_A1))
        devices.append(d.device_id)
    return World(notifications, to_rep_a1, deliveries, templates, configs, policies, subscribers, devices)


@pytest.fixture
async def world(notify: NotifyStack) -> AsyncIterator[tuple[NotifyStack, World]]:
    yield notify, await seed(notify)


async def call(stub: notify_service_pb2_grpc.NotifyServiceStub, rpc: str, request: Message, who: str) -> Any:
    return await getattr(stub, rpc)(request, metadata=auth(who))


def test_every_list_rpc_has_a_seeder() -> None:
    covered = set(queries(World([], [], 0, [], [], [], [], []))) | NOT_BUILT
    assert LIST_RPCS and set(LIST_RPCS) <= covered, (
        f"List RPCs without a paging seeder: {set(LIST_RPCS) - covered}"
    )


async def test_list_rpcs_not_built_answer_unimplemented(notify: NotifyStack) -> None:
    for rpc in NOT_BUILT:
        request = getattr(M, f"{rpc}Request")()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(notify.stub, rpc, request, ADMIN)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def walk(stack: NotifyStack, rpc: str, q: Query, size: int) -> list[Any]:
    seen: list[Any] = []
    page_token, totals = "", set()
    for _ in range(500):
        request = q.request()
        if q.paged:
            request.page_size, request.page_token = size, page_token  # type: ignore[attr-defined]
        page = await call(stack.stub, rpc, request, q.who)
        items = list(getattr(page, q.items))
        if q.paged:
            assert len(items) <= size, f"{rpc}: page larger than asked"
        seen += items
        if q.has_total:
            totals.add(page.total_size)
        page_token = page.next_page_token if q.paged else ""
        if not page_token:
            break
    else:
        pytest.fail(f"{rpc}: paging did not end")
    if q.has_total:
        assert totals == {len(seen)}, f"{rpc}: total_size {totals} for {len(seen)} rows"
    return seen


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(size=st.integers(1, 7))
async def test_pages_hold_every_row_once_in_the_documented_order(
    world: tuple[NotifyStack, World], size: int
) -> None:
    stack, data = world
    for rpc, (q, expected) in queries(data).items():
        seen = await walk(stack, rpc, q, size)
        ids = [q.ident(x) for x in seen]
        assert len(ids) == len(set(ids)), f"{rpc}: a row came twice"
        if isinstance(expected, int):
            assert len(ids) == expected, f"{rpc}: rows missing or extra"
        else:
            assert set(ids) == expected, f"{rpc}: rows missing or extra"
        keys = [q.key(x) for x in seen]
        assert keys == sorted(keys), f"{rpc}: not in the documented order"


def forge(page_token: str) -> list[str]:
    raw = bytearray(base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)))
    raw[len(raw) // 2] ^= 0x01
    flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    made_up = base64.urlsafe_b64encode(b'\x01["zzzz"]' + b"\x00" * 16).rstrip(b"=").decode()
    return [flipped, made_up, "not a token", "01J0000000000000000000000Z"]


async def refused(stack: NotifyStack, rpc: str, request: Message, who: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(stack.stub, rpc, request, who)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{rpc}: {err.value.code()}"


async def test_tokens_of_another_tenant_another_query_or_forged_are_refused(
    world: tuple[NotifyStack, World],
) -> None:
    stack, data = world
    for rpc, (q, _) in queries(data).items():
        if not q.paged:
            continue
        first = q.request()
        first.page_size = 1  # type: ignore[attr-defined]
        page_token = (await call(stack.stub, rpc, first, q.who)).next_page_token
        assert page_token, f"{rpc}: the seeded data should need more than one page"
        again = q.request()
        again.page_size, again.page_token = 1, page_token  # type: ignore[attr-defined]
        await call(stack.stub, rpc, again, q.who)  # the token serves its own query
        await refused(stack, rpc, again, OTHER_TENANT[q.who])
        if q.other is not None:
            other = q.request()
            q.other(other)
            other.page_size, other.page_token = 1, page_token  # type: ignore[attr-defined]
            await refused(stack, rpc, other, q.who)
        for bad in forge(page_token):
            forged = q.request()
            forged.page_size, forged.page_token = 1, bad  # type: ignore[attr-defined]
            await refused(stack, rpc, forged, q.who)
