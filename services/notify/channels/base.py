"""The adapter interface and its outcome types.

What a provider answers stays inside the adapter: errors carry our own code, the
status class (kit.net.Outcome) as the message, and at most a short, sanitised
provider code, so neither delivery errors nor TestChannelConfig can be used to read
a target's answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from kit.net import OutboundError, Outcome, status_class
from kit.secrets import SecretsError, unseal
from salesops.notify.v1 import channel_config_pb2

_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True)
class Message:
    delivery_id: str
    notification_id: str
    category: str
    address: str
    title: str
    body: str


class SendError(Exception):
    """A provider refused or could not be reached. `permanent` failures are not retried."""

    def __init__(
        self, code: str, message: str, *, permanent: bool, provider_code: str = "", outcome: str = ""
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.permanent = permanent
        self.provider_code = provider_code
        self.outcome = outcome or message


class Adapter(Protocol):
    async def send(
        self, config: channel_config_pb2.ChannelConfig, message: Message, *, idempotency_key: str = ""
    ) -> str:
        """Deliver `message`; returns the provider's message id. Raises SendError.

        `idempotency_key` (default: the delivery id) goes to the provider where it has a
        place for one, so a retried send of the same delivery is recognised as such.
        """
        ...


def http_failure(status: int) -> SendError:
    # 408/429 and 5xx are the provider's trouble: retry. Other 4xx: our request is wrong.
    transient = status in (408, 429) or status >= 500
    outcome = status_class(status)
    return SendError(f"HTTP_{status}", str(outcome), permanent=not transient, provider_code=str(status))


def no_answer(exc: OutboundError) -> SendError:
    if exc.outcome is Outcome.BLOCKED:
        # Our own reason (the policy's), never the target's: nothing was sent.
        return SendError("BLOCKED", f"blocked: {exc.reason}", permanent=True, outcome=str(exc.outcome))
    if exc.outcome is Outcome.TIMEOUT:
        return SendError("TIMEOUT", str(exc.outcome), permanent=False)
    return SendError("UNREACHABLE", str(exc.outcome), permanent=False)


def opened(secret: str) -> str:
    """A stored secret in plaintext: sealed values (kit.secrets) are opened, plain ones pass."""
    try:
        return unseal(secret, allow_plaintext=True)
    except SecretsError:
        # Rotated away or another deployment's key: retrying will not help; the message says what to fix.
        raise SendError(
            "SECRET_UNREADABLE", "a stored secret does not open with SALESOPS_SECRETS_KEY", permanent=True
        ) from None


def token(value: object, fallback: str = "") -> str:
    """A provider's code or id, kept only when it looks like one (no free text comes back)."""
    text = str(value)
    return text if _TOKEN.fullmatch(text) else fallback
