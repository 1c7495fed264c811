"""Route derivation from the annotations: every shape, and every annotated RPC reachable."""

from __future__ import annotations

import pytest
from google.api import annotations_pb2

from gateway.routes import PathTemplate, Router, load_routes, service_modules
from gateway.transcode import build_request
from kit import errors
from salesops.common.v1 import diagnostics_pb2
from salesops.leads.v1 import lead_pb2, leads_service_pb2

ROUTER = Router(load_routes())


def match(method: str, path: str):  # type: ignore[no-untyped-def]
    found = ROUTER.match(method, path)
    assert found is not None, f"{method} {path} not routed"
    return found


def test_every_annotated_rpc_has_a_route() -> None:
    import importlib

    expected = set()
    for module in service_modules():
        for service in importlib.import_module(module).DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                if m.GetOptions().HasExtension(annotations_pb2.http):
                    expected.add(f"/{service.full_name}/{m.name}")
    assert expected and expected == {r.grpc_path for r in ROUTER.routes}
    assert len(expected) > 100  # all five services plus diagnostics


def test_literal_paths_match_as_the_full_walk_does() -> None:
    literal = [r for r in ROUTER.routes if not r.path.variables]
    assert literal
    for route in literal:
        method, path = route.http_method, route.path.template
        assert ROUTER.match(method, path) == ROUTER._walk(method, path)
    found = ROUTER.match("GET", "/v1/whoami")
    assert found is not None and found[0].grpc_path.endswith("/WhoAmI") and found[1] == {}


def test_path_variable() -> None:
    route, variables = match("GET", "/v1/leads/01JABC")
    assert route.grpc_path == "/salesops.leads.v1.LeadsService/GetLead"
    assert variables == {"lead_id": "01JABC"}
    msg = build_request(route, variables, [("view", "LEAD_VIEW_BASIC")], b"")
    assert msg == leads_service_pb2.GetLeadRequest(lead_id="01JABC", view=leads_service_pb2.LEAD_VIEW_BASIC)


def test_nested_path_variable_and_body_field() -> None:
    route, variables = match("PATCH", "/v1/leads/L7")
    assert route.body == "lead" and variables == {"lead.lead_id": "L7"}
    msg = build_request(
        route, variables, [("updateMask", "displayName,tags")], b'{"displayName": "Acme", "tags": ["a"]}'
    )
    assert isinstance(msg, leads_service_pb2.UpdateLeadRequest)
    assert msg.lead.lead_id == "L7" and msg.lead.display_name == "Acme" and list(msg.lead.tags) == ["a"]
    assert list(msg.update_mask.paths) == ["display_name", "tags"]


def test_path_variable_overrides_the_body() -> None:
    route, variables = match("PATCH", "/v1/leads/L7")
    msg = build_request(route, variables, [], b'{"leadId": "other", "display_name": "x"}')
    assert msg.lead.lead_id == "L7"  # type: ignore[attr-defined]


def test_body_star_and_custom_verb() -> None:
    route, variables = match("POST", "/v1/leads/L1:claim")
    assert route.grpc_path.endswith("/ClaimLead") and route.body == "*" and route.path.verb == "claim"
    assert build_request(route, variables, [], b"{}") == leads_service_pb2.ClaimLeadRequest(lead_id="L1")
    # With body "*" every field comes from the body: no query parameters.
    with pytest.raises(errors.InvalidArgument):
        build_request(route, variables, [("leadId", "x")], b"{}")


def test_custom_verb_wins_over_plain_variable() -> None:
    assert match("POST", "/v1/leads/L1:claim")[0].grpc_path.endswith("/ClaimLead")
    assert match("GET", "/v1/leads/L1")[0].grpc_path.endswith("/GetLead")
    assert ROUTER.match("DELETE", "/v1/leads/L1:claim") is None
    assert "POST" in ROUTER.allowed("/v1/leads/L1:claim")


def test_query_parameters_repeated_nested_and_both_spellings() -> None:
    route, variables = match("GET", "/v1/leads")
    query = [
        ("pageSize", "20"),
        ("page_token", "t1"),
        ("filter.statuses", "LEAD_STATUS_IN_POOL"),
        ("filter.statuses", "2"),
        ("filter.ownerUserIds", "me"),
        ("filter.owner_user_ids", "rep-b"),
        ("filter.teamPath", "east"),
    ]
    msg = build_request(route, variables, query, b"")
    assert isinstance(msg, leads_service_pb2.ListLeadsRequest)
    assert (msg.page_size, msg.page_token) == (20, "t1")
    assert list(msg.filter.statuses) == [lead_pb2.LeadStatus.Value("LEAD_STATUS_IN_POOL"), 2]
    assert list(msg.filter.owner_user_ids) == ["me", "rep-b"]
    assert msg.filter.team_path == "east"


