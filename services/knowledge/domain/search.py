"""Search rules: query terms with their synonyms, matching, ranking and highlighted snippets.

Pure. The databases only find candidates (any query word in a card's index); the
match, the score and the order are decided here, so SQLite and PostgreSQL give
the same ids in the same order.

A query is a list of terms (its segmented words). Each term is a group of
alternatives: the term itself and every term of a synonym group containing it;
an alternative may be several words ("decision maker"), matched when all of them
are in the card. A card matches when at least one group matches. Score: 10 per
matched group (covering more of the query wins), plus per group 3 if in the
title, 2 if in the scenario or tags, 1 otherwise, plus 0.1 per extra
occurrence (at most 5); ties break on card id.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Words too common to find anything by: dropped from queries (cards keep them).
STOPWORDS = frozenset(
    {
        "的", "了", "和", "与", "及", "或", "在", "是", "时", "吗", "呢", "吧", "啊", "把", "被", "我", "你", "他",
        "怎么", "怎么办", "如何", "什么", "一个", "这个", "那个",
        "a", "an", "the", "of", "to", "and", "or", "in", "on", "at", "for", "with", "is", "are", "how", "what",
    }
)  # fmt: skip
MAX_TERMS = 16
SNIPPET = 36  # characters of context either side of a hit
MAX_HIGHLIGHTS = 3

Alternative = tuple[str, ...]


@dataclass(frozen=True)
class Term:
    word: str
    alternatives: tuple[Alternative, ...]

    def words(self) -> set[str]:
        return {w for alt in self.alternatives for w in alt}


@dataclass(frozen=True)
class Doc:
    """A candidate card's words: lists, or the index's space-joined strings as they are stored
    (then a word is counted with str.count over the padded string, at C speed, without splitting)."""

    card_id: str
    tokens: str | Sequence[str]
    title_tokens: str | Sequence[str]
    label_tokens: str | Sequence[str]


@dataclass(frozen=True)
class Hit:
    card_id: str
    score: float
    matched: tuple[Alternative, ...]


def query_terms(words: Sequence[str], synonyms: Sequence[Sequence[Alternative]]) -> list[Term]:
    """The query's distinct words (stopwords dropped, first MAX_TERMS) with their synonyms."""
    terms: list[Term] = []
    seen: set[str] = set()
    for word in words:
        if word in seen or word in STOPWORDS:
            continue
        seen.add(word)
        alternatives: list[Alternative] = [(word,)]
        for group in synonyms:
            if any(alt == (word,) for alt in group):
                alternatives.extend(alt for alt in group if alt and alt not in alternatives)
        terms.append(Term(word, tuple(alternatives)))
        if len(terms) == MAX_TERMS:
            break
    return terms


def candidate_words(terms: Sequence[Term]) -> list[str]:
    """Every word a candidate card must have at least one of (what the index is asked)."""
    return sorted({w for t in terms for w in t.words()})


def _counts(tokens: str | Sequence[str], wanted: frozenset[str]) -> dict[str, int]:
    """How often each wanted word occurs (words absent are left out)."""
    if isinstance(tokens, str):
        padded = f" {tokens.replace(' ', '  ')} "  # doubled: a word's neighbour keeps its own space
        found = {w: padded.count(f" {w} ") for w in wanted}
        return {w: n for w, n in found.items() if n}
    out: dict[str, int] = {}
    for w in tokens:
        if w in wanted:
            out[w] = out.get(w, 0) + 1
    return out


def _has(alt: Alternative, words: Mapping[str, int] | set[str]) -> bool:
    return all(w in words for w in alt)


def score(doc: Doc, terms: Sequence[Term], wanted: frozenset[str] | None = None) -> Hit | None:
    wanted = wanted if wanted is not None else frozenset(w for t in terms for w in t.words())
    counts = _counts(doc.tokens, wanted)
    if not counts:
        return None
    title, labels = _counts(doc.title_tokens, wanted), _counts(doc.label_tokens, wanted)
    total = 0.0
    matched: list[Alternative] = []
    for term in terms:
        found = [alt for alt in term.alternatives if _has(alt, counts)]
        if not found:
            continue
        if any(_has(alt, title) for alt in found):
            weight = 3.0
        elif any(_has(alt, labels) for alt in found):
            weight = 2.0
        else:
            weight = 1.0
        repeats = max(min(counts[w] for w in alt) for alt in found) - 1
        total += 10.0 + weight + 0.1 * min(repeats, 5)
        matched.extend(found)
    if not matched:
        return None
    return Hit(doc.card_id, round(total, 3), tuple(matched))


def rank(docs: Sequence[Doc], terms: Sequence[Term]) -> list[Hit]:
    wanted = frozenset(w for t in terms for w in t.words())
    hits = [h for h in (score(d, terms, wanted) for d in docs) if h is not None]
    return sorted(hits, key=lambda h: (-h.score, h.card_id))


def _pattern(matched: Sequence[Alternative]) -> re.Pattern[str] | None:
    words = sorted({w for alt in matched for w in alt}, key=lambda w: (-len(w), w))
    if not words:
        return None
    parts = [rf"(?<![^\W_]){re.escape(w)}(?![^\W_])" if w.isascii() else re.escape(w) for w in words]
    return re.compile("|".join(parts), re.IGNORECASE)


def highlights(texts: Sequence[str], matched: Sequence[Alternative]) -> list[str]:
    """Up to MAX_HIGHLIGHTS fragments of `texts` (in order) with each hit wrapped in <em></em>;
    the text around them is HTML-escaped, so a card cannot inject markup into a snippet."""
    pattern = _pattern(matched)
    if pattern is None:
        return []
    out: list[str] = []
    for text in texts:
        found = list(pattern.finditer(text))
        if not found:
            continue
        start = max(0, found[0].start() - SNIPPET)
        end = min(len(text), found[0].end() + SNIPPET)
        pieces, cursor = [], start
        for m in found:
            if m.start() < cursor or m.end() > end:
                continue
            pieces.append(html.escape(text[cursor : m.start()], quote=False))
            pieces.append(f"<em>{html.escape(m.group(), quote=False)}</em>")
            cursor = m.end()
        pieces.append(html.escape(text[cursor:end], quote=False))
        fragment = "".join(pieces)
        out.append(("…" if start > 0 else "") + fragment + ("…" if end < len(text) else ""))
        if len(out) == MAX_HIGHLIGHTS:
            break
    return out
