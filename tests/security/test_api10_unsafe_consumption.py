"""OWASP API10 (unsafe consumption of APIs): what third-party providers answer notify.

The channel adapters (services/notify/channels/, through kit.net) read the answers of
WeCom, DingTalk, the SMS gateway and customers' webhooks. Each hostile answer below is
served by a loopback fake (allowed explicitly, as `SALESOPS_OUTBOUND_ALLOW` would list a
proxy) and must end as a clean `SendError`: our code, a status class as the message, no
text of the answer, bounded in time and memory, and redirects are never followed.
The same holds through the service: TestChannelConfig and a delivery attempt's recorded
error. SMTP servers' replies are bounded the same way (a deadline per conversation, a size
limit per reply). (Destinations themselves are API7: tests/security/test_api7_ssrf.py.)

Defects these tests found, fixed with them: deep JSON (RecursionError) and an errcode of
1e400 (OverflowError) escaped the bot and SMS adapters, so TestChannelConfig answered
INTERNAL and the delivery attempt crashed; kit.net inflated gzip answers past its body cap
(128 MB held for a 50 KB answer); an SMTP server sending `220-` lines forever held a worker
thread and 200+ MB within seconds, and one dripping bytes was never timed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from google.protobuf.struct_pb2 import Struct
from sqlalchemy import select
from temporalio.exceptions import ApplicationError

from kit.net import OutboundPolicy, Outcome, SafeClient
from salesops.notify.v1 import channel_config_pb2 as C
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from services.notify.activities import DeliveryActivities
from services.notify.channels.base import Adapter, Message, SendError
from services.notify.channels.email import SmtpEmail
from services.notify.channels.http_channels import DingTalkBot, SignedWebhook, SmsGateway, WeComBot
from services.notify.store import DeliveryRow
from services.notify.workflows import DeliveryRef
from tests.notify.conftest import ADMIN, SERVICE, TENANT, NotifyStack, _stack, auth

LOOPBACK = OutboundPolicy.parse("127.0.0.1")
MSG = Message("D1", "N1", "sla_breach", "+8613800000001", "lead overdue", "please call back")
CLASSES = {str(o) for o in Outcome}
# What a hostile or leaky provider puts in its answers; none of it may come back to a caller.
LEAK = "hunter2-LTAI5tXq-db7.corp.internal"
MB = 1024 * 1024
HUGE = 50 * MB
PROVIDER_CODE = re.compile(r"[A-Za-z0-9_.:-]{0,64}")

Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Provider:
    """A raw HTTP/1.1 server on 127.0.0.1: reads one request, then `answer` writes whatever it likes."""

    answer: Writer
    port: int = 0
    requests: int = 0
    sent: int = 0  # body bytes the peer accepted before it hung up
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/send"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            self.requests += 1
            await self.answer(writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client hung up: what a bounded reader does
        finally:
            writer.close()
            self.tasks.discard(task)


@contextlib.asynccontextmanager
async def provider(answer: Writer) -> AsyncIterator[Provider]:
    fake = Provider(answer)
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.close()
        for task in list(fake.tasks):  # drips and endless bodies stop with the test
            task.cancel()
        await asyncio.gather(*fake.tasks, return_exceptions=True)
        await server.wait_closed()


def head(status: int = 200, **headers: str | int) -> bytes:
    lines = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return f"HTTP/1.1 {status} X\r\n{lines}Connection: close\r\n\r\n".encode()


def fixed(body: bytes, status: int = 200, **headers: str | int) -> Writer:
    async def write(w: asyncio.StreamWriter) -> None:
        w.write(head(status, Content_Type="application/json", Content_Length=len(body), **headers) + body)
        await w.drain()

    return write


def endless(
    fake: Callable[[], Provider], first: bytes, chunk: bytes, total: int, **headers: str | int
) -> Writer:
    """`first`, then `chunk` again and again up to `total` bytes, as fast as the peer reads."""

    async def write(w: asyncio.StreamWriter) -> None:
        w.write(head(200, Content_Type="application/json", Content_Length=total, **headers) + first)
        await w.drain()
        sent = len(first)
        while sent < total:
            w.write(chunk[: total - sent])
            await w.drain()
            sent += len(chunk)
            fake().sent = sent

    return write


def drip(prefix: bytes, interval: float = 0.05) -> Writer:
    """One byte at a time, forever: every read succeeds, the answer never ends."""

    async def write(w: asyncio.StreamWriter) -> None:
        w.write(prefix)
        await w.drain()
        while True:
            await asyncio.sleep(interval)
            w.write(b" ")
            await w.drain()

    return write


# ----------------------------------------------------------------------------- the adapters

BOT_CONFIGS: dict[str, C.ChannelConfig] = {
    "wecom": C.ChannelConfig(wecom_bot=C.WeComBotSettings(webhook_key=C.Secret(value="k-1"))),
    "dingtalk": C.ChannelConfig(dingtalk_bot=C.DingTalkBotSettings(access_token=C.Secret(value="t-1"))),
    "sms": C.ChannelConfig(sms=C.SmsSettings(access_key_id="AK", sign_name="sign")),
}


def json_adapter(kind: str, client: SafeClient, url: str) -> Adapter:
    """An adapter that parses the provider's JSON answer, pointed at the fake."""
    if kind == "wecom":
        return WeComBot(client, url)
    if kind == "dingtalk":
        return DingTalkBot(client, url)
    return SmsGateway(client, url)


