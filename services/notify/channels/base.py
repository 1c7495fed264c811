"""The adapter interface and its outcome types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from salesops.notify.v1 import channel_config_pb2


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

    def __init__(self, code: str, message: str, *, permanent: bool, provider_code: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.permanent = permanent
        self.provider_code = provider_code


class Adapter(Protocol):
    async def send(self, config: channel_config_pb2.ChannelConfig, message: Message) -> str:
        """Deliver `message`; returns the provider's message id. Raises SendError."""
        ...


def http_failure(status: int, text: str) -> SendError:
    # 408/429 and 5xx are the provider's trouble: retry. Other 4xx: our request is wrong.
    transient = status in (408, 429) or status >= 500
    return SendError(f"HTTP_{status}", text[:300], permanent=not transient, provider_code=str(status))
