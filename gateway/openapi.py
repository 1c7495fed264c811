"""OpenAPI 3.1 from the same routes and descriptors the gateway serves.

Schemas follow the proto3 JSON mapping (lowerCamel names, 64-bit integers as
strings, enums by name, well-known types in their JSON form); every message and
enum reachable from a route is a component, described by its proto comment.
"""

from __future__ import annotations

from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor

from gateway.routes import Route

FD = descriptor.FieldDescriptor
REF = "#/components/schemas/"
ERROR_CODES = {
    "400": "Invalid argument, failed precondition or out of range (google.rpc.BadRequest details); "
    "also JSON nested too deep or too many query parameters",
    "401": "Missing or invalid bearer token (such failures are rate-limited per client address)",
    "403": "Permission denied",
    "404": "Not found",
    "408": "Request head or body not received in time",
    "409": "Already exists, aborted, or the same Idempotency-Key is still in flight",
    "414": "Query string too long",
    "429": "Rate limit or quota exceeded",
    "431": "Request headers too large or too many",
    "500": "Internal error",
    "501": "Not implemented yet",
    "503": "A service is unavailable",
    "504": "Deadline exceeded",
}
_INT32 = {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1}
_UINT32 = {"type": "integer", "format": "int32", "minimum": 0, "maximum": 2**32 - 1}
_INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,18}$"}
_UINT64 = {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,19}$"}
_SCALARS: dict[int, dict[str, Any]] = {
    FD.TYPE_DOUBLE: {"type": "number"},
    FD.TYPE_FLOAT: {"type": "number"},
    FD.TYPE_INT32: _INT32,
    FD.TYPE_SINT32: _INT32,
    FD.TYPE_SFIXED32: _INT32,
    FD.TYPE_UINT32: _UINT32,
    FD.TYPE_FIXED32: _UINT32,
    FD.TYPE_INT64: _INT64,
    FD.TYPE_SINT64: _INT64,
    FD.TYPE_SFIXED64: _INT64,
    FD.TYPE_UINT64: _UINT64,
    FD.TYPE_FIXED64: _UINT64,
    FD.TYPE_BOOL: {"type": "boolean"},
    FD.TYPE_STRING: {"type": "string"},
    FD.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_WRAPPERS = {
    "google.protobuf.DoubleValue": FD.TYPE_DOUBLE,
    "google.protobuf.FloatValue": FD.TYPE_FLOAT,
    "google.protobuf.Int64Value": FD.TYPE_INT64,
    "google.protobuf.UInt64Value": FD.TYPE_UINT64,
    "google.protobuf.Int32Value": FD.TYPE_INT32,
    "google.protobuf.UInt32Value": FD.TYPE_UINT32,
    "google.protobuf.BoolValue": FD.TYPE_BOOL,
    "google.protobuf.StringValue": FD.TYPE_STRING,
    "google.protobuf.BytesValue": FD.TYPE_BYTES,
}
_WKT: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]{1,11}(\\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated lowerCamel field paths"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
}
STATUS_SCHEMA = {
    "type": "object",
    "description": "google.rpc.Status: code (google.rpc.Code), message, and typed details",
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {"type": "object", "properties": {"@type": {"type": "string"}}},
        },
    },
}