def webhook(url: str, timeout: float = 10.0) -> C.ChannelConfig:
    cfg = C.ChannelConfig(webhook=C.WebhookSettings(url=url))
    cfg.webhook.timeout.FromMilliseconds(int(timeout * 1000))
    return cfg


def assert_clean(err: SendError, *secrets: str) -> None:
    """A failure the caller may see: our code, a status class, a code-like provider code, no answer text."""
    assert isinstance(err, SendError)
    assert err.message in CLASSES, err.message
    assert PROVIDER_CODE.fullmatch(err.provider_code), err.provider_code
    for text in (LEAK, *secrets):
        assert text not in str(err) and text not in err.provider_code and text not in err.outcome


async def send(adapter: Adapter, config: C.ChannelConfig) -> SendError:
    with pytest.raises(SendError) as caught:
        await adapter.send(config, MSG)
    return caught.value


MALFORMED = [
    b"",
    b"not json at all",
    b'{"errcode": 0, "errmsg": "ok"',  # cut short
    b'{"errcode": 0,}',
    b"\xff\xfe{\x00}",  # not UTF-8
    b'{"errcode": 0}{"errcode": 0}',
]
WRONG_SHAPE = [
    b"[]",
    b'"OK"',
    b"null",
    b"42",
    b'[{"errcode": 0, "Code": "OK"}]',
    b'{"errcode": "zero", "Code": ["OK"]}',
    b'{"errcode": {"code": 0}, "Code": {"OK": true}}',
    b'{"errcode": 1e400, "Code": 1e400}',  # infinity: int() overflows
    b'{"errcode": NaN, "Code": NaN}',
    b'{"errcode": -1e400, "Code": false}',
    b'{"errcode": ' + b"9" * 5000 + b', "Code": "OK"}',  # past the int parser's digit limit
]
DEEP = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"0" + b"}" * 50_000,
    b'{"errcode": 0, "Code": "OK", "x": ' + b"[" * 60_000 + b"]" * 60_000 + b"}",
]


