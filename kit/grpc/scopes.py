"""Which scopes grant a method, derived from the contract: the server pipeline's scope gate.

Partner tokens (`Principal.is_partner`) carry scopes; every service refuses a method none
of them grants, before the servicer runs, so a service need not repeat the check. A method
``/salesops.<service>.v1.<Service>/<Method>`` is granted by:

- ``<service>.<Method>``: that one method, e.g. ``leads.GetLead``;
- ``<service>.write``: every method of the service;
- ``<service>.read``: the service's methods whose ``google.api.http`` rule is a GET;
- a named group a `Registration` declares (``scope_groups``), e.g. ``integration.stock``.

``<service>.write`` passes this gate for every method, but a service's admin-only
configuration methods also require the method's own scope (`Principal.may_configure`, set
from `names_exactly`): a service-wide write scope never reaches tenant configuration.

Methods in `SCOPE_FREE` (WhoAmI: a caller asking about itself) need no scope. Tokens
without the partner role and key (users, services) are not scoped here: their roles decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from google.api import annotations_pb2
from google.protobuf import descriptor_pool

SCOPE_FREE: Final = frozenset({"/salesops.common.v1.DiagnosticsService/WhoAmI"})


def split_method(method: str) -> tuple[str, str, str]:
    """``/salesops.leads.v1.LeadService/GetLead`` -> (``salesops.leads.v1.LeadService``, ``leads``, ``GetLead``)."""
    service, _, name = method.lstrip("/").partition("/")
    parts = service.split(".")
    area = parts[1] if len(parts) > 2 and parts[0] == "salesops" else parts[0]
    return service, area, name


def is_read(service: str, name: str) -> bool:
    """True when the contract maps the method to an HTTP GET (a read by AIP-131/132)."""
    try:
        method = descriptor_pool.Default().FindMethodByName(f"{service}.{name}")
    except KeyError:
        return False
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    return bool(rule.get)


class MethodScopes:
    """The scopes granting each method, computed once per method and cached."""

    def __init__(self, groups: Mapping[str, Iterable[str]] | None = None) -> None:
        # group scope -> full method names
        self._by_method: dict[str, set[str]] = {}
        for scope, methods in (groups or {}).items():
            for method in methods:
                self._by_method.setdefault(method, set()).add(scope)
        self._cache: dict[str, frozenset[str]] = {}

    def granting(self, method: str) -> frozenset[str]:
        found = self._cache.get(method)
        if found is None:
            service, area, name = split_method(method)
            scopes = {f"{area}.{name}", f"{area}.write", *self._by_method.get(method, ())}
            if is_read(service, name):
                scopes.add(f"{area}.read")
            found = self._cache[method] = frozenset(scopes)
        return found

    def names_exactly(self, granted: frozenset[str], method: str) -> bool:
        """True when ``<service>.<Method>`` itself is granted (what admin-only methods require)."""
        _, area, name = split_method(method)
        return f"{area}.{name}" in granted

    def allows(self, granted: frozenset[str], method: str) -> bool:
        return method in SCOPE_FREE or not granted.isdisjoint(self.granting(method))
