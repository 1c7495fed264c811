"""OWASP API7 (server-side request forgery) through the real notify service.

An admin's channel configuration names where notify connects: webhook URLs were checked
by a string prefix only (`https://169.254.169.254`, `https://10.0.0.1` and
`http://127.0.0.1@example.com` were accepted), the SMTP host and port were free, and up
to 300 characters of the target's answer came back through TestChannelConfig. Now every
destination goes through kit.net at save time and again at each send, and callers learn
a status class only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from salesops.notify.v1 import channel_config_pb2 as C
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from tests.notify.conftest import ADMIN, NotifyStack, _stack, auth
from tests.unit.test_net_http import SECRET, loopback

INTERNAL_URLS = [
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://10.0.0.1/hook",
    "http://127.0.0.1@example.com/hook",
    "https://127.0.0.1@example.com/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:a9fe:a9fe]/hook",
    "http://[64:ff9b::a9fe:a9fe]/hook",
    "https://[::1]/hook",
    "https://[fd00:ec2::254]/hook",
    "https://100.64.0.1/hook",
    "http://2130706433/hook",
    "https://0x7f.1/hook",
    "https://017700000001/hook",
    "https://localhost/hook",
    "https://metadata.google.internal/computeMetadata/v1/",
    "http://example.com/hook",
    "gopher://example.com:6379/_FLUSHALL",
]


@pytest.fixture
async def strict(
    sqlite_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[NotifyStack]:
    """Notify as deployed: no outbound exceptions configured."""
    monkeypatch.delenv("SALESOPS_OUTBOUND_ALLOW", raising=False)
    async for stack in _stack(sqlite_url, redis_url):
        yield stack


def webhook(url: str) -> C.ChannelConfig:
    return C.ChannelConfig(display_name="hook", channel=N.CHANNEL_WEBHOOK, webhook=C.WebhookSettings(url=url))


async def _create(stack: NotifyStack, cfg: C.ChannelConfig) -> str:
    created = await stack.stub.CreateChannelConfig(
        M.CreateChannelConfigRequest(channel_config=cfg), metadata=auth(ADMIN)
    )
    return created.channel_config.channel_config_id


async def test_internal_webhook_urls_are_refused_at_save(strict: NotifyStack) -> None:
    for url in INTERNAL_URLS:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _create(strict, webhook(url))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, url
        assert "webhook.url" in (err.value.details() or ""), url
    listed = await strict.stub.ListChannelConfigs(M.ListChannelConfigsRequest(), metadata=auth(ADMIN))
    assert not listed.channel_configs


async def test_internal_smtp_hosts_and_ports_are_refused_at_save(strict: NotifyStack) -> None:
    for host, port in [("10.0.0.1", 587), ("169.254.169.254", 25), ("localhost", 587), ("8.8.8.8", 6379)]:
        cfg = C.ChannelConfig(
            display_name="mail",
            channel=N.CHANNEL_EMAIL,
            email=C.EmailSettings(host=host, port=port, from_address="noreply@salesops.test"),
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _create(strict, cfg)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, host


async def test_test_channel_config_never_returns_the_target_answer(
    sqlite_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fakes are on loopback: allowed explicitly, as a deployment would list a proxy.
    monkeypatch.setenv("SALESOPS_OUTBOUND_ALLOW", "127.0.0.1")
    async with loopback(status=500, body=SECRET) as failing, loopback(status=200, body=SECRET) as answering:
        async for stack in _stack(sqlite_url, redis_url):
            for fake, success in ((failing, False), (answering, True)):
                config_id = await _create(stack, webhook(f"http://127.0.0.1:{fake.port}/hook"))
                out = await stack.stub.TestChannelConfig(
                    M.TestChannelConfigRequest(channel_config_id=config_id, address="ops-room"),
                    metadata=auth(ADMIN),
                )
                assert out.success is success and len(fake.heads) == 1
                assert SECRET not in out.SerializeToString()
                assert b"TOP-SECRET" not in out.SerializeToString()
            assert out.provider_message_id and "SECRET" not in out.provider_message_id
            failed = await stack.stub.TestChannelConfig(
                M.TestChannelConfigRequest(
                    channel_config_id=(await _create(stack, webhook(f"http://127.0.0.1:{failing.port}/x"))),
                    address="ops-room",
                ),
                metadata=auth(ADMIN),
            )
            assert failed.error.message == "5xx" and failed.error.code == "HTTP_500"


async def test_destinations_are_checked_again_at_each_send(
    sqlite_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configuration saved while loopback was allowed is refused once the policy no longer allows it."""
    async with loopback() as fake:
        monkeypatch.setenv("SALESOPS_OUTBOUND_ALLOW", "127.0.0.1")
        async for stack in _stack(sqlite_url, redis_url):
            config_id = await _create(stack, webhook(f"http://127.0.0.1:{fake.port}/hook"))
        monkeypatch.delenv("SALESOPS_OUTBOUND_ALLOW")
        async for stack in _stack(sqlite_url, redis_url):
            out = await stack.stub.TestChannelConfig(
                M.TestChannelConfigRequest(channel_config_id=config_id, address="ops-room"),
                metadata=auth(ADMIN),
            )
    assert not out.success and out.error.code == "BLOCKED" and out.error.permanent
    assert fake.heads == []


async def test_webhook_headers_notify_owns_are_refused_at_save(strict: NotifyStack) -> None:
    for name in ("Host", "Content-Length", "Transfer-Encoding", "X-Salesops-Signature", "Bad Name"):
        cfg = webhook("https://hooks.example.com/x")
        cfg.webhook.headers[name] = "v"
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _create(strict, cfg)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert "webhook.headers" in (err.value.details() or ""), name


async def test_smtp_passwords_over_plain_connections_are_refused_at_save(strict: NotifyStack) -> None:
    cfg = C.ChannelConfig(
        display_name="mail",
        channel=N.CHANNEL_EMAIL,
        email=C.EmailSettings(
            host="8.8.8.8",
            port=587,
            security=C.SMTP_SECURITY_NONE,
            username="relay",
            password=C.Secret(value="pw"),
            from_address="noreply@salesops.test",
        ),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _create(strict, cfg)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "email.security" in (
        err.value.details() or ""
    )
    cfg.email.security = C.SMTP_SECURITY_STARTTLS
    assert await _create(strict, cfg)