@pytest.mark.parametrize("kind", list(BOT_CONFIGS))
async def test_malformed_wrong_shape_and_deep_json_are_bad_responses(kind: str) -> None:
    """Every answer that is not the provider's documented JSON object: BAD_RESPONSE, retried later.

    A RecursionError (deep nesting) or OverflowError (1e400) escaping the adapter would crash
    the delivery attempt and make TestChannelConfig an INTERNAL error instead.
    """
    for body in [*MALFORMED, *WRONG_SHAPE, *DEEP]:
        async with provider(fixed(body)) as fake, SafeClient(LOOPBACK) as client:
            started = time.monotonic()
            try:
                await json_adapter(kind, client, fake.url).send(BOT_CONFIGS[kind], MSG)
            except SendError as exc:
                err = exc
            except Exception as exc:  # the point: nothing but SendError leaves an adapter
                pytest.fail(f"{kind} {body[:40]!r}: {type(exc).__name__} escaped the adapter")
            else:
                pytest.fail(f"{kind} {body[:40]!r}: accepted as a successful send")
        assert fake.requests == 1
        assert err.code in {"BAD_RESPONSE", "PROVIDER_ERROR"}, (kind, body[:40], err.code)
        assert not err.permanent or err.code == "PROVIDER_ERROR", (kind, body[:40])
        assert_clean(err)
        assert time.monotonic() - started < 5


@pytest.mark.parametrize("kind", list(BOT_CONFIGS))
async def test_a_wrong_shaped_success_never_returns_a_non_code_as_the_message_id(kind: str) -> None:
    """An accepted send whose id field is an object or free text: our delivery id stands in."""
    body = b'{"errcode": 0, "Code": "OK", "BizId": {"id": "' + LEAK.encode() + b' x"}}'
    async with provider(fixed(body)) as fake, SafeClient(LOOPBACK) as client:
        provider_id = await json_adapter(kind, client, fake.url).send(BOT_CONFIGS[kind], MSG)
    assert provider_id == MSG.delivery_id


async def _huge(answer: Callable[[Callable[[], Provider]], Writer], adapter: str) -> tuple[Provider, object]:
    box: list[Provider] = []
    async with provider(answer(lambda: box[0])) as fake, SafeClient(LOOPBACK) as client:
        box.append(fake)
        target: Adapter = (
            SignedWebhook(client) if adapter == "webhook" else json_adapter(adapter, client, fake.url)
        )
        config = webhook(fake.url) if adapter == "webhook" else BOT_CONFIGS[adapter]
        tracemalloc.start()
        started = time.monotonic()
        try:
            outcome: object = await target.send(config, MSG)
        except SendError as exc:
            outcome = exc
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        elapsed = time.monotonic() - started
    assert peak < 16 * MB, f"{adapter}: {peak / MB:.0f} MB held for one answer"
    assert elapsed < 10, f"{adapter}: {elapsed:.1f} s to give up on one answer"
    return fake, outcome


@pytest.mark.parametrize("adapter", ["webhook", "wecom", "sms"])
async def test_a_50_mb_answer_is_not_read_past_the_cap(adapter: str) -> None:
    chunk = b"A" * (64 * 1024)

    def answer(fake: Callable[[], Provider]) -> Writer:
        return endless(fake, b'{"errcode": 0, "Code": "OK", "errmsg": "' + LEAK.encode(), chunk, HUGE)

    fake, outcome = await _huge(answer, adapter)
    # The reader stopped early and hung up: the provider could not push the 50 MB through.
    assert fake.sent < HUGE // 2, fake.sent
    if adapter == "webhook":
        assert outcome == MSG.delivery_id  # a 2xx is an accepted delivery; the body is not read
    else:
        assert isinstance(outcome, SendError) and outcome.code == "BAD_RESPONSE"
        assert_clean(outcome)


