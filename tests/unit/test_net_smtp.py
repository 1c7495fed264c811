"""kit.net's SMTP connect: host and port checked like HTTP destinations, resolved once, pinned."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from kit.net import Blocked, OutboundPolicy, Unresolved, connect_smtp, smtp_destination
from tests.notify.fakes import smtp_server

STRICT = OutboundPolicy()


def answers(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> Sequence[str]:
        return addresses

    return resolve


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("10.0.0.1", 587),
        ("127.0.0.1", 25),
        ("169.254.169.254", 587),
        ("::1", 587),
        ("::ffff:127.0.0.1", 587),
        ("localhost", 587),
        ("2130706433", 587),
        ("smtp.internal", 587),
        ("user@smtp.example.com", 587),
    ],
)
async def test_refused_smtp_hosts(host: str, port: int) -> None:
    with pytest.raises(Blocked):
        await smtp_destination(host, port, STRICT, answers("8.8.8.8"))


async def test_names_resolving_to_private_addresses_are_refused() -> None:
    with pytest.raises(Blocked) as err:
        await smtp_destination("smtp.example.com", 587, STRICT, answers("192.168.1.10"))
    assert "not public" in err.value.reason


async def test_only_submission_ports() -> None:
    for port in (25, 465, 587, 2525):
        dest = await smtp_destination("smtp.example.com", port, STRICT, answers("8.8.8.8"))
        assert (dest.host, dest.port, dest.address) == ("smtp.example.com", port, "8.8.8.8")
    for port in (22, 80, 6379, 11211, 2526):
        with pytest.raises(Blocked, match="port"):
            await smtp_destination("smtp.example.com", port, STRICT, answers("8.8.8.8"))


async def test_unresolvable_is_its_own_case() -> None:
    async def nxdomain(host: str, port: int) -> Sequence[str]:
        raise OSError("no such name")

    with pytest.raises(Unresolved):
        await smtp_destination("gone.example.com", 587, STRICT, nxdomain)


async def test_the_connection_goes_to_the_pinned_address() -> None:
    """`mail.pinned.test` resolves nowhere but in the injected resolver: delivery proves the pin."""
    async with smtp_server() as fake:
        policy = OutboundPolicy.parse(f"mail.pinned.test:{fake.port}")
        dest = await smtp_destination("mail.pinned.test", fake.port, policy, answers("127.0.0.1"))

        def send() -> None:
            with connect_smtp(dest, implicit_tls=False, timeout=5) as smtp:
                smtp.sendmail("a@salesops.test", ["b@example.com"], b"Subject: hi\r\n\r\nbody")

        await asyncio.to_thread(send)
        with pytest.raises(Blocked):  # the listed port only
            await smtp_destination("mail.pinned.test", fake.port + 1, policy, answers("127.0.0.1"))
    assert fake.messages[0][1] == ["b@example.com"]
