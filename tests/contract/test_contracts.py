"""The v1 contracts as one coherent API: every unary RPC is reachable over REST, routes don't clash."""

from __future__ import annotations

import importlib
import re

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import FileDescriptor, MethodDescriptor, ServiceDescriptor

from kit.config import SERVICES
from kit.events import service_stream
from kit.events.streams import producer_areas, producer_streams, service_areas

# Derived from the generated stubs: a new service's contract is checked without editing this file.
AREAS = tuple(service_areas())


def _service_files() -> list[FileDescriptor]:
    files = [importlib.import_module(f"salesops.{a}.v1.{a}_service_pb2").DESCRIPTOR for a in AREAS]
    files.append(importlib.import_module("salesops.common.v1.diagnostics_pb2").DESCRIPTOR)
    return files


def _services() -> list[ServiceDescriptor]:
    return [s for f in _service_files() for s in f.services_by_name.values()]


def _methods() -> list[MethodDescriptor]:
    return [m for s in _services() for m in s.methods]


def _rule(method: MethodDescriptor) -> http_pb2.HttpRule | None:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    return options.Extensions[annotations_pb2.http]


def _verb_path(rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    assert kind is not None
    return kind, getattr(rule, kind)


def test_each_area_has_one_service_with_many_rpcs() -> None:
    names = sorted(s.full_name for s in _services())
    assert names == [
        "salesops.common.v1.DiagnosticsService",
        "salesops.integration.v1.IntegrationService",
        "salesops.knowledge.v1.KnowledgeService",
        "salesops.leads.v1.LeadsService",
        "salesops.notify.v1.NotifyService",
        "salesops.pipeline.v1.PipelineService",
    ]
    assert len(_methods()) > 200


@pytest.mark.parametrize("method", _methods(), ids=lambda m: m.full_name)
def test_every_unary_rpc_has_an_http_rule_whose_variables_exist(method: MethodDescriptor) -> None:
    rule = _rule(method)
    if method.client_streaming:
        pytest.fail("client-streaming RPCs are not part of the contracts")
    if method.server_streaming:
        return  # served as Server-Sent Events when annotated
    assert rule is not None, f"{method.full_name} has no google.api.http annotation"
    _, path = _verb_path(rule)
    assert path.startswith("/v1/"), path
    request = method.input_type
    for var in re.findall(r"{([^}=]+)", path):
        message = request
        for part in var.split("."):
            assert part in message.fields_by_name, f"{method.full_name}: path variable {var} not in request"
            field = message.fields_by_name[part]
            message = field.message_type or message
    if rule.body and rule.body != "*":
        assert rule.body in request.fields_by_name, f"{method.full_name}: body {rule.body} not in request"


def test_no_two_rpcs_share_a_route() -> None:
    seen: dict[tuple[str, str], str] = {}
    for method in _methods():
        rule = _rule(method)
        if rule is None:
            continue
        verb, path = _verb_path(rule)
        key = (verb, re.sub(r"{[^}]+}", "{}", path))
        assert key not in seen, f"{method.full_name} and {seen[key]} both serve {verb.upper()} {path}"
        seen[key] = method.full_name


@pytest.mark.parametrize("area", AREAS)
def test_each_area_publishes_events(area: str) -> None:
    events = importlib.import_module(f"salesops.{area}.v1.events_pb2").DESCRIPTOR
    assert len(events.message_types_by_name) >= 4


def test_derived_areas_are_the_configured_services_and_all_produce_events() -> None:
    assert len(AREAS) >= 5
    assert set(AREAS) == set(SERVICES)
    assert producer_areas() == sorted(AREAS)
    assert producer_streams(exclude=("notify",)) == [
        service_stream(a) for a in sorted(AREAS) if a != "notify"
    ]


@pytest.mark.parametrize("area", AREAS)
def test_each_service_spec_feeds_its_own_stream(area: str) -> None:
    spec = importlib.import_module(f"services.{area}.app").SPEC
    assert spec.name == area and spec.produces == service_stream(area)
