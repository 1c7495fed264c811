"""kit.net's HTTP transport against real loopback servers: pinning, rebinding, redirects, caps, TLS."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kit.errors import InvalidArgument
from kit.net import OutboundError, OutboundPolicy, Outcome, SafeClient, check_url, request, status_class
from kit.net.http import _PinnedBackend

SECRET = b"root:x:0:0:TOP-SECRET-INTERNAL-ANSWER"


@dataclass
class Loopback:
    """A raw HTTP/1.1 server on 127.0.0.1 that answers the same thing to everyone and records heads."""

    status: int = 200
    body: bytes = b'{"ok":true}'
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    heads: list[str] = field(default_factory=list)
    port: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            self.heads.append(head)
            length = next(
                (
                    int(line.split(":", 1)[1])
                    for line in head.split("\r\n")
                    if line.lower().startswith("content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            if self.hang:
                await self.release.wait()
                return
            extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            writer.write(
                f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(self.body)}\r\n{extra}Connection: close\r\n\r\n".encode()
                + self.body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def loopback(tls: ssl.SSLContext | None = None, **kwargs: object) -> AsyncIterator[Loopback]:
    fake = Loopback(**kwargs)  # type: ignore[arg-type]
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0, ssl=tls)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        fake.release.set()
        server.close()
        await server.wait_closed()


class Resolver:
    """Injectable DNS: answers in turn from `answers` (the last one repeats), counting calls."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers, self.calls = list(answers), 0

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


LOOPBACK = OutboundPolicy.parse("127.0.0.1")


async def test_status_class_only_and_body_capped() -> None:
    async with (
        loopback(status=503, body=SECRET * 1000) as fake,
        SafeClient(LOOPBACK, body_limit=100) as client,
    ):
        answer = await request(client, "POST", f"http://127.0.0.1:{fake.port}/hook", content=b"{}")
    assert answer.status == 503 and answer.outcome is Outcome.SERVER_ERROR and str(answer.outcome) == "5xx"
    assert len(answer.body) == 100
    assert [status_class(s) for s in (200, 204, 302, 404, 429, 500)] == [
        "2xx",
        "2xx",
        "3xx",
        "4xx",
        "4xx",
        "5xx",
    ]


async def test_redirects_are_a_status_not_a_hop() -> None:
    async with loopback() as inner:
        to = f"http://127.0.0.1:{inner.port}/steal"
        async with loopback(status=302, headers={"Location": to}) as outer, SafeClient(LOOPBACK) as client:
            answer = await request(client, "GET", f"http://127.0.0.1:{outer.port}/")
            plain = await client.get(f"http://127.0.0.1:{outer.port}/")
    assert answer.outcome is Outcome.REDIRECT and plain.status_code == 302
    assert inner.heads == []


async def test_a_name_resolving_to_loopback_is_blocked_before_connecting() -> None:
    async with loopback() as fake, SafeClient(OutboundPolicy(), resolver=Resolver(["127.0.0.1"])) as client:
        with pytest.raises(OutboundError) as err:
            await request(client, "GET", f"https://evil.example:{fake.port}/")
    assert err.value.outcome is Outcome.BLOCKED and "not public" in err.value.reason
    assert "127.0.0.1" not in err.value.reason  # internal DNS answers are not told back
    assert fake.heads == []


async def test_one_refused_answer_refuses_the_name() -> None:
    resolver = Resolver(["8.8.8.8", "10.0.0.1"])
    async with SafeClient(OutboundPolicy(), resolver=resolver) as client:
        with pytest.raises(OutboundError) as err:
            await request(client, "GET", "https://mixed.example/")
    assert err.value.outcome is Outcome.BLOCKED


async def test_literal_forms_are_blocked_by_the_transport_too() -> None:
    async with loopback() as fake, SafeClient(OutboundPolicy()) as client:
        for url in (
            f"http://127.0.0.1:{fake.port}/",
            f"https://127.0.0.1:{fake.port}/",
            f"http://[::ffff:127.0.0.1]:{fake.port}/",
            f"http://2130706433:{fake.port}/",
            f"http://0x7f.1:{fake.port}/",
            f"http://017700000001:{fake.port}/",
            f"http://127.0.0.1@example.com:{fake.port}/",
            f"http://localhost:{fake.port}/",
        ):
            with pytest.raises(httpx.RequestError):
                await client.get(url)
            with pytest.raises(OutboundError) as err:
                await request(client, "GET", url)
            assert err.value.outcome is Outcome.BLOCKED, url
    assert fake.heads == []


