"""Save-time checks of a channel configuration's destinations (the same rules as at send time)."""

from __future__ import annotations

from kit.errors import Violations
from kit.net import Blocked, OutboundPolicy, Resolver, Unresolved, parse_target, pin, smtp_destination
from kit.secrets import SecretsError, unseal
from salesops.notify.v1 import channel_config_pb2
from services.notify.channels.email import default_port, insecure_login
from services.notify.channels.http_channels import header_problem


async def check_destinations(
    cfg: channel_config_pb2.ChannelConfig,
    policy: OutboundPolicy,
    resolver: Resolver | None = None,
    *,
    prefix: str = "channel_config",
) -> None:
    """INVALID_ARGUMENT when the webhook URL or the SMTP host/port may not be reached, or a
    webhook header is one notify sets itself (Host, Content-Length, X-Salesops-*...) or malformed.

    A name that does not resolve right now is accepted: every send checks again.
    """
    v = Violations()
    kind = cfg.WhichOneof("settings")
    try:
        if kind == "webhook":
            await pin(parse_target(cfg.webhook.url, policy), policy, resolver)
        elif kind == "email" and cfg.email.host:
            dest = await smtp_destination(cfg.email.host, default_port(cfg.email), policy, resolver)
            if insecure_login(cfg.email, dest):
                v.add(f"{prefix}.email.security", "a user name and password need STARTTLS or implicit TLS")
    except Unresolved:
        pass
    except Blocked as exc:
        path = f"{prefix}.webhook.url"
        if kind == "email":
            path = f"{prefix}.email.port" if exc.reason.startswith("port") else f"{prefix}.email.host"
        v.add(path, f"not an allowed destination: {exc.reason}")
    if kind == "webhook":
        for name, value in cfg.webhook.headers.items():
            try:
                why = header_problem(name, unseal(value, allow_plaintext=True))
            except SecretsError:
                why = "a sealed value that does not open with SALESOPS_SECRETS_KEY"
            if why:
                v.add(f"{prefix}.webhook.headers[{name[:64]!r}]", why)
    v.raise_if_any("invalid channel configuration")
