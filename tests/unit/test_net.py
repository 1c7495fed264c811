"""kit.net without sockets: the outbound policy, the address checks and strict URL parsing."""

from __future__ import annotations

import ipaddress

import pytest

from kit.errors import InvalidArgument
from kit.net import (
    Blocked,
    OutboundPolicy,
    PolicyError,
    check_address,
    parse_target,
    refusal,
    validate_url,
)

STRICT = OutboundPolicy()

REFUSED_URLS = [
    "https://169.254.169.254",
    "https://169.254.169.254/latest/meta-data/iam/",
    "https://10.0.0.1",
    "https://172.16.5.4",
    "https://192.168.1.1",
    "https://100.64.0.1",  # CGNAT
    "https://127.0.0.1",
    "https://0.0.0.0",
    "https://224.0.0.1",
    "https://255.255.255.255",
    "https://240.0.0.1",
    "https://192.0.0.8",
    "http://127.0.0.1@example.com",
    "https://127.0.0.1@example.com",
    "https://user:pass@example.com",
    "https://example.com@127.0.0.1",
    "http://[::ffff:127.0.0.1]",
    "https://[::ffff:127.0.0.1]",
    "https://[::ffff:a9fe:a9fe]",  # metadata, IPv4-mapped
    "https://[::ffff:10.0.0.1]",
    "http://[64:ff9b::a9fe:a9fe]",  # metadata through NAT64
    "https://[64:ff9b::7f00:1]",
    "https://[64:ff9b:1::808:808]",  # local-use NAT64
    "https://[2002:7f00:1::1]",  # 6to4 around 127.0.0.1
    "https://[2002:a9fe:a9fe::1]",
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # Teredo
    "https://[::1]",
    "https://[::]",
    "https://[::127.0.0.1]",  # IPv4-compatible
    "https://[fe80::1]",
    "https://[fe80::1%25eth0]",
    "https://[fd00:ec2::254]",
    "https://[fc00::1]",
    "https://[ff02::1]",
    "http://2130706433",
    "https://2130706433",
    "https://0x7f.1",
    "https://0x7f000001",
    "https://017700000001",
    "https://0177.0.0.1",
    "https://127.1",
    "https://127.0.0.1.",
    "https://localhost",
    "https://LOCALHOST:8443",
    "https://api.localhost",
    "https://metadata.google.internal",
    "https://printer.local",
    "https://intranet",
    "https://exa_mple.com",
    "https://example.com\\@127.0.0.1",
    "https://exa mple.com",
    "https://example.com:0",
    "https://example.com:99999",
    "https://",
    "http://example.com",  # plain http outside the allow list
    "ftp://example.com/file",
    "file:///etc/passwd",
    "gopher://example.com:70/_",
    "dict://example.com:11211/",
    "//example.com/hook",
    "https://" + "a" * 2100 + ".com",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_refused_urls(url: str) -> None:
    with pytest.raises(Blocked):
        parse_target(url, STRICT)
    with pytest.raises(InvalidArgument) as err:
        validate_url(url, STRICT, field="channel_config.webhook.url")
    assert err.value.violations[0].field == "channel_config.webhook.url"
    assert err.value.violations[0].description.startswith("not an allowed destination: ")


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://example.com", "example.com", 443),
        ("https://Hooks.Example.com:8443/x?y=1#f", "hooks.example.com", 8443),
        ("https://example.com./hook", "example.com", 443),
        ("https://8.8.8.8/hook", "8.8.8.8", 443),
        ("https://[2606:4700:4700::1111]:8443/", "2606:4700:4700::1111", 8443),
        ("https://例子.测试/hook", "xn--fsqu00a.xn--0zwm56d", 443),
    ],
)
def test_public_https_urls_pass(url: str, host: str, port: int) -> None:
    target = parse_target(url, STRICT)
    assert (target.scheme, target.host, target.port, target.trusted) == ("https", host, port, False)
    validate_url(url, STRICT)


def test_reasons_are_specific() -> None:
    def reason(url: str) -> str:
        with pytest.raises(Blocked) as err:
            parse_target(url, STRICT)
        return err.value.reason

    assert "metadata" in reason("https://169.254.169.254")
    assert "metadata" in reason("https://[64:ff9b::a9fe:a9fe]")
    assert reason("https://10.0.0.1") == "10.0.0.1 is not a public address"
    assert "127.0.0.1" in reason("http://[::ffff:127.0.0.1]")
    assert "user names" in reason("http://127.0.0.1@example.com")
    assert "canonical" in reason("http://2130706433")
    assert "https" in reason("http://example.com")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.1.2.3",
        "172.31.255.255",
        "192.168.0.1",
        "169.254.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.255",
        "0.0.0.0",
        "224.0.0.251",
        "239.255.255.250",
        "255.255.255.255",
        "198.18.0.1",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fd00:ec2::254",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:192.168.0.1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::0a00:0001",
        "2002:c0a8:0101::1",
        "2001::1",
        "2001:db8::1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert refusal(ipaddress.ip_address(address))
    assert check_address(address, 443, STRICT)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "64:ff9b::808:808"]
)
def test_public_addresses(address: str) -> None:
    assert check_address(address, 443, STRICT) == ""


def test_allow_list_is_explicit_and_narrow() -> None:
    loopback = OutboundPolicy.parse("127.0.0.1, [::1]:8443, fake.test:9000")
    assert parse_target("http://127.0.0.1:8080/hook", loopback).trusted
    assert parse_target("https://[::1]:8443/", loopback).trusted
    with pytest.raises(Blocked):
        parse_target("https://[::1]:8444/", loopback)  # the entry names one port
    assert parse_target("http://fake.test:9000/", loopback).trusted
    with pytest.raises(Blocked):
        parse_target("http://fake.test:9001/", loopback)
    # Listed loopback does not open anything else.
    for url in ("https://10.0.0.1", "http://127.0.0.2", "http://127.0.0.1@example.com", "http://example.com"):
        with pytest.raises(Blocked):
            parse_target(url, loopback)
    # The same destination in IPv4-mapped form is the same destination.
    assert check_address("::ffff:127.0.0.1", 80, loopback) == ""


def test_metadata_is_never_allowed() -> None:
    wide = OutboundPolicy.parse("169.254.0.0/16, fd00:ec2::/32")
    assert check_address("169.254.1.1", 80, wide) == ""
    for address in ("169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"):
        assert "metadata" in check_address(address, 80, wide)
        assert "metadata" in check_address(address, 80, wide, trusted=True)


@pytest.mark.parametrize(
    "spec",
    ["0.0.0.0/0", "::/0", "0.0.0.0/1", "10.0.0.0/7", "2000::/3", "not a host!", "[::1", "a:b:c/99", "h:0"],
)
def test_no_global_off_switch(spec: str) -> None:
    with pytest.raises(PolicyError):
        OutboundPolicy.parse(spec)
    with pytest.raises(PolicyError, match="SALESOPS_OUTBOUND_ALLOW"):
        OutboundPolicy.from_env({"SALESOPS_OUTBOUND_ALLOW": spec})


def test_policy_from_environment_is_strict_by_default() -> None:
    assert OutboundPolicy.from_env({}) == OutboundPolicy()
    assert OutboundPolicy.from_env({"SALESOPS_OUTBOUND_ALLOW": " "}).allow == ()
    listed = OutboundPolicy.from_env({"SALESOPS_OUTBOUND_ALLOW": "127.0.0.1,10.20.0.0/16"})
    assert len(listed.allow) == 2 and check_address("10.20.3.4", 443, listed) == ""