@pytest.mark.parametrize("adapter", ["webhook", "dingtalk"])
async def test_a_compressed_bomb_is_never_inflated_past_the_cap(adapter: str) -> None:
    """We ask for `identity`; a provider sending 50 KB of gzip that inflates to 50 MB gains nothing."""
    pack = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    zeros = bytes(MB)
    bomb = b"".join(pack.compress(zeros) for _ in range(HUGE // MB)) + pack.flush()
    assert len(bomb) < MB

    def answer(_fake: Callable[[], Provider]) -> Writer:
        return fixed(bomb, Content_Encoding="gzip")

    _, outcome = await _huge(answer, adapter)
    if adapter == "webhook":
        assert outcome == MSG.delivery_id
    else:
        assert isinstance(outcome, SendError) and outcome.code == "BAD_RESPONSE"


REDIRECT_STATUSES = (301, 302, 303, 307, 308)


@pytest.mark.parametrize("kind", ["webhook", *BOT_CONFIGS])
async def test_redirects_to_internal_addresses_are_never_followed(kind: str) -> None:
    """The inner server is on an allowed address: only not following keeps it untouched."""
    async with provider(fixed(b'{"errcode": 0, "Code": "OK"}')) as inner:
        for status in REDIRECT_STATUSES:
            for location in (
                f"http://127.0.0.1:{inner.port}/admin/export",
                "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
                "http://[::1]/",
            ):
                moved = fixed(b'{"errcode": 0, "Code": "OK"}', status, Location=location)
                async with provider(moved) as outer, SafeClient(LOOPBACK) as client:
                    if kind == "webhook":
                        err = await send(SignedWebhook(client), webhook(outer.url))
                    else:
                        err = await send(json_adapter(kind, client, outer.url), BOT_CONFIGS[kind])
                assert outer.requests == 1
                assert err.code == f"HTTP_{status}" and err.message == "3xx" and err.permanent
                assert_clean(err, location, "169.254", "admin/export")
    assert inner.requests == 0


@pytest.mark.parametrize(
    "answer",
    [
        drip(b"HTTP/1.1 200 OK\r\n"),  # the head never ends
        drip(head(200, Content_Type="application/json", Content_Length=10 * MB)),  # nor the body
    ],
    ids=["head", "body"],
)
async def test_a_slow_drip_answer_times_out_as_a_whole(answer: Writer) -> None:
    """A byte every 50 ms never trips a per-read timeout; the call's own deadline must end it."""
    async with provider(answer) as fake, SafeClient(LOOPBACK) as client:
        started = time.monotonic()
        err = await send(SignedWebhook(client), webhook(fake.url, timeout=1.0))
        elapsed = time.monotonic() - started
    assert err.code == "TIMEOUT" and err.message == "timeout" and not err.permanent
    assert 0.9 <= elapsed < 5, elapsed
    assert_clean(err)


@pytest.mark.parametrize("status", [200, 400, 401, 429, 500, 503])
@pytest.mark.parametrize("kind", ["webhook", *BOT_CONFIGS])
async def test_secrets_in_a_provider_answer_stay_there(kind: str, status: int) -> None:
    body = json.dumps(
        {
            "errcode": 40001,
            "errmsg": f"invalid key; password={LEAK}",
            "Code": "isv.DENIED",
            "Message": f"AccessKey {LEAK} rejected",
            "RequestId": LEAK,
        }
    ).encode()
    async with (
        provider(fixed(body, status, X_Debug=LEAK, Location=LEAK)) as fake,
        SafeClient(LOOPBACK) as client,
    ):
        if kind == "webhook":
            try:
                await SignedWebhook(client).send(webhook(fake.url), MSG)
                assert status == 200  # a webhook's 2xx is success; its body is not read
                return
            except SendError as exc:
                err = exc
        else:
            err = await send(json_adapter(kind, client, fake.url), BOT_CONFIGS[kind])
    assert err.message == ("2xx" if status == 200 else f"{status // 100}xx")
    assert_clean(err, "invalid key", "rejected", "password")


# ------------------------------------------------------------------------------ SMTP replies


@contextlib.asynccontextmanager
async def smtp_peer(answer: Writer) -> AsyncIterator[int]:
    """A raw TCP server that speaks first, as an SMTP server does, with whatever `answer` writes."""
    tasks: set[asyncio.Task[None]] = set()

    async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await answer(writer)
        except ConnectionError:
            pass
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def endless_lines(line: bytes, interval: float = 0.0) -> Writer:
    async def write(w: asyncio.StreamWriter) -> None:
        while True:
            w.write(line)
            await w.drain()
            await asyncio.sleep(interval)

    return write


def mail(port: int) -> C.ChannelConfig:
    return C.ChannelConfig(
        email=C.EmailSettings(
            host="127.0.0.1", port=port, security=C.SMTP_SECURITY_NONE, from_address="n@salesops.test"
        )
    )


MAIL = Message("D1", "N1", "digest", "rep@example.com", "digest", "3 items due")


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        # A greeting that never ends: smtplib kept every line (200+ MB in 4 s) and never returned.
        (endless_lines(b"220-" + LEAK.encode() * 30 + b"\r\n"), "UNREACHABLE"),
        # One line without an end: smtplib's own line limit, a 5xx.
        (endless_lines(LEAK.encode() * 1000), "SMTP_500"),
        # A byte every 50 ms: no single read ever times out, the conversation's deadline must.
        (drip(b"220"), "TIMEOUT"),
        (endless_lines(b"220-slow\r\n", 0.05), "TIMEOUT"),
    ],
    ids=["endless-greeting", "endless-line", "drip", "slow-lines"],
)
async def test_hostile_smtp_replies_end_bounded(answer: Writer, code: str) -> None:
    async with smtp_peer(answer) as port:
        tracemalloc.start()
        started = time.monotonic()
        try:
            with pytest.raises(SendError) as caught:
                await asyncio.wait_for(SmtpEmail(LOOPBACK, deadline=1.0).send(mail(port), MAIL), 10)
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        elapsed = time.monotonic() - started
    assert caught.value.code == code, caught.value
    assert not caught.value.permanent or code == "SMTP_500"
    assert_clean(caught.value)
    assert elapsed < 5, elapsed
    assert peak < 16 * MB, f"{peak / MB:.0f} MB held for one SMTP reply"


