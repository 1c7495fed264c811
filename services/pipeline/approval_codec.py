"""Decoding the approval workflow's JSON payloads into its dataclasses, with each class's plan kept.

Temporal's default converter resolves every dataclass's type hints again for every instance it
decodes (`typing.get_type_hints` per nested step, action and limit): a `Run` took 2-4 ms of CPU per
decode, paid by the workflow's input and by each activity that is handed the run. The payloads are
the same JSON (Temporal encodes them as before); only the reading side changes: the activities and
the workflow take the plain JSON value and decode it here, where each class's field types are
resolved once. Shapes are checked like the default converter: a dataclass from an object, a list
from an array, a missing required field fails.

`encode` is the writing side: the plain JSON value Temporal's encoder would make of a dataclass
(`dataclasses.asdict`, which deep-copies every leaf), built from each class's field names kept once.
Handing Temporal that value writes the same JSON for a fraction of the CPU.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Decoder = Callable[[Any], Any]
_plans: dict[object, _Decoder] = {}


def decode(cls: type[T], value: Any) -> T:
    """`value` (JSON-decoded) as an instance of the dataclass `cls`."""
    return typing.cast(T, _decoder(cls)(value))


def encode(value: Any) -> Any:
    """`value` (dataclasses, lists, dicts and JSON scalars) as plain JSON values: `dataclasses.asdict`'s
    result for a dataclass, in the same field order."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list or kind is tuple:
        return [encode(v) for v in value]
    if kind is dict:
        return {k: encode(v) for k, v in value.items()}
    names = _fields.get(kind)
    if names is None:
        if not dataclasses.is_dataclass(value):
            return value  # anything else is left to Temporal's encoder, as before
        names = _fields[kind] = tuple(f.name for f in dataclasses.fields(value))
    return {name: encode(getattr(value, name)) for name in names}


_SCALARS = frozenset({str, int, float, bool, type(None)})
_fields: dict[type, tuple[str, ...]] = {}


def _decoder(hint: object) -> _Decoder:
    got = _plans.get(hint)
    if got is None:
        got = _plans[hint] = _build(hint)
    return got


def _plain(kind: type) -> _Decoder:
    def read(value: Any) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return read


def _build(hint: object) -> _Decoder:
    if hint is typing.Any:
        return lambda value: value
    if hint in (str, int, float, bool):
        return _plain(typing.cast(type, hint))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if len(args) == 2 and type(None) in args:  # X | None
            inner = _decoder(args[0] if args[1] is type(None) else args[1])
            return lambda value: None if value is None else inner(value)
        raise TypeError(f"unsupported union {hint}")
    if origin is list:
        item = _decoder(args[0]) if args else _decoder(typing.Any)

        def read_list(value: Any) -> list[Any]:
            if not isinstance(value, list):
                raise TypeError(f"expected a list, got {type(value).__name__}")
            return [item(v) for v in value]

        return read_list
    if origin is dict:
        of = _decoder(args[1]) if len(args) == 2 else _decoder(typing.Any)

        def read_dict(value: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise TypeError(f"expected an object, got {type(value).__name__}")
            return {k: of(v) for k, v in value.items()}

        return read_dict
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(hint)
    raise TypeError(f"no decoder for {hint}")


def _dataclass(cls: type) -> _Decoder:
    # Built whole before use (the approval types nest without cycles); two threads building the same
    # plan at once both get a correct one.
    hints = typing.get_type_hints(cls)
    plan = [(f.name, _decoder(hints[f.name])) for f in dataclasses.fields(cls) if f.init]

    def read(value: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"cannot decode {cls.__name__} from {type(value).__name__}")
        kwargs = {name: of(value[name]) for name, of in plan if name in value}
        return cls(**kwargs)

    return read


__all__ = ["decode", "encode"]
