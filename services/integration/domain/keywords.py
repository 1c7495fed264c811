"""Keyword trackers matched in transcripts: one Aho-Corasick pass over every variant. Pure.

A tracker is a canonical term and its variants (synonyms), Chinese and English
alike. Matching folds case and full-width forms character by character, so the
offsets found are offsets in the original text. English (any phrase end that is
a Latin letter or digit) must sit on a word boundary: "budget" is found in
"our budget is", "预算budget不够", but not in "budgetary". Chinese has no spaces,
so a Chinese phrase end needs no boundary. Overlapping mentions of different
keywords all count; overlapping variants of one keyword count once (the longest).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ahocorasick

from salesops.integration.v1 import insights_pb2 as i

MAX_VARIANTS = 50
MAX_PHRASE = 100
EXCERPT = 80


@dataclass(frozen=True)
class Tracker:
    keyword_id: str
    term: str
    category: int
    variants: tuple[str, ...] = ()
    customer_only: bool = False

    @property
    def phrases(self) -> tuple[str, ...]:
        return (self.term, *self.variants)


@dataclass(frozen=True)
class Turn:
    speaker: int
    text: str


@dataclass(frozen=True)
class Occurrence:
    keyword_id: str
    matched_text: str
    segment_index: int
    start: int  # code points, in the turn's text
    end: int  # exclusive
    speaker: int


@dataclass(frozen=True)
class Mention:
    """One keyword's figures in one conversation."""

    keyword_id: str
    term: str
    category: int
    count: int
    customer_count: int
    excerpt: str

    @property
    def said_by_customer(self) -> bool:
        return self.customer_count > 0


def _cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x2E80 <= o <= 0x9FFF  # CJK radicals, kana, unified ideographs
        or 0xAC00 <= o <= 0xD7AF  # Hangul
        or 0xF900 <= o <= 0xFAFF
        or 0x20000 <= o <= 0x3FFFF
    )


def _wordish(ch: str) -> bool:
    """A character that continues an English word: letters and digits that are not CJK."""
    return (ch.isalnum() or ch == "_") and not _cjk(ch)


def fold(text: str) -> str:
    """Case- and width-folded, one character for one (so offsets carry over to the original)."""
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch).lower()
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


def normalise_phrase(phrase: str) -> str:
    """The form a phrase is stored and compared in: trimmed, inner whitespace single spaces."""
    return " ".join(phrase.split())


def _control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def problems(term: str, variants: Sequence[str]) -> list[tuple[str, str]]:
    """What is wrong with a tracker's phrases, as (field, description)."""
    found: list[tuple[str, str]] = []
    if not normalise_phrase(term) or len(term) > MAX_PHRASE or _control(term):
        found.append(("term", f"required, at most {MAX_PHRASE} characters, no control characters"))
    if len(variants) > MAX_VARIANTS:
        found.append(("synonyms", f"at most {MAX_VARIANTS}"))
    seen = {fold(normalise_phrase(term))}
    for n, v in enumerate(variants):
        norm = normalise_phrase(v)
        if not norm or len(v) > MAX_PHRASE or _control(v):
            found.append(
                (f"synonyms[{n}]", f"non-empty, at most {MAX_PHRASE} characters, no control characters")
            )
        elif fold(norm) in seen:
            found.append((f"synonyms[{n}]", "repeats the term or another synonym"))
        seen.add(fold(norm))
    return found


class Matcher:
    """Built once per analysis from the tenant's enabled trackers."""

    def __init__(self, trackers: Iterable[Tracker]) -> None:
        self.trackers = {t.keyword_id: t for t in trackers}
        self._automaton = ahocorasick.Automaton()
        words: dict[str, list[str]] = {}
        for t in self.trackers.values():
            for phrase in t.phrases:
                key = fold(normalise_phrase(phrase))
                if key and t.keyword_id not in words.setdefault(key, []):
                    words[key].append(t.keyword_id)
        for key, ids in words.items():
            self._automaton.add_word(key, (key, tuple(ids)))
        self._empty = not words
        if not self._empty:
            self._automaton.make_automaton()

    def find(self, turns: Sequence[Turn]) -> list[Occurrence]:
        """Every mention in transcript order (turn, then start offset)."""
        found: list[Occurrence] = []
        if self._empty:
            return found
        for index, turn in enumerate(turns):
            text = turn.text
            folded = fold(text)
            spans: dict[str, list[tuple[int, int]]] = {}
            for last, (key, ids) in self._automaton.iter(folded):
                start, end = last - len(key) + 1, last + 1
                if _wordish(key[0]) and start > 0 and _wordish(folded[start - 1]):
                    continue
                if _wordish(key[-1]) and end < len(folded) and _wordish(folded[end]):
                    continue
                for kid in ids:
                    spans.setdefault(kid, []).append((start, end))
            for kid, hits in spans.items():
                tracker = self.trackers[kid]
                if tracker.customer_only and turn.speaker != i.SPEAKER_CUSTOMER:
                    continue
                for start, end in _longest_disjoint(hits):
                    found.append(Occurrence(kid, text[start:end], index, start, end, turn.speaker))
        found.sort(key=lambda o: (o.segment_index, o.start, o.end, o.keyword_id))
        return found


def _longest_disjoint(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """One keyword's spans with overlaps resolved: leftmost first, the longer one at the same start."""
    kept: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
        if kept and start < kept[-1][1]:
            continue
        kept.append((start, end))
    return kept


def excerpt(text: str, start: int, end: int, width: int = EXCERPT) -> str:
    """At most `width` characters of `text` centred on [start, end)."""
    room = max(0, width - (end - start))
    lo = max(0, start - room // 2)
    hi = min(len(text), lo + width)
    lo = max(0, hi - width)
    return " ".join(text[lo:hi].split())


def mentions(matcher: Matcher, turns: Sequence[Turn], found: Sequence[Occurrence]) -> list[Mention]:
    """Per keyword: mentions, customer mentions, an excerpt of the first; most mentioned first."""
    by_id: dict[str, list[Occurrence]] = {}
    for o in found:
        by_id.setdefault(o.keyword_id, []).append(o)
    out = []
    for kid, occ in by_id.items():
        t = matcher.trackers[kid]
        first = occ[0]
        out.append(
            Mention(
                kid,
                t.term,
                t.category,
                len(occ),
                sum(1 for o in occ if o.speaker == i.SPEAKER_CUSTOMER),
                excerpt(turns[first.segment_index].text, first.start, first.end),
            )
        )
    out.sort(key=lambda m: (-m.count, m.term))
    return out
