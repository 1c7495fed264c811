"""Outbound network access: SSRF-safe HTTP (httpx) and SMTP connections, and the policy behind them.

Every call to a third party goes through here: the URL is parsed strictly, the host is
resolved once, every non-public address is refused (unless the configuration's allow
list names it), and the connection is pinned to the checked address.
"""

from kit.net.addresses import check_address, is_metadata, refusal
from kit.net.http import (
    Answer,
    OutboundError,
    Outcome,
    SafeClient,
    SafeTransport,
    request,
    status_class,
)
from kit.net.policy import ALLOW_VAR, LOOPBACK_VAR, SMTP_PORTS, AllowRule, OutboundPolicy, PolicyError
from kit.net.resolve import Resolver, Unresolved, check_url, pin, system_resolver
from kit.net.smtp import SmtpDestination, SmtpTimeout, connect_smtp, smtp_destination
from kit.net.urls import Blocked, Target, host_target, parse_target, validate_url

__all__ = [
    "ALLOW_VAR",
    "LOOPBACK_VAR",
    "SMTP_PORTS",
    "AllowRule",
    "Answer",
    "Blocked",
    "OutboundError",
    "OutboundPolicy",
    "Outcome",
    "PolicyError",
    "Resolver",
    "SafeClient",
    "SafeTransport",
    "SmtpDestination",
    "SmtpTimeout",
    "Target",
    "Unresolved",
    "check_address",
    "check_url",
    "connect_smtp",
    "host_target",
    "is_metadata",
    "parse_target",
    "pin",
    "refusal",
    "request",
    "smtp_destination",
    "status_class",
    "system_resolver",
    "validate_url",
]
