"""E-mail over SMTP with the standard library's smtplib, run in a thread.

The host and port go through kit.net's SMTP check (submission ports, public
addresses, resolved once and pinned); the server's reply text never leaves here.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr

from kit.net import (
    Blocked,
    OutboundPolicy,
    Resolver,
    SmtpDestination,
    SmtpTimeout,
    Unresolved,
    connect_smtp,
    smtp_destination,
)
from salesops.notify.v1 import channel_config_pb2
from services.notify.channels.base import Message, SendError, opened

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def default_port(settings: channel_config_pb2.EmailSettings) -> int:
    implicit = settings.security == channel_config_pb2.SMTP_SECURITY_IMPLICIT_TLS
    return settings.port or (465 if implicit else 587)


def insecure_login(settings: channel_config_pb2.EmailSettings, dest: SmtpDestination) -> bool:
    """A password over a plain connection, to a server outside the allow list."""
    return (
        bool(settings.username)
        and settings.security == channel_config_pb2.SMTP_SECURITY_NONE
        and not dest.listed
    )


def _compose(settings: channel_config_pb2.EmailSettings, message: Message, key: str) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = (
        formataddr((settings.from_name, settings.from_address))
        if settings.from_name
        else settings.from_address
    )
    mail["To"] = message.address
    if settings.reply_to:
        mail["Reply-To"] = settings.reply_to
    # One Message-ID per delivery: a resent delivery is the same message to the receiving side.
    domain = _UNSAFE.sub("", settings.from_address.rsplit("@", 1)[-1]) or "salesops"
    msg_id = f"<{_UNSAFE.sub('', key) or 'x'}@{domain}>"
    mail["Message-ID"] = msg_id
    mail["X-Salesops-Delivery"] = message.delivery_id
    mail.set_content(message.body)
    return mail


def _send_blocking(
    dest: SmtpDestination,
    settings: channel_config_pb2.EmailSettings,
    message: Message,
    key: str,
    password: str,
    deadline: float,
) -> str:
    try:
        mail = _compose(settings, message, key)
    except ValueError:  # a line break in a header (address, title, from): refused, never sent
        raise SendError("BAD_MESSAGE", "a header holds a line break", permanent=True) from None
    msg_id = str(mail["Message-ID"])
    security = settings.security
    try:
        with connect_smtp(
            dest,
            implicit_tls=security == channel_config_pb2.SMTP_SECURITY_IMPLICIT_TLS,
            timeout=15,
            deadline=deadline,
            context=ssl.create_default_context(),
        ) as smtp:
            if security == channel_config_pb2.SMTP_SECURITY_STARTTLS:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, password)
            smtp.send_message(mail)
    except smtplib.SMTPRecipientsRefused:
        raise SendError("RECIPIENT_REFUSED", "5xx", permanent=True) from None
    except smtplib.SMTPResponseException as exc:
        # 4xx replies are temporary by SMTP's own definition; 5xx are final. The reply text stays here.
        code = int(exc.smtp_code)
        raise SendError(
            f"SMTP_{code}", f"{code // 100}xx", permanent=code >= 500, provider_code=str(code)
        ) from None
    except (TimeoutError, SmtpTimeout):
        raise SendError("TIMEOUT", "timeout", permanent=False) from None
    except (OSError, smtplib.SMTPException):
        raise SendError("UNREACHABLE", "refused", permanent=False) from None
    return msg_id


class SmtpEmail:
    def __init__(
        self,
        policy: OutboundPolicy | None = None,
        resolver: Resolver | None = None,
        *,
        deadline: float = 60.0,  # the whole conversation with the server (kit.net.smtp)
    ) -> None:
        self.policy = policy or OutboundPolicy.from_env()
        self.resolver = resolver
        self.deadline = deadline

    async def send(
        self, config: channel_config_pb2.ChannelConfig, message: Message, *, idempotency_key: str = ""
    ) -> str:
        if "@" not in message.address:
            raise SendError("BAD_ADDRESS", "not an e-mail address", permanent=True)
        settings = config.email
        try:
            dest = await smtp_destination(settings.host, default_port(settings), self.policy, self.resolver)
        except Unresolved:
            raise SendError("UNREACHABLE", "refused", permanent=False) from None
        except Blocked as exc:
            raise SendError("BLOCKED", f"blocked: {exc.reason}", permanent=True, outcome="blocked") from None
        if insecure_login(settings, dest):
            raise SendError(
                "INSECURE_LOGIN", "blocked: a password needs TLS", permanent=True, outcome="blocked"
            )
        key = idempotency_key or message.delivery_id
        password = opened(settings.password.value)
        return await asyncio.to_thread(_send_blocking, dest, settings, message, key, password, self.deadline)
