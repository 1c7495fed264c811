"""The verified caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


def org_segments(path: str) -> tuple[str, ...] | None:
    """Split an org-unit path into segments; None if it is empty or not a plain path."""
    segments = tuple(part for part in path.strip().split("/") if part)
    if not segments or any(part in {".", ".."} for part in segments):
        return None
    return segments


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller."""

    user_id: str
    tenant: str
    roles: frozenset[str]
    org: str
    expires_at: datetime
    token_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    # Partner tokens (ExchangePartnerKey): the key they were minted from ("pkid") and its
    # requests per minute ("rpm"); the server pipeline checks both on every call.
    partner_key_id: str | None = None
    rate_limit_per_minute: int = 0
    # Set by the server pipeline for partner tokens: the current method is granted by its own
    # ``<service>.<Method>`` scope (not by ``<service>.write`` or a group). See `may_configure`.
    method_granted: bool = False

    def has_role(self, *roles: str) -> bool:
        """True if the caller holds at least one of `roles`."""
        return any(role in self.roles for role in roles)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_service(self) -> bool:
        return "service" in self.roles

    @property
    def is_partner(self) -> bool:
        """A partner system's token: limited to its scopes, its key's rate, and revocable."""
        return "partner" in self.roles or self.partner_key_id is not None

    @property
    def acts_tenant_wide(self) -> bool:
        """Sees the whole tenant: admins, services, and partner tokens (whose scopes, checked by
        the server pipeline before the servicer runs, are their authorisation)."""
        return self.is_admin or self.is_service or self.is_partner

    @property
    def may_configure(self) -> bool:
        """Admin-only configuration: admins, or a partner token whose key names this very method
        (``leads.UpdateRoutingRules``); never by a service-wide ``leads.write`` or a group."""
        return self.is_admin or (self.is_partner and self.method_granted)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def org_contains(self, path: str) -> bool:
        """True if `path` is the caller's org unit or below it, compared segment by segment.

        ``east`` contains ``east`` and ``east/team-a`` but not ``eastern``. An empty org
        (admin, service) contains nothing: callers grant those roles by role, not by org.
        """
        mine = org_segments(self.org)
        theirs = org_segments(path)
        if mine is None or theirs is None or len(theirs) < len(mine):
            return False
        return theirs[: len(mine)] == mine
