"""Proto comments by element full name, for the OpenAPI descriptions.

The generated stubs carry no source info, so the contracts are compiled once
more with `--include_source_info` into a descriptor set (in memory, at first
use). Without the `protos/` tree (a slim image) descriptions are simply empty.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import google.api
import grpc_tools  # type: ignore[import-untyped]
from google.protobuf import descriptor_pb2

PROTOS = Path(__file__).resolve().parent.parent / "protos"

# FileDescriptorProto / DescriptorProto field numbers used in source-info paths.
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_NESTED_MESSAGE, _NESTED_ENUM, _FIELD = 3, 4, 2
_ENUM_VALUE, _METHOD = 2, 2


def _compile(root: Path) -> descriptor_pb2.FileDescriptorSet:
    from grpc_tools import protoc

    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.proto"))
    googleapis = Path(next(iter(google.api.__path__))).parent.parent
    wkt = Path(next(iter(grpc_tools.__path__))) / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = [
            "protoc",
            f"-I{root}",
            f"-I{googleapis}",
            f"-I{wkt}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *files,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc could not compile the contracts")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _clean(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines()).strip()


def load_comments(root: Path = PROTOS) -> dict[str, str]:
    if not root.is_dir():
        return {}
    found: dict[str, str] = {}
    for fd in _compile(root).file:
        names = _element_names(fd)
        for loc in fd.source_code_info.location:
            name = names.get(tuple(loc.path))
            if name and loc.leading_comments.strip():
                found[name] = _clean(loc.leading_comments)
    return found


def _element_names(fd: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    """Source-info path -> full name of every message, field, enum, value, service and method."""
    names: dict[tuple[int, ...], str] = {}

    def message(path: tuple[int, ...], msg: descriptor_pb2.DescriptorProto, prefix: str) -> None:
        full = f"{prefix}.{msg.name}"
        names[path] = full
        for i, f in enumerate(msg.field):
            names[(*path, _FIELD, i)] = f"{full}.{f.name}"
        for i, nested in enumerate(msg.nested_type):
            message((*path, _NESTED_MESSAGE, i), nested, full)
        for i, en in enumerate(msg.enum_type):
            enum((*path, _NESTED_ENUM, i), en, full)

    def enum(path: tuple[int, ...], en: descriptor_pb2.EnumDescriptorProto, prefix: str) -> None:
        full = f"{prefix}.{en.name}"
        names[path] = full
        for i, v in enumerate(en.value):
            names[(*path, _ENUM_VALUE, i)] = f"{full}.{v.name}"

    for i, msg in enumerate(fd.message_type):
        message((_MESSAGE, i), msg, fd.package)
    for i, en in enumerate(fd.enum_type):
        enum((_ENUM, i), en, fd.package)
    for i, svc in enumerate(fd.service):
        names[(_SERVICE, i)] = f"{fd.package}.{svc.name}"
        for j, m in enumerate(svc.method):
            names[(_SERVICE, i, _METHOD, j)] = f"{fd.package}.{svc.name}.{m.name}"
    return names