class SchemaBuilder:
    def __init__(self, comments: dict[str, str]) -> None:
        self.comments = comments
        self.schemas: dict[str, Any] = {}

    def _describe(self, schema: dict[str, Any], full_name: str) -> dict[str, Any]:
        text = self.comments.get(full_name)
        if text:
            schema["description"] = text
        return schema

    def value(self, f: Any) -> dict[str, Any]:
        """Schema of one element of `f` (ignoring repetition)."""
        if f.type == FD.TYPE_ENUM:
            return {"$ref": REF + self.enum(f.enum_type)}
        if f.type in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
            return self.message_ref(f.message_type)
        return dict(_SCALARS[f.type])

    def field(self, f: Any) -> dict[str, Any]:
        if f.type == FD.TYPE_MESSAGE and f.message_type.GetOptions().map_entry:
            value_field = f.message_type.fields_by_name["value"]
            schema: dict[str, Any] = {"type": "object", "additionalProperties": self.value(value_field)}
        elif f.is_repeated:
            schema = {"type": "array", "items": self.value(f)}
        else:
            schema = self.value(f)
        if "$ref" in schema:  # 3.1 allows siblings of $ref, but keep refs plain for tools
            return schema
        behaviors = set(f.GetOptions().Extensions[field_behavior_pb2.field_behavior])
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            schema["readOnly"] = True  # set by the server; ignored in requests
        return self._describe(schema, f.full_name)

    def message_ref(self, desc: Any) -> dict[str, Any]:
        if desc.full_name in _WRAPPERS:
            inner = dict(_SCALARS[_WRAPPERS[desc.full_name]])
            return {**inner, "type": [inner["type"], "null"]}
        if desc.full_name in _WKT:
            return dict(_WKT[desc.full_name])
        return {"$ref": REF + self.message(desc)}

    def message(self, desc: Any) -> str:
        name = str(desc.full_name)
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder first: messages may be recursive
            props = {f.json_name: self.field(f) for f in desc.fields}
            self.schemas[name] = self._describe({"type": "object", "properties": props}, name)
        return name

    def enum(self, desc: Any) -> str:
        name = str(desc.full_name)
        if name not in self.schemas:
            schema: dict[str, Any] = {"type": "string", "enum": [v.name for v in desc.values]}
            self._describe(schema, name)
            values = [
                f"{v.name}: {self.comments[f'{name}.{v.name}']}"
                for v in desc.values
                if f"{name}.{v.name}" in self.comments
            ]
            if values:
                schema["description"] = (schema.get("description", "") + "\n\n" + "\n".join(values)).strip()
            self.schemas[name] = schema
        return name

    def query_parameters(self, route: Route) -> list[dict[str, Any]]:
        if route.body == "*":
            return []
        skip = {v.split(".")[0] for v in route.path.variables if "." not in v} | {route.body}
        params: list[dict[str, Any]] = []

        def walk(desc: Any, prefix: str, depth: int, seen: tuple[str, ...]) -> None:
            for f in desc.fields:
                dotted = prefix + f.json_name
                if not prefix and f.name in skip:
                    continue
                if any(v in {prefix + f.name, dotted} for v in route.path.variables):
                    continue
                if f.type == FD.TYPE_MESSAGE:
                    mt = f.message_type
                    if mt.GetOptions().map_entry:
                        continue
                    if mt.full_name not in _WKT and mt.full_name not in _WRAPPERS:
                        if not f.is_repeated and depth < 3 and mt.full_name not in seen:
                            walk(mt, dotted + ".", depth + 1, (*seen, mt.full_name))
                        continue
                    if mt.full_name not in _SCALAR_QUERY_WKT:
                        continue
                schema = self.field(f)
                param: dict[str, Any] = {"name": dotted, "in": "query", "required": False, "schema": schema}
                if f.is_repeated:
                    param.update(style="form", explode=True)
                text = self.comments.get(f.full_name)
                if text:
                    param["description"] = text
                params.append(param)

        walk(route.request_cls.DESCRIPTOR, "", 0, (route.request_cls.DESCRIPTOR.full_name,))
        return params


_SCALAR_QUERY_WKT = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    *_WRAPPERS,
}


def _path_param(route: Route, name: str, b: SchemaBuilder) -> dict[str, Any]:
    desc: Any = route.request_cls.DESCRIPTOR
    f: Any = None
    for part in name.split("."):
        f = desc.fields_by_name.get(part) if desc is not None else None
        desc = f.message_type if f is not None and f.type == FD.TYPE_MESSAGE else None
    schema = b.value(f) if f is not None and f.type != FD.TYPE_MESSAGE else {"type": "string"}
    if schema.get("type") == "string" and "pattern" not in schema and "$ref" not in schema:
        schema = {**schema, "pattern": "^[^/]+$"}
    param = {"name": route.path.param_name(name), "in": "path", "required": True, "schema": schema}
    text = b.comments.get(f.full_name, "") if f is not None else ""
    param["description"] = (f"Sets `{name}`. " + text).strip() if "." in name else text
    if not param["description"]:
        del param["description"]
    return param


