"""The public methods are listed once (kit.grpc.public): a Registration naming another refuses to start,
and the gateway's routes are public exactly for the listed methods."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.routes import load_routes
from kit.auth import Principal
from kit.grpc.public import PUBLIC_METHODS
from kit.grpc.scopes import MethodScopes
from kit.grpc.server import Registration
from salesops.integration.v1 import integration_service_pb2

SERVICE = integration_service_pb2.DESCRIPTOR.services_by_name["IntegrationService"].full_name


def test_a_registration_cannot_make_an_unlisted_method_public() -> None:
    listed = Registration(
        lambda *_: None, object(), SERVICE, public_methods=frozenset({"ExchangePartnerKey"})
    )
    assert listed.public_full_names() == {f"/{SERVICE}/ExchangePartnerKey"}
    unlisted = Registration(lambda *_: None, object(), SERVICE, public_methods=frozenset({"GetConnector"}))
    with pytest.raises(ValueError, match="PUBLIC_METHODS"):
        unlisted.public_full_names()


def test_the_gateway_marks_exactly_the_listed_routes_public() -> None:
    public = {r.grpc_path for r in load_routes() if r.public}
    assert public == set(PUBLIC_METHODS)


def test_admin_configuration_needs_the_methods_own_scope() -> None:
    scopes = MethodScopes()
    method = "/salesops.leads.v1.LeadsService/UpdateRoutingRules"
    assert scopes.allows(frozenset({"leads.write"}), method)  # the gate lets it through...
    assert not scopes.names_exactly(frozenset({"leads.write"}), method)  # ...the admin check does not
    assert scopes.names_exactly(frozenset({"leads.UpdateRoutingRules"}), method)
    at = datetime.now(UTC)
    partner = Principal("partner:k", "demo", frozenset({"partner"}), "", at, partner_key_id="k")
    assert partner.acts_tenant_wide and not partner.may_configure
    assert Principal("partner:k", "demo", frozenset({"partner"}), "", at, method_granted=True).may_configure
    rep = Principal("rep-a1", "demo", frozenset({"rep"}), "east", at)
    assert not rep.acts_tenant_wide and not rep.may_configure
