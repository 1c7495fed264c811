"""kit.resources.paging: page sizes, signed keyset tokens, the secret's source."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.auth import DEV_SECRET
from kit.config import ConfigError
from kit.errors import InvalidArgument
from kit.resources.paging import PageRequest, PageTokens, page_token_secret, query_key
from salesops.common.v1.types_pb2 import Money

SECRET = b"s" * 32


def test_page_size_default_clamp_and_negative() -> None:
    assert PageRequest.parse(0, "") == PageRequest(50, "")
    assert PageRequest.parse(7, "t") == PageRequest(7, "t")
    assert PageRequest.parse(10_000, "").size == 500
    assert PageRequest.parse(0, "", default=20, maximum=100).size == 20
    assert PageRequest.parse(101, "", default=20, maximum=100).size == 100
    with pytest.raises(InvalidArgument) as caught:
        PageRequest.parse(-1, "")
    assert caught.value.violations[0].field == "page_size"


def test_token_round_trips_typed_values() -> None:
    tokens = PageTokens(SECRET)
    values = [
        None,
        True,
        "x%_\\y",
        42,
        -(2**70),
        1.5,
        Decimal("12.30"),
        datetime(2026, 12, 6, 1, 2, 3, 456789, tzinfo=UTC),
        datetime(2026, 12, 6, 1, 2, 3),
        date(2027, 2, 6),
        b"\x00\xff",
    ]
    token = tokens.encode("t1", "q", values)
    assert "=" not in token and "+" not in token and "/" not in token
    decoded = tokens.decode(token, "t1", "q")
    assert decoded == values
    assert [type(v) for v in decoded] == [type(v) for v in values]


def _refused(tokens: PageTokens, token: str, tenant: str = "t1", query: str = "q") -> None:
    with pytest.raises(InvalidArgument) as caught:
        tokens.decode(token, tenant, query)
    assert caught.value.violations[0].field == "page_token"


def test_token_is_bound_to_tenant_query_and_secret() -> None:
    tokens = PageTokens(SECRET)
    token = tokens.encode("t1", "q", ["a", 1])
    _refused(tokens, token, tenant="t2")
    _refused(tokens, token, query="q2")
    _refused(PageTokens(b"o" * 32), token)


@pytest.mark.parametrize("forged", ["", "x", "!!!!", "AAAA", "é", "MQ", "a" * 200])
def test_forged_tokens_are_invalid_argument(forged: str) -> None:
    _refused(PageTokens(SECRET), forged)


def test_flipping_any_byte_is_detected() -> None:
    tokens = PageTokens(SECRET)
    token = tokens.encode("t1", "q", ["abc", 7])
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for i in range(len(raw)):
        tampered = bytearray(raw)
        tampered[i] ^= 0x01
        _refused(tokens, base64.urlsafe_b64encode(bytes(tampered)).rstrip(b"=").decode())


def test_query_key_is_stable_and_distinguishes_parts() -> None:
    assert query_key("a", 1) == query_key("a", 1)
    assert query_key("a", 1) != query_key("a", "1")
    assert query_key("ab", "c") != query_key("a", "bc")
    assert query_key(Money(currency="CNY")) != query_key(Money(currency="EUR"))


def test_secret_explicit_or_derived_from_the_jwt_secret() -> None:
    explicit = "p" * 40
    assert page_token_secret({"SALESOPS_PAGE_TOKEN_SECRET": explicit}) == explicit.encode()
    derived_dev = page_token_secret({})
    derived_real = page_token_secret({"SALESOPS_JWT_SECRET": "j" * 40})
    assert derived_dev != derived_real
    assert DEV_SECRET.encode() not in (derived_dev, derived_real)  # never the JWT secret itself
    assert page_token_secret({"SALESOPS_JWT_SECRET": "j" * 40}) == derived_real
    with pytest.raises(ConfigError):
        page_token_secret({"SALESOPS_PAGE_TOKEN_SECRET": "short"})
    with pytest.raises(ConfigError):
        PageTokens(b"short")


@settings(max_examples=300, deadline=None)
@given(
    forged=st.one_of(
        st.text(max_size=80), st.binary(max_size=60).map(lambda b: base64.urlsafe_b64encode(b).decode())
    )
)
def test_any_forged_token_is_invalid_argument_never_a_crash(forged: str) -> None:
    _refused(PageTokens(SECRET), forged)


@pytest.mark.parametrize(
    "body", [b"\x01{}", b'\x01[{"zz":"1"}]', b'\x01[{"i":"x"}]', b'\x01[{"i":1}]', b"\x02[]", b"\x01["]
)
def test_signed_but_malformed_bodies_are_invalid_argument(body: bytes) -> None:
    """Even a correctly signed token (say, from an older version) never decodes into a crash."""
    tokens = PageTokens(SECRET)
    raw = body + tokens._mac("t1", "q", body)
    _refused(tokens, base64.urlsafe_b64encode(raw).rstrip(b"=").decode())