def _error_responses(write: bool) -> dict[str, Any]:
    out = {code: {"$ref": f"#/components/responses/E{code}"} for code in ERROR_CODES}
    if write:
        out["422"] = {"$ref": "#/components/responses/E422"}
    return out


def operation(route: Route, b: SchemaBuilder, op_id: str) -> dict[str, Any]:
    method = route.method
    op: dict[str, Any] = {
        "operationId": op_id,
        "tags": [method.containing_service.name],
        "summary": f"{method.containing_service.name}.{method.name}",
    }
    text = b.comments.get(method.full_name)
    if text:
        op["description"] = text
    if route.public:  # kit.grpc.public: the request carries its own credential
        op["security"] = []
    params = [_path_param(route, v, b) for v in route.path.variables]
    params += b.query_parameters(route)
    write = route.http_method in {"POST", "PATCH", "PUT", "DELETE"}
    if write:
        params.append({"$ref": "#/components/parameters/IdempotencyKey"})
    if route.server_streaming:
        params.append({"$ref": "#/components/parameters/LastEventId"})
    params.append({"$ref": "#/components/parameters/RequestId"})
    op["parameters"] = params
    if route.body:
        body_schema = (
            {"$ref": REF + b.message(route.request_cls.DESCRIPTOR)}
            if route.body == "*"
            else b.field(route.request_cls.DESCRIPTOR.fields_by_name[route.body])
        )
        op["requestBody"] = {
            "required": route.body != "*",
            "content": {"application/json": {"schema": body_schema}},
        }
    out_desc = route.response_cls.DESCRIPTOR
    out_schema = (
        b.field(out_desc.fields_by_name[route.response_body])
        if route.response_body
        else b.message_ref(out_desc)
    )
    if route.server_streaming:
        ok = {
            "description": "Server-Sent Events; each `data:` line is one JSON message "
            f"(schema {out_desc.full_name}), the event id its cursor",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
        b.message(out_desc)
    else:
        ok = {
            "description": "OK",
            "headers": _rate_headers(),
            "content": {"application/json": {"schema": out_schema}},
        }
    op["responses"] = {"200": ok, **_error_responses(write)}
    return op


def _rate_headers() -> dict[str, Any]:
    return {
        "RateLimit": {"$ref": "#/components/headers/RateLimit"},
        "RateLimit-Policy": {"$ref": "#/components/headers/RateLimitPolicy"},
    }


def _batch_operation() -> dict[str, Any]:
    item = {
        "type": "object",
        "required": ["clientId", "idempotencyKey", "method", "path"],
        "properties": {
            "clientId": {"type": "string", "minLength": 1, "description": "Id the client gave the write"},
            "idempotencyKey": {"type": "string", "minLength": 1, "maxLength": 255},
            "method": {"type": "string", "enum": ["POST", "PATCH", "PUT", "DELETE"]},
            "path": {"type": "string", "description": "API path with query, e.g. /v1/leads/01J...:claim"},
            "body": {"description": "The JSON body of the write"},
        },
    }
    result = {
        "type": "object",
        "properties": {
            "clientId": {"type": "string"},
            "status": {"type": "integer", "description": "HTTP status of this item (424: not attempted)"},
            "replayed": {"type": "boolean", "description": "Answered from an earlier application"},
            "body": {"description": "The item's response body (or google.rpc.Status)"},
        },
    }
    return {
        "operationId": "Gateway_SyncBatch",
        "tags": ["Gateway"],
        "summary": "Apply queued offline writes in order",
        "description": "Each item has its own idempotency key: replaying a batch applies nothing twice. "
        "`stopOnFailure=true` skips the items after the first failure (status 424). "
        "Rate limits: the batch counts as one request and every item as one more, checked right "
        "before the item is applied. Items beyond the caller's quota are not applied and answer "
        "429 with a RESOURCE_EXHAUSTED Status carrying RetryInfo; the batch then answers 200 "
        "with `Retry-After`. Send just those items again after that delay: their idempotency "
        "keys were not used.",
        "parameters": [
            {"name": "stopOnFailure", "in": "query", "required": False, "schema": {"type": "boolean"}},
            {"$ref": "#/components/parameters/RequestId"},
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["items"],
                        "properties": {"items": {"type": "array", "items": item, "minItems": 1}},
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": "One result per item, in order",
                "headers": {
                    **_rate_headers(),
                    "Retry-After": {
                        "schema": {"type": "integer"},
                        "description": "Set when items were refused by the rate limit",
                    },
                },
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"results": {"type": "array", "items": result}},
                        }
                    }
                },
            },
            **{
                c: {"$ref": f"#/components/responses/E{c}"}
                for c in ("400", "401", "413", "414", "429", "431")
            },
        },
    }


