"""Partner key rules, pure: a leaked secret is recognisable offline, expiry is mandatory, scopes and ranges checked."""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from services.integration.domain import partner_keys as rules

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def test_secrets_have_prefix_random_and_a_crc32_checksum() -> None:
    live, test = rules.new_secret(live=True), rules.new_secret(live=False)
    assert live.startswith("so_live_") and test.startswith("so_test_")
    for secret in (live, test):
        assert len(secret) == rules.SECRET_LENGTH == 8 + 32 + 6
        body, check = secret[:-6], secret[-6:]
        assert check == rules.base62(zlib.crc32(body.encode()), 6)
        assert rules.looks_like_secret(secret)
        assert rules.hint(secret) == secret[:12]
    assert len({rules.new_secret(live=True) for _ in range(200)}) == 200


def test_a_changed_character_breaks_the_checksum() -> None:
    secret = rules.new_secret(live=True)
    rng = random.Random(7)
    for _ in range(200):
        i = rng.randrange(8, len(secret))
        other = rng.choice([ch for ch in rules.ALPHABET if ch != secret[i]])
        assert not rules.looks_like_secret(secret[:i] + other + secret[i + 1 :])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "so_live_",
        "sk_live_" + "a" * 38,
        "so_prod_" + "a" * 38,
        "so_live_" + "a" * 37,
        "so_live_" + "-" * 38,
    ],
)
def test_look_alikes_are_not_secrets(text: str) -> None:
    assert not rules.looks_like_secret(text)


def test_a_scanner_finds_real_secrets_in_text_and_skips_look_alikes() -> None:
    real = rules.new_secret(live=True)
    fake = real[:-1] + ("A" if real[-1] != "A" else "B")
    text = f"curl -H 'x-key: {real}' ...\nold: {fake}\nand so_test_short"
    assert rules.find_secrets(text) == [real]
    assert rules.secret_hash(real) != rules.secret_hash(fake) and len(rules.secret_hash(real)) == 64


def test_expiry_is_mandatory_and_bounded() -> None:
    assert rules.expiry_problem(None, NOW) is not None
    assert rules.expiry_problem(NOW - timedelta(days=1), NOW) is not None
    assert rules.expiry_problem(NOW + timedelta(minutes=30), NOW) is not None
    assert rules.expiry_problem(NOW + timedelta(days=365), NOW) is None
    assert rules.expiry_problem(NOW + timedelta(days=730), NOW) is None
    assert rules.expiry_problem(NOW + timedelta(days=800), NOW) is not None


def test_scopes() -> None:
    assert rules.scope_problems([]) != []
    assert rules.scope_problems(["leads.read", "pipeline.write", "leads.GetLead", "integration.stock"]) == []
    assert rules.scope_problems(["leads:read"]) != []
    assert rules.scope_problems(["billing.read"]) != []
    assert rules.scope_problems(["leads.admin"]) != []
    assert rules.scope_problems([f"leads.M{i}" for i in range(51)]) != []
    assert rules.granted_scopes(["leads.read", "pipeline.read"], []) == ["leads.read", "pipeline.read"]
    assert rules.granted_scopes(["leads.read", "pipeline.read"], ["leads.read"]) == ["leads.read"]
    assert rules.granted_scopes(["leads.read"], ["leads.write"]) is None


def test_address_ranges() -> None:
    assert rules.cidr_problems(["203.0.113.0/24", "2001:db8::/32"]) == []
    assert rules.cidr_problems(["not-a-range"]) != []
    assert rules.address_allowed("198.51.100.7", [])
    assert rules.address_allowed("203.0.113.9", ["203.0.113.0/24"])
    assert not rules.address_allowed("127.0.0.1", ["203.0.113.0/24"])
    assert not rules.address_allowed("", ["203.0.113.0/24"])
    assert rules.address_allowed("2001:db8::1", ["203.0.113.0/24", "2001:db8::/32"])


def test_state_rotation_grace_and_token_lifetime() -> None:
    assert rules.state_of(rules.KeyFacts(None, NOW + timedelta(days=1)), NOW) == rules.KeyState.ACTIVE
    assert rules.state_of(rules.KeyFacts(None, NOW), NOW) == rules.KeyState.EXPIRED
    assert rules.state_of(rules.KeyFacts(NOW, NOW + timedelta(days=1)), NOW) == rules.KeyState.REVOKED
    naive = (NOW + timedelta(days=1)).replace(tzinfo=None)  # as SQLite hands it back
    assert rules.state_of(rules.KeyFacts(None, naive), NOW) == rules.KeyState.ACTIVE
    assert rules.grace_period(None) == timedelta(hours=24)
    assert rules.grace_period(timedelta(0)) == timedelta(0)
    with pytest.raises(ValueError):
        rules.grace_period(timedelta(days=8))
    assert rules.secret_usable(None, NOW)
    assert rules.secret_usable(NOW + timedelta(seconds=1), NOW)
    assert not rules.secret_usable(NOW, NOW)
    assert rules.token_lifetime(timedelta(minutes=15), NOW, NOW + timedelta(minutes=5)) == timedelta(
        minutes=5
    )
    assert rules.last_used_due(None, NOW) and not rules.last_used_due(NOW - timedelta(seconds=30), NOW)
