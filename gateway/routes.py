"""REST routes derived from the `google.api.http` annotations of the generated stubs.

Nothing here names an RPC: every method of every service in `SERVICE_MODULES`
that carries an annotation (and its `additional_bindings`) becomes a `Route`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, message_factory
from google.protobuf.message import Message

from kit.config import SERVICES
from kit.grpc.public import is_public

# Which backend serves each proto service; the diagnostics service runs everywhere, leads answers REST.
DIAGNOSTICS_MODULE = "salesops.common.v1.diagnostics_pb2"
DIAGNOSTICS_BACKEND = "leads"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")

_VAR = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")


def service_modules() -> dict[str, str]:
    """Module of generated stubs -> backend that serves its services."""
    mods = {f"salesops.{name}.v1.{name}_service_pb2": name for name in SERVICES}
    mods[DIAGNOSTICS_MODULE] = DIAGNOSTICS_BACKEND
    return mods


def _param_names(variables: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`lead.lead_id` -> `lead_id`, unless two variables end alike (then `lead_lead_id`)."""
    last = [v.rsplit(".", 1)[-1] for v in variables]
    return {
        v: (tail if last.count(tail) == 1 else v.replace(".", "_"))
        for v, tail in zip(variables, last, strict=True)
    }


class TemplateError(ValueError):
    """An annotation's path template cannot be served."""


@dataclass(frozen=True)
class PathTemplate:
    """A compiled `google.api.http` path template such as `/v1/{lead.lead_id}:claim`."""

    template: str
    regex: re.Pattern[str]
    variables: tuple[str, ...]  # field paths, in order of appearance
    verb: str
    literal_segments: int
    openapi_path: str

    @classmethod
    def parse(cls, template: str) -> PathTemplate:
        if not template.startswith("/"):
            raise TemplateError(f"template {template!r} must start with /")
        body, verb = template, ""
        last = template.rsplit("/", 1)[-1]
        if ":" in last and "}" not in last.split(":")[-1]:
            body, verb = template.rsplit(":", 1)
        pattern = ""
        variables: list[str] = []
        literal = len([s for s in _VAR.sub("{}", body).split("/") if s and "{" not in s])
        pos = 0
        for m in _VAR.finditer(body):
            pattern += re.escape(body[pos : m.start()])
            variables.append(m.group(1).strip())
            sub = m.group(2) or "*"
            pieces = []
            for seg in sub.split("/"):
                if seg == "**":
                    pieces.append(".+")
                elif seg == "*":
                    pieces.append("[^/]+")
                else:
                    pieces.append(re.escape(seg))
            pattern += "(" + "/".join(pieces) + ")"
            pos = m.end()
        pattern += re.escape(body[pos:])
        if verb:
            pattern += re.escape(":" + verb)
        names = _param_names(variables)
        openapi = _VAR.sub(lambda m: "{" + names[m.group(1).strip()] + "}", template)
        return cls(template, re.compile("^" + pattern + "$"), tuple(variables), verb, literal, openapi)

    def param_name(self, variable: str) -> str:
        """The OpenAPI name of a path variable (dotted field paths are not valid there)."""
        return _param_names(self.variables)[variable]

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.match(path)
        if m is None:
            return None
        return dict(zip(self.variables, m.groups(), strict=True))


@dataclass(frozen=True)
class Route:
    http_method: str  # upper case
    path: PathTemplate
    body: str  # "", "*" or a top-level field name
    response_body: str
    backend: str
    grpc_path: str  # /package.Service/Method
    method: descriptor.MethodDescriptor
    request_cls: type[Message]
    response_cls: type[Message]
    server_streaming: bool
    idempotent_write: bool = field(default=False)
    public: bool = field(default=False)  # no bearer: kit.grpc.public (the services' list too)

    @property
    def span_name(self) -> str:
        return f"{self.http_method} {self.path.template}"

    @property
    def operation_id(self) -> str:
        return f"{self.method.containing_service.name}_{self.method.name}"

    def sort_key(self) -> tuple[int, int, int]:
        # Custom verbs and more literal segments first, so `/x/{id}:claim` wins over `/x/{id}`.
        return (0 if self.path.verb else 1, -self.path.literal_segments, -len(self.path.template))