def _health(description: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": "Gateway_" + description.split()[0].capitalize(),
            "tags": ["Gateway"],
            "summary": description,
            "security": [],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                "503": {
                    "description": "Not ready",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
            },
        }
    }


def _all_types(b: SchemaBuilder, routes: list[Route]) -> None:
    """Every message and enum of the contract files behind the routes (and the files they import)."""
    seen: set[str] = set()
    files = [r.method.containing_service.file for r in routes]

    def nested(desc: Any) -> None:
        if desc.GetOptions().map_entry:
            return
        b.message(desc)
        for inner in desc.nested_types:
            nested(inner)
        for en in desc.enum_types:
            b.enum(en)

    while files:
        fd = files.pop()
        if fd.name in seen or not fd.name.startswith("salesops/"):
            continue
        seen.add(fd.name)
        files.extend(fd.dependencies)
        for msg in fd.message_types_by_name.values():
            nested(msg)
        for en in fd.enum_types_by_name.values():
            b.enum(en)


def build_openapi(routes: list[Route], comments: dict[str, str], batch_path: str) -> dict[str, Any]:
    b = SchemaBuilder(comments)
    _all_types(b, routes)
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    for route in routes:
        op_id = route.operation_id
        n = 1
        while op_id in used_ids:
            n += 1
            op_id = f"{route.operation_id}{n}"
        used_ids.add(op_id)
        paths.setdefault(route.path.openapi_path, {})[route.http_method.lower()] = operation(route, b, op_id)
    paths[batch_path] = {"post": _batch_operation()}
    paths["/healthz"] = _health("liveness of the gateway")
    paths["/readyz"] = _health("readiness: every service SERVING")
    error = {"$ref": REF + "google.rpc.Status"}
    responses = {
        f"E{code}": {"description": text, "content": {"application/json": {"schema": error}}}
        for code, text in {
            **ERROR_CODES,
            "413": "Request body too large",
            "422": "Idempotency-Key reused",
        }.items()
    }
    responses["E429"]["headers"] = {
        **_rate_headers(),
        "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"},
    }
    b.schemas["google.rpc.Status"] = STATUS_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "salesops API",
            "version": "v1",
            "description": "REST gateway of salesops, generated from the gRPC contracts (google.api.http).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": sorted(
            ({"name": n} for n in {r.method.containing_service.name for r in routes} | {"Gateway"}),
            key=lambda t: t["name"],
        ),
        "paths": paths,
        "components": {
            "schemas": dict(sorted(b.schemas.items())),
            "responses": responses,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Same key + same request within 24 h replays the stored response",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
                },
                "LastEventId": {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "Resume the stream after this event id",
                    "schema": {"type": "string"},
                },
                "RequestId": {
                    "name": "X-Request-ID",
                    "in": "header",
                    "required": False,
                    "description": "Echoed back and logged; generated when absent",
                    "schema": {"type": "string", "maxLength": 128, "pattern": "^[A-Za-z0-9._:/-]+$"},
                },
            },
            "headers": {
                "RateLimit": {"schema": {"type": "string"}, "description": "Remaining quota per policy"},
                "RateLimitPolicy": {"schema": {"type": "string"}, "description": "Quota policies"},
            },
        },
    }
