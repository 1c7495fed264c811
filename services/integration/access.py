"""Who may do what in the integration service: decided here, once per resource."""

from __future__ import annotations

from kit.auth import Principal
from kit.errors import PermissionDenied


def require_admin(who: Principal) -> None:
    """Connectors and received webhooks are configuration and raw partner data: admins only."""
    if not who.is_admin:
        raise PermissionDenied("integration configuration is for admins", reason="ADMIN_ONLY")
