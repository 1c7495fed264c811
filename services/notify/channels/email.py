"""E-mail over SMTP with the standard library's smtplib, run in a thread."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from salesops.notify.v1 import channel_config_pb2
from services.notify.channels.base import Message, SendError


def _send_blocking(settings: channel_config_pb2.EmailSettings, message: Message) -> str:
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
    msg_id = make_msgid(domain=settings.from_address.rsplit("@", 1)[-1] or "salesops")
    mail["Message-ID"] = msg_id
    mail["X-Salesops-Delivery"] = message.delivery_id
    mail.set_content(message.body)
    security = settings.security
    port = settings.port or (465 if security == channel_config_pb2.SMTP_SECURITY_IMPLICIT_TLS else 587)
    try:
        smtp: smtplib.SMTP
        if security == channel_config_pb2.SMTP_SECURITY_IMPLICIT_TLS:
            smtp = smtplib.SMTP_SSL(settings.host, port, timeout=15, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(settings.host, port, timeout=15)
        with smtp:
            if security == channel_config_pb2.SMTP_SECURITY_STARTTLS:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password.value)
            smtp.send_message(mail)
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendError("RECIPIENT_REFUSED", str(exc), permanent=True) from exc
    except smtplib.SMTPResponseException as exc:
        # 4xx replies are temporary by SMTP's own definition; 5xx are final.
        raise SendError(
            f"SMTP_{exc.smtp_code}",
            str(exc.smtp_error),
            permanent=exc.smtp_code >= 500,
            provider_code=str(exc.smtp_code),
        ) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError("UNREACHABLE", str(exc) or type(exc).__name__, permanent=False) from exc
    return msg_id


class SmtpEmail:
    async def send(self, config: channel_config_pb2.ChannelConfig, message: Message) -> str:
        if "@" not in message.address:
            raise SendError("BAD_ADDRESS", f"{message.address!r} is not an e-mail address", permanent=True)
        return await asyncio.to_thread(_send_blocking, config.email, message)
