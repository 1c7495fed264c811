"""HTTP request -> request message, response message -> JSON, by the proto3 JSON mapping.

Path variables, the annotated `body` (a field or `*`) and the remaining fields as
query parameters (dotted names for nested fields, repeated by repeating the key)
are merged into one JSON object and parsed once with `json_format`, so every
type rule (int64 as string, enums by name, well-known types) is protobuf's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from google.protobuf import descriptor, json_format
from google.protobuf.message import Message

from gateway import json_encode, proto_json
from gateway.bounds import RequestBounds, parse_json
from gateway.routes import Route
from kit import errors

FD = descriptor.FieldDescriptor
_PARSE_CHAIN = re.compile(r"Failed to parse (\w+) field")
_PARSE_PREFIX = re.compile(r"(Failed to parse \w+ field: )+")
# Well-known types whose JSON form is a string (or scalar) and so can travel in a query or path.
_SCALAR_WKT = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.BoolValue",
}
_BOOL_WKT = "google.protobuf.BoolValue"
COMPACT = json_encode.COMPACT


def bad_request(field: str, description: str) -> errors.InvalidArgument:
    return errors.InvalidArgument.field(field, description)


def _field(desc: Any, name: str) -> Any:
    return desc.fields_by_name.get(name) or desc.fields_by_camelcase_name.get(name)


def _resolve(desc: Any, dotted: str) -> list[Any] | None:
    chain: list[Any] = []
    current: Any | None = desc
    for part in dotted.split("."):
        if current is None:
            return None
        f = _field(current, part)
        if f is None:
            return None
        chain.append(f)
        current = f.message_type if f.type == FD.TYPE_MESSAGE else None
    return chain


def _scalar(f: Any, raw: str, where: str) -> Any:
    """A query/path string -> the JSON value `json_format` expects for this field."""
    if f.type == FD.TYPE_BOOL or (f.type == FD.TYPE_MESSAGE and f.message_type.full_name == _BOOL_WKT):
        low = raw.lower()
        if low in {"true", "1"}:
            return True
        if low in {"false", "0"}:
            return False
        raise bad_request(where, f"expected true or false, got {raw!r}")
    if f.type == FD.TYPE_MESSAGE and f.message_type.full_name not in _SCALAR_WKT:
        raise bad_request(where, "a message field cannot be set from a single value")
    # Numbers, enums, strings, bytes and string-form WKTs: json_format parses their string form.
    return raw


def _set(target: dict[str, Any], chain: list[Any], value: Any, *, append: bool) -> None:
    node = target
    for f in chain[:-1]:
        # Drop the other spelling so json_format never sees a field twice.
        for alias in {f.json_name, f.name} - {f.name}:
            if alias in node:
                node[f.name] = node.pop(alias)
        child = node.get(f.name)
        if not isinstance(child, dict):
            child = {}
            node[f.name] = child
        node = child
    last = chain[-1]
    for alias in {last.json_name} - {last.name}:
        if alias in node:
            node[last.name] = node.pop(alias)
    if append:
        existing = node.get(last.name)
        node[last.name] = [*(existing if isinstance(existing, list) else []), value]
    else:
        node[last.name] = value


def build_request(
    route: Route,
    path_vars: dict[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes,
    max_depth: int = RequestBounds.max_json_depth,
) -> Message:
    desc = route.request_cls.DESCRIPTOR
    data: dict[str, Any] = {}
    if route.body:
        parsed = parse_json(body, max_depth) if body.strip() else None
        if route.body == "*":
            parsed = {} if parsed is None else parsed  # a custom method posted without a body
            if not isinstance(parsed, dict):
                raise bad_request("", "the request body must be a JSON object")
            data = parsed
        elif parsed is not None:
            f = desc.fields_by_name[route.body]
            data = {f.name: parsed}
    elif body.strip():
        raise bad_request("", "this method takes no request body")
    for name, raw in path_vars.items():
        chain = _resolve(desc, name)
        if chain is None:  # the contract tests forbid this; refuse rather than guess
            raise bad_request(name, "unknown path variable")
        _set(data, chain, _scalar(chain[-1], raw, name), append=False)
    for key, raw in query:
        chain = _resolve(desc, key)
        if chain is None or any(f.is_repeated for f in chain[:-1]):
            raise bad_request(key, "unknown query parameter")
        if route.body == "*" or (route.body and chain[0].name == route.body):
            raise bad_request(key, "this field is set by the request body")
        if chain[-1].message_type is not None and chain[-1].message_type.GetOptions().map_entry:
            raise bad_request(key, "map fields cannot be set from the query")
        repeated = chain[-1].is_repeated
        _set(data, chain, _scalar(chain[-1], raw, key), append=repeated)
    msg = route.request_cls()
    if not data:
        return msg  # nothing to parse (a bare GET such as /v1/whoami)
    try:
        json_format.ParseDict(data, msg)
    except json_format.ParseError as exc:
        raise _violation(str(exc)) from exc
    except (
        ValueError,
        TypeError,
        AttributeError,
        RecursionError,
    ) as exc:  # odd shapes json_format does not wrap
        raise bad_request("", str(exc)[:300]) from exc
    return msg


def _violation(message: str) -> errors.InvalidArgument:
    path = ".".join(_PARSE_CHAIN.findall(message))
    reason = _PARSE_PREFIX.sub("", message).rstrip(".") or message
    return bad_request(path, reason)


def to_json_bytes(route: Route, msg: Message) -> bytes:
    """The response's JSON: `json_format.MessageToDict`'s answer, by a converter compiled per type,
    encoded as `json.dumps` would (by orjson)."""
    value = proto_json.to_dict(msg)
    if route.response_body:
        f = msg.DESCRIPTOR.fields_by_name[route.response_body]
        value = value.get(f.json_name)
    return json_encode.dumps(value)
