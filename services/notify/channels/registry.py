"""The adapter for each external channel (one shared, checked HTTP client per process)."""

from __future__ import annotations

import httpx

from kit.net import OutboundPolicy, Resolver
from salesops.notify.v1 import notification_pb2 as N
from services.notify.channels.base import Adapter
from services.notify.channels.email import SmtpEmail
from services.notify.channels.http_channels import (
    DingTalkBot,
    SignedWebhook,
    SmsGateway,
    WeComBot,
    safe_client,
)


def adapters(
    client: httpx.AsyncClient | None = None,
    *,
    policy: OutboundPolicy | None = None,
    resolver: Resolver | None = None,
) -> dict[int, Adapter]:
    """Every adapter sends through kit.net under `policy` (default: SALESOPS_OUTBOUND_ALLOW).

    `client` is accepted for compatibility; unless it is a kit.net.SafeClient it is not
    used, since its connections would skip the outbound checks.
    """
    safe = safe_client(client, policy, resolver)
    return {
        N.CHANNEL_SMS: SmsGateway(safe),
        N.CHANNEL_EMAIL: SmtpEmail(safe.policy, safe.resolver),
        N.CHANNEL_WECOM_BOT: WeComBot(safe),
        N.CHANNEL_DINGTALK_BOT: DingTalkBot(safe),
        N.CHANNEL_WEBHOOK: SignedWebhook(safe),
    }