async def test_dns_rebinding_connects_to_the_pinned_first_answer() -> None:
    """The check and the connection use one resolution: a second answer (metadata) is never used.

    `rebind.test` exists in no DNS: the request only arrives because the connection goes to
    the address the transport checked, with the Host header still naming the host.
    """
    resolver = Resolver(["127.0.0.1"], ["169.254.169.254"])
    policy = OutboundPolicy.parse("rebind.test")
    async with loopback() as fake, SafeClient(policy, resolver=resolver) as client:
        first = await request(client, "GET", f"http://rebind.test:{fake.port}/a")
        assert first.status == 200 and resolver.calls == 1
        assert f"host: rebind.test:{fake.port}" in fake.heads[0].lower()
        with pytest.raises(OutboundError) as err:  # the next resolution is checked again
            await request(client, "GET", f"http://rebind.test:{fake.port}/b")
    assert err.value.outcome is Outcome.BLOCKED and resolver.calls == 2 and len(fake.heads) == 1


async def test_unpinned_connections_are_refused() -> None:
    with pytest.raises(httpcore.ConnectError):
        await _PinnedBackend().connect_tcp("127.0.0.1", 9)


async def test_environment_proxies_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    async with loopback(status=404) as proxy, loopback() as fake:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{proxy.port}")
        async with SafeClient(LOOPBACK) as client:
            answer = await request(client, "GET", f"http://127.0.0.1:{fake.port}/")
    assert answer.status == 200 and proxy.heads == [] and len(fake.heads) == 1


async def test_timeout_and_refused_are_classes() -> None:
    async with loopback(hang=True) as slow, SafeClient(LOOPBACK) as client:
        with pytest.raises(OutboundError) as err:
            await request(client, "GET", f"http://127.0.0.1:{slow.port}/", timeout=0.3)
        assert err.value.outcome is Outcome.TIMEOUT
    with pytest.raises(OutboundError) as err:
        async with SafeClient(LOOPBACK) as client:
            await request(client, "GET", f"http://127.0.0.1:{slow.port}/")  # closed now
    assert err.value.outcome is Outcome.REFUSED


async def test_a_name_that_does_not_resolve_is_refused_not_blocked() -> None:
    async def nxdomain(host: str, port: int) -> Sequence[str]:
        raise OSError("Name or service not known")

    async with SafeClient(OutboundPolicy(), resolver=nxdomain) as client:
        with pytest.raises(OutboundError) as err:
            await request(client, "GET", "https://gone.example/")
    assert err.value.outcome is Outcome.REFUSED


async def test_requests_httpx_cannot_build_are_refused_not_raised() -> None:
    async with loopback() as fake, SafeClient(LOOPBACK) as client:
        with pytest.raises(OutboundError) as err:
            await request(client, "POST", f"http://127.0.0.1:{fake.port}/", headers={"X-Name": "值"})
    assert err.value.outcome is Outcome.REFUSED and fake.heads == []


async def test_only_safe_clients_are_accepted() -> None:
    async with httpx.AsyncClient() as plain:
        with pytest.raises(TypeError):
            await request(plain, "GET", "https://example.com/")  # type: ignore[arg-type]


def _tls(tmp: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A CA, a server certificate for `name` signed by it; (server context, client context)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


async def test_tls_keeps_the_host_name_for_sni_and_certificate(tmp_path: Path) -> None:
    server_ctx, client_ctx = _tls(tmp_path, "hooks.pinned.test")
    seen_sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: seen_sni.append(name)  # type: ignore[assignment,misc]
    policy = OutboundPolicy.parse("hooks.pinned.test, wrong.pinned.test")
    resolver = Resolver(["127.0.0.1"])
    async with (
        loopback(tls=server_ctx) as fake,
        SafeClient(policy, resolver=resolver, verify=client_ctx) as client,
    ):
        answer = await request(client, "GET", f"https://hooks.pinned.test:{fake.port}/")
        assert answer.status == 200 and seen_sni == ["hooks.pinned.test"]
        # Same address, another name: the certificate does not match, so no answer.
        with pytest.raises(OutboundError) as err:
            await request(client, "GET", f"https://wrong.pinned.test:{fake.port}/")
    assert err.value.outcome is Outcome.REFUSED


async def test_check_url_at_save_time_resolves_too() -> None:
    with pytest.raises(InvalidArgument) as err:
        await check_url(
            "https://hooks.partner.example/x", OutboundPolicy(), Resolver(["10.1.2.3"]), field="hook.url"
        )
    assert err.value.violations[0].field == "hook.url"
    await check_url("https://hooks.partner.example/x", OutboundPolicy(), Resolver(["8.8.8.8"]))

    async def nxdomain(host: str, port: int) -> Sequence[str]:
        raise OSError("no such name")

    await check_url("https://not-yet.partner.example/x", OutboundPolicy(), nxdomain)  # checked again at send
    with pytest.raises(InvalidArgument):
        await check_url("https://10.0.0.1/x", OutboundPolicy(), nxdomain)