def _rules(rule: http_pb2.HttpRule) -> Iterator[http_pb2.HttpRule]:
    yield rule
    for extra in rule.additional_bindings:
        yield from _rules(extra)


def _verb_and_template(rule: http_pb2.HttpRule) -> tuple[str, str] | None:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        return None
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    return kind.upper(), str(getattr(rule, kind))


def _message_class(desc: descriptor.Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(desc)


def routes_of_module(module: ModuleType, backend: str) -> Iterator[Route]:
    file_desc: descriptor.FileDescriptor = module.DESCRIPTOR
    for service in file_desc.services_by_name.values():
        for method in service.methods:
            opts = method.GetOptions()
            if not opts.HasExtension(annotations_pb2.http):
                continue
            if method.client_streaming:
                continue  # not expressible over plain HTTP/1.1 requests
            for rule in _rules(opts.Extensions[annotations_pb2.http]):
                found = _verb_and_template(rule)
                if found is None:
                    continue
                verb, template = found
                yield Route(
                    http_method=verb,
                    path=PathTemplate.parse(template),
                    body=rule.body,
                    response_body=rule.response_body,
                    backend=backend,
                    grpc_path=f"/{service.full_name}/{method.name}",
                    method=method,
                    request_cls=_message_class(method.input_type),
                    response_cls=_message_class(method.output_type),
                    server_streaming=method.server_streaming,
                    public=is_public(f"/{service.full_name}/{method.name}"),
                )


def load_routes(modules: dict[str, str] | None = None) -> list[Route]:
    found: list[Route] = []
    for name, backend in (modules or service_modules()).items():
        found.extend(routes_of_module(importlib.import_module(name), backend))
    return found


@dataclass
class Router:
    """Routes indexed by HTTP method and first literal path segment, most specific first."""

    routes: list[Route]
    _index: dict[tuple[str, str], list[Route]] = field(default_factory=dict, init=False)
    _paths: dict[str, list[Route]] = field(default_factory=dict, init=False)
    # Templates without variables (`/v1/whoami`): the route the walk below picks for that very path.
    _exact: dict[tuple[str, str], Route] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for route in sorted(self.routes, key=Route.sort_key):
            head = _head(route.path.template)
            head = "*" if "{" in route.path.template.split("/", 3)[2] else head
            self._index.setdefault((route.http_method, head), []).append(route)
            self._paths.setdefault(head, []).append(route)
        for route in self.routes:
            if not route.path.variables:
                found = self._walk(route.http_method, route.path.template)
                if found is not None and not found[1]:
                    self._exact[(route.http_method, route.path.template)] = found[0]

    def match(self, http_method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        exact = self._exact.get((http_method, path))
        if exact is not None:
            return exact, {}
        return self._walk(http_method, path)

    def _walk(self, http_method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for key in ((http_method, _head(path)), (http_method, "*")):
            for route in self._index.get(key, ()):
                found = route.path.match(path)
                if found is not None:
                    return route, found
        return None

    def allowed(self, path: str) -> list[str]:
        """Methods served on `path` (for 405)."""
        candidates = [*self._paths.get(_head(path), ()), *self._paths.get("*", ())]
        return sorted({r.http_method for r in candidates if r.path.match(path)})

    def by_backend(self) -> dict[str, list[Route]]:
        out: dict[str, list[Route]] = {}
        for r in self.routes:
            out.setdefault(r.backend, []).append(r)
        return out


def _head(path: str) -> str:
    # `/v1/leads/...` -> `/v1/leads`; `/v1/inbox:stream` -> `/v1/inbox`
    parts = path.split("/", 3)
    head = "/".join(parts[:3])
    return head.split(":", 1)[0].split("{", 1)[0]


def message_classes(routes: Iterable[Route]) -> dict[str, Any]:
    return {r.grpc_path: (r.request_cls, r.response_cls) for r in routes}
