"""JSON value -> bytes, the same bytes as `json.dumps(value, separators=(",", ":"))`, faster.

orjson writes a ListLeads page about ten times faster than the stdlib encoder. Its output differs
from the stdlib's in two ways, both put right here so no answer changes by a byte: it writes
non-ASCII characters (and DEL) raw where the stdlib escapes them as `\\uXXXX` (surrogate pairs
beyond the BMP), and it prints floats its own way, so the converters hand doubles over as
`ExactFloat`, which orjson passes to `_default` and which is printed by `float.__repr__` like the
stdlib does (gateway.proto_json gives every double, and every float json_format writes, that type).
Without orjson, the stdlib encoder serves.
"""

from __future__ import annotations

import json
import re
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the stdlib answers the same bytes
    orjson = None  # type: ignore[assignment]

# JSON text written as it is (gateway.proto_json's memo); None without orjson.
Fragment: Any = None if orjson is None else orjson.Fragment

# json.dumps(value, separators=...) builds a new encoder on every call; this one is reused.
COMPACT = json.JSONEncoder(separators=(",", ":"))
# What the stdlib's ensure_ascii escapes and orjson leaves raw: DEL and everything past ASCII.
_RAW = re.compile("[\x7f-\U0010ffff]+")


class ExactFloat(float):
    """A double printed as the stdlib prints it (orjson hands it to `_default`)."""

    __slots__ = ()


def _default(value: Any) -> Any:
    if isinstance(value, ExactFloat):
        return orjson.Fragment(float.__repr__(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# The stdlib's own escaping of a string (C), quoted: a run of such characters escaped at once.
_ESCAPE = json.encoder.encode_basestring_ascii
# What `backslashreplace` writes otherwise than the stdlib: DEL (left raw), U+0080..U+00FF (as
# `\xXX`) and characters past the BMP (as `\UXXXXXXXX`). Without them its `\uxxxx` (four lowercase
# hex digits) is the stdlib's escape, character for character. Found in the UTF-8 by the bytes that
# begin them (DEL; lead bytes C2, C3; F0 to F4): a memchr each, where a regex over the text was
# a quarter of a ListLeads page's encoding.
_NOT_BACKSLASHREPLACE = (b"\x7f", b"\xc2", b"\xc3", b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")


def _escape_run(match: re.Match[str]) -> str:
    return _ESCAPE(match.group())[1:-1]


def ascii_bytes(raw: bytes) -> bytes:
    """orjson's UTF-8 output with what the stdlib escapes escaped (raw is valid JSON, so these
    characters only occur inside strings, where the escape means the same). Most text (CJK, in the
    BMP) is escaped by the codec in C; the per-run substitution (a Python call per run of
    characters) was half of a ListLeads page's encoding with Chinese names."""
    if raw.isascii() and b"\x7f" not in raw:
        return raw
    text = raw.decode("utf-8")
    for odd in _NOT_BACKSLASHREPLACE:
        if odd in raw:
            return _RAW.sub(_escape_run, text).encode("ascii")
    return text.encode("ascii", "backslashreplace")


def dumps(value: Any) -> bytes:
    """`json.dumps(value, separators=(",", ":")).encode()` for a value whose floats are all
    `ExactFloat` (a plain float would be printed orjson's way)."""
    if orjson is None:
        return COMPACT.encode(value).encode()
    try:
        raw = orjson.dumps(value, default=_default)
    except orjson.JSONEncodeError:  # e.g. nesting past orjson's limit: the stdlib's answer
        return COMPACT.encode(value).encode()
    return ascii_bytes(raw)


def dumps_fragments(value: Any) -> bytes:
    """`dumps` for a value that may hold `Fragment`s of ASCII JSON text (orjson only): raises
    orjson.JSONEncodeError (a TypeError) where `dumps` would fall back to the stdlib."""
    return ascii_bytes(orjson.dumps(value, default=_default))


__all__ = ["COMPACT", "ExactFloat", "Fragment", "ascii_bytes", "dumps", "dumps_fragments"]