# ---------------------------------------------------------------------------- through notify


@pytest.fixture
async def stack(
    sqlite_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[NotifyStack]:
    monkeypatch.setenv("SALESOPS_OUTBOUND_ALLOW", "127.0.0.1")
    async for s in _stack(sqlite_url, redis_url):
        yield s


def _servicer_adapters(stack: NotifyStack) -> dict[int, Adapter]:
    adapters: dict[int, Adapter] = stack.server.registrations[0].servicer.adapters
    return adapters


async def _create(stack: NotifyStack, cfg: C.ChannelConfig) -> str:
    created = await stack.stub.CreateChannelConfig(
        M.CreateChannelConfigRequest(channel_config=cfg), metadata=auth(ADMIN)
    )
    return str(created.channel_config.channel_config_id)


async def _test_config(stack: NotifyStack, config_id: str) -> M.TestChannelConfigResponse:
    out: M.TestChannelConfigResponse = await stack.stub.TestChannelConfig(
        M.TestChannelConfigRequest(channel_config_id=config_id, address="ops-room"), metadata=auth(ADMIN)
    )
    return out


async def test_test_channel_config_answers_a_status_class_for_hostile_bot_answers(stack: NotifyStack) -> None:
    """The admin's test button shows our code and a class, never INTERNAL, never the answer."""
    bot = C.ChannelConfig(
        display_name="bot",
        channel=N.CHANNEL_WECOM_BOT,
        wecom_bot=C.WeComBotSettings(webhook_key=C.Secret(value="0123456789")),
    )
    config_id = await _create(stack, bot)
    wecom = _servicer_adapters(stack)[N.CHANNEL_WECOM_BOT]
    assert isinstance(wecom, WeComBot)
    leaky = f'{{"errcode": 93000, "errmsg": "{LEAK}"}}'.encode()
    for body, code in [
        (DEEP[0], "BAD_RESPONSE"),
        (b'{"errcode": 1e400}', "BAD_RESPONSE"),
        (b"<html>" + LEAK.encode(), "BAD_RESPONSE"),
        (leaky, "PROVIDER_ERROR"),
    ]:
        async with provider(fixed(body)) as fake:
            wecom.base_url = fake.url  # the third party's address only
            out = await _test_config(stack, config_id)
        assert fake.requests == 1
        assert not out.success and out.error.code == code and out.error.message == "2xx", out
        assert LEAK.encode() not in out.SerializeToString()


async def test_test_channel_config_bounds_hostile_webhook_answers(stack: NotifyStack) -> None:
    async with provider(fixed(b"", 302, Location="http://127.0.0.1:1/")) as moved:
        out = await _test_config(stack, await _create(stack, _hook(moved.url, 10.0)))
    assert not out.success and out.error.code == "HTTP_302" and out.error.message == "3xx"
    async with provider(drip(b"HTTP/1.1 200 OK\r\n")) as slow:
        started = time.monotonic()
        out = await _test_config(stack, await _create(stack, _hook(slow.url, 1.0)))
    assert not out.success and out.error.code == "TIMEOUT" and time.monotonic() - started < 5
    assert out.latency.ToTimedelta().total_seconds() < 5


def _hook(url: str, timeout: float) -> C.ChannelConfig:
    cfg = webhook(url, timeout)
    cfg.display_name, cfg.channel = "hook", N.CHANNEL_WEBHOOK
    return cfg


async def test_a_delivery_attempt_records_a_class_not_the_answer(stack: NotifyStack) -> None:
    """The worker's attempt against a provider answering deep JSON: a retryable, recorded failure."""
    await _create(
        stack,
        C.ChannelConfig(
            display_name="bot",
            channel=N.CHANNEL_WECOM_BOT,
            enabled=True,
            wecom_bot=C.WeComBotSettings(webhook_key=C.Secret(value="0123456789")),
        ),
    )
    values = Struct()
    values.update({"lead_name": "ACME"})
    sent = await stack.stub.SendNotification(
        M.SendNotificationRequest(
            notification=N.Notification(
                category=N.NOTIFICATION_CATEGORY_LEAD_ASSIGNED,
                recipients=[N.Recipient(user_id="rep-a1")],
                template=N.TemplateContent(variables=values),
                channels=[N.CHANNEL_WECOM_BOT],
            )
        ),
        metadata=auth(SERVICE),
    )
    notification_id = sent.notification.notification_id
    async with stack.rt.db.session(TENANT) as s:
        delivery_id = await s.scalar(
            select(DeliveryRow.id).where(DeliveryRow.notification_id == notification_id)
        )
    assert delivery_id
    body = b'{"errmsg": "' + LEAK.encode() + b'", "errcode": ' + b"[" * 80_000 + b"]" * 80_000 + b"}"
    async with provider(fixed(body)) as fake, SafeClient(LOOPBACK) as client:
        acts = DeliveryActivities(stack.rt.db, {N.CHANNEL_WECOM_BOT: WeComBot(client, fake.url)})
        with pytest.raises(ApplicationError) as caught:
            await acts.attempt(DeliveryRef(TENANT, delivery_id, ""))
    assert fake.requests == 1
    assert str(caught.value) == "BAD_RESPONSE: 2xx" and not caught.value.non_retryable
    assert LEAK not in str(caught.value)
    listed = await stack.stub.ListDeliveries(
        M.ListDeliveriesRequest(notification_id=notification_id), metadata=auth(ADMIN)
    )
    [delivery] = listed.deliveries
    assert delivery.last_error.code == "BAD_RESPONSE" and delivery.last_error.message == "2xx"
    assert LEAK.encode() not in listed.SerializeToString()
