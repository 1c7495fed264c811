"""The methods that run without a bearer token: one list for the services and the gateway.

A public method's request carries its own credential (a webhook's signature, a partner
secret). `kit.grpc.server` refuses to start a Registration naming a method public that is
not listed here, and the gateway forwards exactly these REST routes without a bearer (it
never imports the services, so the list lives in the kit). Adding a name here is a security
decision: docs/security.md says why each one is public.
"""

from __future__ import annotations

from typing import Final

PUBLIC_METHODS: Final = frozenset(
    {
        "/salesops.integration.v1.IntegrationService/IngestWebhook",
        "/salesops.integration.v1.IntegrationService/ExchangePartnerKey",
    }
)


def is_public(full_method: str) -> bool:
    """True for ``/<package>.<Service>/<Method>`` names listed above (exact match)."""
    return full_method in PUBLIC_METHODS