@pytest.mark.parametrize(
    ("query", "body", "field"),
    [
        ([("pageSize", "ten")], b"", "page_size"),
        ([("filter.statuses", "NOT_A_STATUS")], b"", "filter.statuses"),
        ([("nope", "1")], b"", "nope"),
        ([("filter", "x")], b"", "filter"),
    ],
)
def test_bad_query_is_invalid_argument_with_the_field(
    query: list[tuple[str, str]], body: bytes, field: str
) -> None:
    route, variables = match("GET", "/v1/leads")
    with pytest.raises(errors.InvalidArgument) as caught:
        build_request(route, variables, query, body)
    assert [v.field for v in caught.value.violations] == [field]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"displayName": 5, "contact": "x"}',
        b'{"status": "NO_SUCH_STATUS"}',
        b"\xff\xfe",
    ],
)
def test_bad_body_is_invalid_argument(body: bytes) -> None:
    route, variables = match("POST", "/v1/leads")
    with pytest.raises(errors.InvalidArgument):
        build_request(route, variables, [], body)


def test_diagnostics_route_goes_to_its_backend() -> None:
    route, _ = match("GET", "/v1/whoami")
    assert route.backend == "leads" and route.request_cls is diagnostics_pb2.WhoAmIRequest


def test_server_streaming_route() -> None:
    route, _ = match("GET", "/v1/inbox:stream")
    assert route.server_streaming and route.backend == "notify"


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("/v1/{name=projects/*/items/*}", "/v1/projects/p1/items/i2", {"name": "projects/p1/items/i2"}),
        ("/v1/{path=files/**}:read", "/v1/files/a/b/c:read", {"path": "files/a/b/c"}),
        ("/v1/things/{a}/sub/{b.c}", "/v1/things/1/sub/2", {"a": "1", "b.c": "2"}),
    ],
)
def test_path_templates(template: str, path: str, expected: dict[str, str]) -> None:
    assert PathTemplate.parse(template).match(path) == expected
    assert PathTemplate.parse(template).match(path + "/extra") is None


def test_a_new_annotated_rpc_needs_no_gateway_change() -> None:
    """A contract the gateway has never seen: its routes come from the descriptor alone."""
    import uuid
    from types import SimpleNamespace

    from google.api import http_pb2
    from google.protobuf import descriptor_pb2, descriptor_pool

    from gateway.routes import routes_of_module

    pool = descriptor_pool.Default()  # where google/api/annotations.proto already lives
    package = f"demo{uuid.uuid4().hex[:8]}.v1"
    fd = descriptor_pb2.FileDescriptorProto(name=f"{package}/widgets.proto", package=package, syntax="proto3")
    fd.dependency.append("google/api/annotations.proto")
    req = fd.message_type.add(name="PolishWidgetRequest")
    req.field.add(name="widget_id", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING)
    req.field.add(name="shine", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32)
    req.field.add(
        name="tags",
        number=3,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
    )
    fd.message_type.add(name="PolishWidgetResponse")
    method = fd.service.add(name="WidgetService").method.add(
        name="PolishWidget",
        input_type=f".{package}.PolishWidgetRequest",
        output_type=f".{package}.PolishWidgetResponse",
    )
    method.options.Extensions[annotations_pb2.http].CopyFrom(
        http_pb2.HttpRule(post="/v1/widgets/{widget_id}:polish", body="*")
    )
    file_desc = pool.Add(fd)
    routes = list(routes_of_module(SimpleNamespace(DESCRIPTOR=file_desc), "leads"))  # type: ignore[arg-type]
    assert [r.grpc_path for r in routes] == [f"/{package}.WidgetService/PolishWidget"]
    route, variables = Router(routes).match("POST", "/v1/widgets/w1:polish") or (None, {})
    assert route is not None
    msg = build_request(route, variables, [], b'{"shine": 3, "tags": ["a", "b"]}')
    assert (msg.widget_id, msg.shine, list(msg.tags)) == ("w1", 3, ["a", "b"])  # type: ignore[attr-defined]
