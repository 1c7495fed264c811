"""Secrets at rest: values sealed with Fernet under a key from configuration.

`SALESOPS_SECRETS_KEY` is a comma-separated list of Fernet keys (urlsafe base64 of 32
bytes, `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`).
The first key seals; every key unseals, so a key is rotated by putting the new one first,
re-sealing stored values (`reseal`), then dropping the old one.

In embedded (dev) mode with no key, a published dev key is derived from DEV_KEY_SEED so
that local data stays readable across restarts; it protects nothing. In production a
missing key is fatal: services call `require_key()` at start.

Sealed values carry the prefix `sealed:v1:` so that a sealed value is never sealed twice
and a plaintext value left from before sealing is recognised as such.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_VAR = "SALESOPS_SECRETS_KEY"
PREFIX = "sealed:v1:"
DEV_KEY_SEED = b"salesops-dev-secrets-key-change-me-in-production"
DEV_KEY = base64.urlsafe_b64encode(hashlib.sha256(DEV_KEY_SEED).digest()).decode()


class SecretsError(ValueError):
    """A sealed value does not open with any configured key, or the key configuration is unusable."""


class Sealer:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretsError("at least one key is required")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except (ValueError, TypeError):
            raise SecretsError(f"{KEY_VAR} must hold Fernet keys (urlsafe base64 of 32 bytes)") from None
        self.uses_dev_key = keys == [DEV_KEY]

    def seal(self, plaintext: str) -> str:
        """The sealed form of `plaintext`; an already sealed value is returned unchanged. "" stays ""."""
        if not plaintext or is_sealed(plaintext):
            return plaintext
        return PREFIX + self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def unseal(self, value: str, *, allow_plaintext: bool = False) -> str:
        """The plaintext. A value without the marker is an error unless `allow_plaintext` (old rows)."""
        if not value:
            return value
        if not is_sealed(value):
            if allow_plaintext:
                return value
            raise SecretsError("the value is not sealed")
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise SecretsError("the value does not open with any configured key") from None

    def reseal(self, value: str) -> str:
        """Sealed again under the first (newest) key; plaintext values get sealed."""
        if not is_sealed(value):
            return self.seal(value)
        try:
            return PREFIX + self._fernet.rotate(value[len(PREFIX) :].encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SecretsError("the value does not open with any configured key") from None


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def keys_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """The configured keys, or the dev key in embedded mode. SecretsError in production without one."""
    env = os.environ if environ is None else environ
    keys = [k.strip() for k in env.get(KEY_VAR, "").split(",") if k.strip()]
    production = env.get("SALESOPS_ENV", "embedded").strip() == "production"
    if production and (not keys or DEV_KEY in keys):
        raise SecretsError(
            f"SALESOPS_ENV=production needs {KEY_VAR} (one or more Fernet keys, newest first); "
            "the dev key is refused"
        )
    return keys or [DEV_KEY]


def require_key(environ: Mapping[str, str] | None = None) -> None:
    """Call at start: raises SecretsError (refuse to start) when the configuration cannot seal."""
    Sealer(keys_from_env(environ))


_default: tuple[str, Sealer] | None = None


def sealer() -> Sealer:
    """The process's sealer from the environment (rebuilt if the variable changes, e.g. in tests)."""
    global _default
    spec = os.environ.get(KEY_VAR, "") + "|" + os.environ.get("SALESOPS_ENV", "")
    if _default is None or _default[0] != spec:
        _default = (spec, Sealer(keys_from_env()))
    return _default[1]


def seal(plaintext: str) -> str:
    return sealer().seal(plaintext)


def unseal(value: str, *, allow_plaintext: bool = False) -> str:
    return sealer().unseal(value, allow_plaintext=allow_plaintext)
