"""The adapter for each external channel (one shared HTTP client per process)."""

from __future__ import annotations

import httpx

from salesops.notify.v1 import notification_pb2 as N
from services.notify.channels.base import Adapter
from services.notify.channels.email import SmtpEmail
from services.notify.channels.http_channels import DingTalkBot, SignedWebhook, SmsGateway, WeComBot


def adapters(client: httpx.AsyncClient) -> dict[int, Adapter]:
    return {
        N.CHANNEL_SMS: SmsGateway(client),
        N.CHANNEL_EMAIL: SmtpEmail(),
        N.CHANNEL_WECOM_BOT: WeComBot(client),
        N.CHANNEL_DINGTALK_BOT: DingTalkBot(client),
        N.CHANNEL_WEBHOOK: SignedWebhook(client),
    }
