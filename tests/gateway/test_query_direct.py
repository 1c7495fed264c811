"""A GET's request built field by field (gateway.transcode._direct) is the message json_format
builds from the same path and query, and where json_format refuses, the same refusal comes back:
every body-less route, parameters drawn from its request type (plain and dotted names, proto and
JSON spellings, valid and invalid values, repeats)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from google.protobuf import descriptor
from google.protobuf.message import Message

from gateway import transcode
from gateway.routes import Route, load_routes
from kit import errors

FD = descriptor.FieldDescriptor
ROUTES = [r for r in load_routes() if not r.body]
_RAW = [
    "",
    "0",
    "1",
    "-1",
    "007",
    "+3",
    "1e3",
    "2_0",
    "99999999999",
    "-99999999999999999999",
    "true",
    "FALSE",
    "yes",
    "abc",
    "电话",
    " 5",
]


def _names(desc: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for f in desc.fields:
        for spelling in {f.name, f.json_name}:
            out.append((prefix + spelling, f))
            if f.message_type is not None and depth < 2 and not f.is_repeated:
                out.extend(_names(f.message_type, prefix + spelling + ".", depth + 1))
    return out


def _raw(field: Any, rnd: random.Random) -> str:
    if field.enum_type is not None and rnd.random() < 0.6:
        return str(rnd.choice([v.name for v in field.enum_type.values] + ["7", "NOPE"]))
    if field.cpp_type == FD.CPPTYPE_STRING and rnd.random() < 0.1:
        return "a\ud800"  # unpaired surrogate (json_format's lookup of an enum name crashes on one)
    return rnd.choice(_RAW)


def _build(route: Route, path_vars: dict[str, str], query: list[tuple[str, str]]) -> Any:
    try:
        msg = transcode.build_request(route, path_vars, query, b"")
    except errors.SalesopsError as exc:
        return ("refused", type(exc).__name__, str(exc))
    return _wire(msg)


def _wire(msg: Message) -> bytes:
    return msg.SerializeToString(deterministic=True)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.http_method} {r.path.template}")
def test_direct_requests_equal_json_formats(route: Route, monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(route.path.template)
    names = _names(route.request_cls.DESCRIPTOR)
    for _ in range(60):
        path_vars = {
            v: _raw(route.request_cls.DESCRIPTOR.fields_by_name.get(v.split(".")[0]) or names[0][1], rnd)
            or "x"
            for v in route.path.variables
        }
        query = []
        for _ in range(rnd.randrange(5)):
            name, field = rnd.choice(names) if names else ("nope", None)
            query.append((name, _raw(field, rnd) if field is not None else "1"))
        if rnd.random() < 0.1:
            query.append(("no_such.field", "1"))
        fast = _build(route, path_vars, query)
        with monkeypatch.context() as m:
            m.setattr(transcode, "_direct", lambda *_args: None)
            slow = _build(route, path_vars, query)
        assert fast == slow, (path_vars, query)


def test_the_bench_list_query_is_taken_directly() -> None:
    route = next(r for r in ROUTES if r.path.template == "/v1/leads" and r.http_method == "GET")
    query = [
        ("pageSize", "20"),
        ("filter.regions", "east/shanghai"),
        ("filter.grades", "LEAD_GRADE_A"),
        ("filter.regions", "north/beijing"),
        ("orderBy", "score desc"),
    ]
    direct = transcode._direct(route, {}, query)
    assert direct is not None
    assert _wire(direct) == _wire(transcode.build_request(route, {}, query, b""))
    assert list(direct.filter.regions) == ["east/shanghai", "north/beijing"]  # type: ignore[attr-defined]
