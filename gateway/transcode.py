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
from kit.memo import BytesMemo

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


_PLAIN_KINDS = frozenset(
    {FD.CPPTYPE_STRING, FD.CPPTYPE_INT32, FD.CPPTYPE_INT64, FD.CPPTYPE_UINT32, FD.CPPTYPE_UINT64}
    | {FD.CPPTYPE_ENUM, FD.CPPTYPE_BOOL}
)
_INTEGER = re.compile(r"-?[0-9]+\Z")
_NOT_PLAIN = object()
_SURROGATE = re.compile("[\ud800-\udfff]")  # json_format refuses unpaired ones
# (request type, parameter) -> its chain of fields, or None when it is not plain. Only names that
# resolve are kept (the schema bounds them), and at most this many.
_CHAINS: dict[tuple[str, str], list[Any] | None] = {}
_MAX_CHAINS = 4096


def _plain_chain(desc: Any, name: str) -> list[Any] | None:
    """The fields down to a plain scalar (string, integer, enum, bool; no oneof, map, repeated or
    well-known message on the way), which can be set directly with json_format's result."""
    key = (desc.full_name, name)
    if key in _CHAINS:
        return _CHAINS[key]
    chain = _resolve(desc, name)
    if chain is None:
        return None
    leaf, steps = chain[-1], chain[:-1]
    plain = (
        all(
            f.message_type is not None
            and not f.is_repeated
            and f.containing_oneof is None
            and not f.message_type.full_name.startswith("google.protobuf.")
            for f in steps
        )
        and leaf.cpp_type in _PLAIN_KINDS
        and leaf.type != FD.TYPE_BYTES
        and leaf.containing_oneof is None
        and (leaf.enum_type is None or not any(v.GetOptions().ListFields() for v in leaf.enum_type.values))
    )
    if len(_CHAINS) < _MAX_CHAINS:
        _CHAINS[key] = chain if plain else None
    return chain if plain else None


def _plain_value(leaf: Any, raw: str) -> Any:
    cpp = leaf.cpp_type
    if cpp == FD.CPPTYPE_STRING:
        return raw if raw.isascii() or not _SURROGATE.search(raw) else _NOT_PLAIN
    if cpp == FD.CPPTYPE_ENUM:
        if not raw.isascii():  # names are identifiers (and upb's lookup fails on a lone surrogate)
            return _NOT_PLAIN
        value = leaf.enum_type.values_by_name.get(raw)
        return _NOT_PLAIN if value is None else value.number  # numbers, unknown names: json_format
    if cpp == FD.CPPTYPE_BOOL:
        low = raw.lower()
        return True if low in {"true", "1"} else False if low in {"false", "0"} else _NOT_PLAIN
    return int(raw) if _INTEGER.match(raw) else _NOT_PLAIN


def _direct(route: Route, path_vars: dict[str, str], query: Iterable[tuple[str, str]]) -> Message | None:
    """A GET's request set field by field, when every parameter is a plain scalar given in its
    plain form: what json_format would make of it, without building and walking a JSON object.
    None when anything is not (an error included): the general path then answers, word for word."""
    msg = route.request_cls()
    desc = msg.DESCRIPTOR
    params = [(name, raw, False) for name, raw in path_vars.items()]
    params.extend((key, raw, True) for key, raw in query)
    try:
        for name, raw, from_query in params:
            chain = _plain_chain(desc, name)
            if chain is None:
                return None
            leaf = chain[-1]
            if leaf.is_repeated and not from_query:
                return None
            value = _plain_value(leaf, raw)
            if value is _NOT_PLAIN:
                return None
            target = msg
            for f in chain[:-1]:
                target = getattr(target, f.name)
            if leaf.is_repeated:
                getattr(target, leaf.name).append(value)
            else:
                setattr(target, leaf.name, value)
    except (ValueError, TypeError):  # out of range, invalid UTF-8
        return None
    return msg


def build_request(
    route: Route,
    path_vars: dict[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes,
    max_depth: int = RequestBounds.max_json_depth,
) -> Message:
    if not route.body and not body.strip():
        query = list(query)
        direct = _direct(route, path_vars, query)
        if direct is not None:
            return direct
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
    encoded as `json.dumps` would (by orjson). Resources read before come from proto_json's memo."""
    if proto_json.MEMO.budget and not route.response_body:
        try:
            return json_encode.dumps_fragments(proto_json.to_jsonable(msg))
        except TypeError:  # orjson refused (e.g. nesting past its limit): the general path
            pass
    value = proto_json.to_dict(msg)
    if route.response_body:
        f = msg.DESCRIPTOR.fields_by_name[route.response_body]
        value = value.get(f.json_name)
    return json_encode.dumps(value)


# Answers at least this long are kept by their wire bytes (a page of leads, a lead); shorter ones
# (WhoAmI, a count) cost a few microseconds to convert and are often one caller's own.
ANSWER_MIN_BYTES = 256
# (response type, response_body, the answer's bytes) -> its JSON, within proto_json.MEMO's budget.
# The same bytes of the same type are the same message, so an entry never goes stale.
_ANSWERS: BytesMemo[tuple[Any, str, bytes], bytes] = BytesMemo(proto_json.MEMO)
_ANSWER_OVERHEAD = 200  # the key tuple, the dict slot


def answer_json(route: Route, raw: bytes) -> bytes:
    """`to_json_bytes` of the reply whose serialized bytes are `raw`. An answer given before (a list
    page asked again) is one lookup: parsing a 20-lead page (~45 us) and converting it, even with
    every lead's JSON kept (~125 us: each lead serialized again to find it), were most of the
    gateway's work on a ListLeads."""
    if len(raw) < ANSWER_MIN_BYTES or not proto_json.MEMO.budget:
        return to_json_bytes(route, route.response_cls.FromString(raw))
    key = (route.response_cls, route.response_body, raw)
    found = _ANSWERS.get(key)
    if found is not None:
        return found
    text = to_json_bytes(route, route.response_cls.FromString(raw))
    _ANSWERS.put(key, text, len(raw) + len(text) + _ANSWER_OVERHEAD)
    return text
