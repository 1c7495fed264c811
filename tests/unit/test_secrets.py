"""kit.secrets: sealing at rest, key rotation, and the production key requirement."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from kit import secrets
from kit.secrets import DEV_KEY, PREFIX, Sealer, SecretsError, is_sealed, keys_from_env, require_key


def test_seal_round_trip_and_marker() -> None:
    sealer = Sealer([Fernet.generate_key().decode()])
    sealed = sealer.seal("Bearer partner-token-密钥")
    assert is_sealed(sealed) and sealed.startswith(PREFIX)
    assert "partner-token" not in sealed
    assert sealer.unseal(sealed) == "Bearer partner-token-密钥"
    assert sealer.seal(sealed) == sealed  # never sealed twice
    assert sealer.seal("") == "" and sealer.unseal("") == ""
    assert sealer.seal("x") != sealer.seal("x")  # fresh IV each time


def test_plaintext_is_recognised_and_refused_unless_asked() -> None:
    sealer = Sealer([Fernet.generate_key().decode()])
    with pytest.raises(SecretsError):
        sealer.unseal("legacy-plain-value")
    assert sealer.unseal("legacy-plain-value", allow_plaintext=True) == "legacy-plain-value"


def test_wrong_key_and_tampering_fail_closed() -> None:
    sealed = Sealer([Fernet.generate_key().decode()]).seal("secret")
    other = Sealer([Fernet.generate_key().decode()])
    with pytest.raises(SecretsError):
        other.unseal(sealed)
    with pytest.raises(SecretsError):
        other.unseal(sealed[:-4] + "AAAA")


def test_rotation_with_several_keys() -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = Sealer([old_key]).seal("s3cret")
    rotating = Sealer([new_key, old_key])
    assert rotating.unseal(stored) == "s3cret"
    resealed = rotating.reseal(stored)
    assert Sealer([new_key]).unseal(resealed) == "s3cret"
    with pytest.raises(SecretsError):
        Sealer([old_key]).unseal(resealed)
    assert is_sealed(rotating.reseal("plain")) and rotating.unseal(rotating.reseal("plain")) == "plain"


def test_keys_from_configuration() -> None:
    one, two = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert keys_from_env({"SALESOPS_SECRETS_KEY": f" {one} , {two} "}) == [one, two]
    assert keys_from_env({}) == [DEV_KEY]  # embedded: the published dev key
    assert Sealer(keys_from_env({})).uses_dev_key
    with pytest.raises(SecretsError, match="Fernet"):
        require_key({"SALESOPS_SECRETS_KEY": "not-a-key"})


def test_production_refuses_to_start_without_a_real_key() -> None:
    with pytest.raises(SecretsError, match="SALESOPS_SECRETS_KEY"):
        require_key({"SALESOPS_ENV": "production"})
    with pytest.raises(SecretsError, match="dev key"):
        require_key({"SALESOPS_ENV": "production", "SALESOPS_SECRETS_KEY": DEV_KEY})
    require_key({"SALESOPS_ENV": "production", "SALESOPS_SECRETS_KEY": Fernet.generate_key().decode()})


def test_the_dev_key_is_deterministic_and_documented() -> None:
    import base64
    import hashlib

    assert base64.urlsafe_b64encode(hashlib.sha256(secrets.DEV_KEY_SEED).digest()).decode() == DEV_KEY
    sealed = Sealer([DEV_KEY]).seal("dev")
    assert Sealer(keys_from_env({})).unseal(sealed) == "dev"  # survives restarts


def test_module_level_helpers_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("SALESOPS_SECRETS_KEY", key)
    sealed = secrets.seal("value")
    assert Sealer([key]).unseal(sealed) == "value" and secrets.unseal(sealed) == "value"
    monkeypatch.setenv("SALESOPS_SECRETS_KEY", Fernet.generate_key().decode())
    with pytest.raises(SecretsError):
        secrets.unseal(sealed)
