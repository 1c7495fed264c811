"""Input sanitising driven by the contract: AIP-134 update masks and AIP-203 field behaviour.

    created = sanitize_create(request.item)                         # Create: drop OUTPUT_ONLY input
    merged = merge_update(current, request.item, request.update_mask)   # Update

`merge_update` rules (the same for every resource, read from the descriptors'
`google.api.field_behavior` annotations):
- empty mask: the fields present in `incoming` (non-default scalars, set
  messages, non-empty lists); `*`: every field (full replace);
- OUTPUT_ONLY paths (or paths under one) are ignored, as is a top-level `etag`
  (it is checked against the stored version, never stored);
- IMMUTABLE paths are refused (INVALID_ARGUMENT) when they would change the value;
  with an implicit mask (empty or `*`) an unset immutable field keeps its value;
- unknown paths are INVALID_ARGUMENT;
- named message fields and lists are replaced as a whole, not merged; inside
  them OUTPUT_ONLY fields keep the stored value (list and map items, which have no
  stored counterpart, have them cleared) and IMMUTABLE fields may not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from google.api import field_behavior_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from kit.errors import InvalidArgument

M = TypeVar("M", bound=Message)

OUTPUT_ONLY = field_behavior_pb2.OUTPUT_ONLY
IMMUTABLE = field_behavior_pb2.IMMUTABLE
REQUIRED = field_behavior_pb2.REQUIRED
INPUT_ONLY = field_behavior_pb2.INPUT_ONLY
ETAG = "etag"
WILDCARD = "*"


@cache
def _behaviors(field: FieldDescriptor) -> frozenset[int]:
    return frozenset(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def behaviors(field: FieldDescriptor) -> frozenset[int]:
    """The `google.api.field_behavior` values annotated on `field`."""
    return _behaviors(field)


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _is_message(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE


def _is_map(field: Any) -> bool:
    return _is_repeated(field) and _is_message(field) and bool(field.message_type.GetOptions().map_entry)


def _present(msg: Message, field: Any) -> bool:
    if _is_repeated(field):
        return len(getattr(msg, field.name)) > 0
    if field.has_presence:
        return bool(msg.HasField(field.name))
    return bool(getattr(msg, field.name) != field.default_value)


def _resolve(descriptor: Any, path: str) -> list[FieldDescriptor] | None:
    fields: list[FieldDescriptor] = []
    current: Any = descriptor
    for name in path.split("."):
        if current is None:
            return None
        field = current.fields_by_name.get(name)
        if field is None:
            return None
        fields.append(field)
        current = field.message_type if _is_message(field) and not _is_repeated(field) else None
    return fields


def _value(msg: Message, fields: Sequence[FieldDescriptor]) -> tuple[bool, Any]:
    """(present, value) at the path; an unset parent means unset."""
    node: Any = msg
    for i, field in enumerate(fields):
        if not _present(node, field):
            return False, None
        node = getattr(node, field.name)
        if i == len(fields) - 1:
            return True, node
    return False, None  # pragma: no cover - paths are never empty


def _same(a: tuple[bool, Any], b: tuple[bool, Any]) -> bool:
    if a[0] != b[0]:
        return False
    if not a[0]:
        return True
    left, right = a[1], b[1]
    if isinstance(left, Message):
        return bool(left == right)
    if hasattr(left, "__len__") and not isinstance(left, str | bytes):
        return list(left) == list(right)  # repeated containers compare by items
    return bool(left == right)


def _implicit_paths(incoming: Message, *, everything: bool) -> list[str]:
    descriptor = incoming.DESCRIPTOR
    if everything:
        return [f.name for f in descriptor.fields]
    return [f.name for f in descriptor.fields if _present(incoming, f)]


def merge_update(current: M, incoming: M, mask: FieldMask, *, mask_field: str = "update_mask") -> M:
    """`current` with the masked fields of `incoming` applied (a new message; inputs untouched)."""
    descriptor: Any = current.DESCRIPTOR
    requested = list(mask.paths)
    implicit = not requested or requested == [WILDCARD]
    if WILDCARD in requested and len(requested) > 1:
        raise InvalidArgument.field(mask_field, "'*' cannot be combined with other paths")
    if not requested:
        paths = _implicit_paths(incoming, everything=False)
    elif requested == [WILDCARD]:
        paths = _implicit_paths(incoming, everything=True)
    else:
        paths = requested
    apply: list[str] = []
    for path in paths:
        fields = _resolve(descriptor, path)
        if fields is None:
            raise InvalidArgument.field(mask_field, f"unknown field {path!r}")
        if path == ETAG or any(OUTPUT_ONLY in behaviors(f) for f in fields):
            continue
        if any(IMMUTABLE in behaviors(f) for f in fields):
            new = _value(incoming, fields)
            if _same(_value(current, fields), new) or (implicit and not new[0]):
                continue
            raise InvalidArgument.field(f"{mask_field}.{path}", "immutable: it cannot change after creation")
        apply.append(path)
    merged = type(current)()
    merged.CopyFrom(current)
    if apply:
        update = FieldMask(paths=apply)
        if not update.IsValidForDescriptor(descriptor):  # e.g. a path through a list
            raise InvalidArgument.field(mask_field, f"invalid paths {apply}")
        update.MergeMessage(incoming, merged, replace_message_field=True, replace_repeated_field=True)
        for path in apply:
            _guard_inside(merged, current, _resolve(descriptor, path) or [], f"{mask_field}.{path}")
    return merged


def _guard_inside(merged: Message, current: Message, fields: Sequence[FieldDescriptor], where: str) -> None:
    """A message or list replaced by a path takes nothing output-only or immutable from the input."""
    last: Any = fields[-1]
    if not _is_message(last):
        return
    node: Any = merged
    for field in fields[:-1]:
        node = getattr(node, field.name)
    if _is_map(last):
        value_field = last.message_type.fields_by_name["value"]
        if _is_message(value_field):
            for item in getattr(node, last.name).values():
                _clear_output_only(item)
    elif _is_repeated(last):
        for item in getattr(node, last.name):
            _clear_output_only(item)
    elif node.HasField(last.name):
        present, before = _value(current, fields)
        _restore(getattr(node, last.name), before if present else None, where)


def _restore(msg: Message, stored: Message | None, where: str) -> None:
    """Put back `stored`'s OUTPUT_ONLY values in `msg` (cleared if none); refuse IMMUTABLE changes."""
    field: Any
    for field in msg.DESCRIPTOR.fields:
        flags = behaviors(field)
        old = (_present(stored, field), getattr(stored, field.name)) if stored is not None else (False, None)
        if OUTPUT_ONLY in flags:
            msg.ClearField(field.name)
            if stored is not None and old[0]:
                _copy_field(stored, msg, field)
        elif IMMUTABLE in flags and stored is not None:
            new = (_present(msg, field), getattr(msg, field.name))
            if not _same(old, new) and new[0]:
                raise InvalidArgument.field(
                    f"{where}.{field.name}", "immutable: it cannot change after creation"
                )
            if not new[0] and old[0]:
                _copy_field(stored, msg, field)
        elif _is_map(field) or _is_repeated(field):
            if _is_message(field) and not _is_map(field):
                for item in getattr(msg, field.name):
                    _clear_output_only(item)
            elif _is_map(field) and _is_message(field.message_type.fields_by_name["value"]):
                for item in getattr(msg, field.name).values():
                    _clear_output_only(item)
        elif _is_message(field) and msg.HasField(field.name):
            inner = getattr(stored, field.name) if old[0] else None
            _restore(getattr(msg, field.name), inner, f"{where}.{field.name}")


