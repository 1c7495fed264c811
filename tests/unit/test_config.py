"""kit.config and the production gate of kit.auth: what each environment accepts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kit.auth import DEV_SECRET, AuthConfig, AuthConfigError, require_production_ready
from kit.config import ConfigError, Settings, deployment_environment

REAL_SECRET = "a-production-secret-that-nobody-has-published-0123"


def test_deployment_environment() -> None:
    assert deployment_environment({}) == "embedded"
    assert deployment_environment({"SALESOPS_ENV": " production "}) == "production"
    with pytest.raises(ConfigError, match="SALESOPS_ENV"):
        deployment_environment({"SALESOPS_ENV": "staging"})


@pytest.mark.parametrize("secret", [None, DEV_SECRET])
def test_production_refuses_the_dev_secret(secret: str | None) -> None:
    env = {"SALESOPS_ENV": "production"} | ({"SALESOPS_JWT_SECRET": secret} if secret else {})
    with pytest.raises(AuthConfigError) as caught:
        AuthConfig.from_env(env)
    message = str(caught.value)
    assert "SALESOPS_ENV=production refuses to start" in message and "SALESOPS_JWT_SECRET" in message
    with pytest.raises(AuthConfigError, match="refuses to start"):
        require_production_ready(env)
    with pytest.raises(AuthConfigError, match="refuses to start"):
        AuthConfig(environment="production")


def test_dev_secret_is_fine_when_embedded() -> None:
    assert AuthConfig.from_env({}).uses_dev_secret
    assert require_production_ready({"SALESOPS_ENV": "embedded"}).uses_dev_secret
    AuthConfig().check_environment("embedded")
    with pytest.raises(AuthConfigError, match="refuses to start"):
        AuthConfig().check_environment("production")


def test_production_with_a_real_secret_or_keys_starts(tmp_path: Path) -> None:
    config = require_production_ready({"SALESOPS_ENV": "production", "SALESOPS_JWT_SECRET": REAL_SECRET})
    assert (config.environment, config.uses_dev_secret) == ("production", False)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "pub.pem"
    pem.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    env = {
        "SALESOPS_ENV": "production",
        "SALESOPS_JWT_ALG": "RS256",
        "SALESOPS_JWT_PUBLIC_KEY_FILE": str(pem),
    }
    assert require_production_ready(env).alg == "RS256"


def test_startup_gate_loads_the_keys(tmp_path: Path) -> None:
    env = {"SALESOPS_JWT_ALG": "RS256", "SALESOPS_JWT_PUBLIC_KEY_FILE": str(tmp_path / "absent.pem")}
    AuthConfig.from_env(env)  # settings alone look fine...
    with pytest.raises(AuthConfigError, match=r"absent\.pem"):
        require_production_ready(env)  # ...but serving would fail on the first token: refuse now


def test_startup_gate_refuses_an_unknown_environment() -> None:
    with pytest.raises(ConfigError, match="SALESOPS_ENV"):
        require_production_ready({"SALESOPS_ENV": "prod"})


def test_max_lifetime_from_env() -> None:
    assert AuthConfig.from_env({"SALESOPS_JWT_MAX_LIFETIME": "1h30m"}).max_lifetime == timedelta(minutes=90)
    assert AuthConfig.from_env({"SALESOPS_JWT_MAX_LIFETIME": "600"}).max_lifetime == timedelta(minutes=10)


def test_reflection_is_off_in_production_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env("leads").grpc.reflection
    monkeypatch.setenv("SALESOPS_ENV", "production")
    production = Settings.from_env("leads")
    assert production.environment == "production" and not production.grpc.reflection
    assert not production.migrate_on_start
    monkeypatch.setenv("SALESOPS_GRPC_REFLECTION", "true")
    assert Settings.from_env("leads").grpc.reflection
    monkeypatch.setenv("SALESOPS_ENV", "embedded")
    monkeypatch.setenv("SALESOPS_GRPC_REFLECTION", "false")
    assert not Settings.from_env("leads").grpc.reflection
