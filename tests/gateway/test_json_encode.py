"""gateway.json_encode.dumps writes the bytes json.dumps(separators=(",", ":")) writes, for any JSON
value the converters hand it (strings of any code point, doubles as ExactFloat, nesting)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import json_encode
from gateway.json_encode import ExactFloat


def _stdlib(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


_FLOATS = st.floats(allow_nan=False, allow_infinity=False).map(ExactFloat)
_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text() | _FLOATS
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_same_bytes_as_the_stdlib(value: Any) -> None:
    assert json_encode.dumps(value) == _stdlib(value)


def test_what_orjson_writes_otherwise() -> None:
    text = 'del\x7f ctl\x01\x1f 电话 😀 \u2028 "q" \\'
    value = {text: [text, ExactFloat(1e16), ExactFloat(1e-5), ExactFloat(-0.0), ExactFloat(0.1)]}
    assert json_encode.dumps(value) == _stdlib(value)
    assert json_encode.dumps(value).isascii()


def test_exact_floats_equal_their_value() -> None:
    assert ExactFloat(1.5) == 1.5 and math.copysign(1, ExactFloat(-0.0)) < 0


def test_deep_nesting_falls_back_to_the_stdlib() -> None:
    value: Any = []
    for _ in range(300):  # deeper than orjson writes
        value = [value]
    assert json_encode.dumps(value) == _stdlib(value)


# Text as the answers hold it: CJK and other BMP text (the codec's escaping), with now and then a
# character the codec would write otherwise (DEL, Latin-1, past the BMP: the per-run escaping).
_CJK = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=8)
_TEXT = st.lists(
    _CJK | st.text(max_size=6) | st.sampled_from(["\x7f", "é", "\xa0", "😀", "\U0010ffff", "\\", '"']),
    max_size=6,
).map("".join)


@settings(max_examples=600, deadline=None)
@given(st.lists(_TEXT, max_size=6))
def test_same_bytes_as_the_stdlib_for_mixed_text(texts: list[str]) -> None:
    value = {t: texts for t in texts}
    assert json_encode.dumps(value) == _stdlib(value)
    assert json_encode.dumps(texts) == _stdlib(texts)


def test_each_way_of_escaping() -> None:
    for text in ["李明 采购经理 上海", "\u017f\uffff\u0100", "é", "\x7f", "😀", "李明\x7f", "上海😀", "\x80"]:
        assert json_encode.dumps([text]) == _stdlib([text]), text


@settings(max_examples=600, deadline=None)
@given(st.lists(_TEXT | st.text(), max_size=4))
def test_ascii_bytes_escapes_as_the_stdlib(texts: list[str]) -> None:
    raw = json.dumps(texts, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    if any(0xD800 <= ord(c) <= 0xDFFF for t in texts for c in t):
        return  # a lone surrogate is not UTF-8: orjson refuses it, json.dumps answers instead
    assert json_encode.ascii_bytes(raw) == _stdlib(texts)