def _copy_field(source: Message, target: Message, field: Any) -> None:
    if _is_repeated(field):  # lists and maps
        getattr(target, field.name).MergeFrom(getattr(source, field.name))
    elif _is_message(field):
        getattr(target, field.name).CopyFrom(getattr(source, field.name))
    else:
        setattr(target, field.name, getattr(source, field.name))


def _clear_output_only(msg: Message) -> None:
    field: Any
    for field, value in msg.ListFields():
        if OUTPUT_ONLY in behaviors(field):
            msg.ClearField(field.name)
        elif _is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            if _is_message(value_field):
                for item in value.values():
                    _clear_output_only(item)
        elif _is_message(field):
            for item in value if _is_repeated(field) else [value]:
                _clear_output_only(item)


def sanitize_create(msg: M) -> M:
    """A copy of `msg` with every OUTPUT_ONLY field cleared, at any depth."""
    clean = type(msg)()
    clean.CopyFrom(msg)
    _clear_output_only(clean)
    return clean


def output_only_paths(descriptor: Any) -> list[str]:
    """Top-level OUTPUT_ONLY field names of a message type (for docs and checks)."""
    return [f.name for f in descriptor.fields if OUTPUT_ONLY in behaviors(f)]


__all__ = [
    "IMMUTABLE",
    "INPUT_ONLY",
    "OUTPUT_ONLY",
    "REQUIRED",
    "behaviors",
    "merge_update",
    "output_only_paths",
    "sanitize_create",
]
