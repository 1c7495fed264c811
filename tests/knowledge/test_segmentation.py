# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Segmentation and the pure search rules: jieba from its package, its cache under the var dir,
two-character words inside longer ones, and snippets that cannot carry markup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from services.knowledge.domain.search import Doc, highlights, query_terms, rank
from services.knowledge.segmentation import tokens

ROOT = Path(__file__).resolve().parents[2]


def test_words_two_character_parts_and_mixed_text() -> None:
    assert tokens("价格谈崩") == ["价格", "谈崩"]
    assert "预算" in tokens("总预算") and "价格" in tokens("价格谈判")
    assert tokens("Objection-handling, Café 18.4% competitor:acme") == [
        "objection",
        "handling",
        "café",
        "18",
        "4",
        "competitor",
        "acme",
    ]
    assert tokens("  ，。！  ") == []


def test_jieba_loads_once_from_its_package_and_caches_under_the_var_dir(tmp_path: Path) -> None:
    """In a fresh process: nothing written to the working directory or jieba's package."""
    var, cwd = tmp_path / "var", tmp_path / "cwd"
    cwd.mkdir()
    import jieba  # type: ignore[import-untyped]

    package = Path(jieba.__file__).parent
    before = sorted(p.name for p in package.iterdir())
    script = (
        "import json, sys\n"
        "from services.knowledge import segmentation as s\n"
        "a = s.tokens('预算不够时怎么谈'); b = s.tokens('价格')\n"
        "print(json.dumps([a, b, s._tokenizer is s._load()]))\n"
    )
    env = {**os.environ, "SALESOPS_VAR_DIR": str(var), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gen'}"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    words, price, same = json.loads(out.stdout.strip().splitlines()[-1])
    assert "预算" in words and price == ["价格"] and same
    assert [p.name for p in (var / "knowledge-jieba").iterdir()] == ["jieba.cache"]
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in package.iterdir()) == before


def test_ranking_is_by_coverage_then_field_then_id() -> None:
    terms = query_terms(["价格", "的", "objection"], [[("异议",), ("objection",)]])
    assert [t.word for t in terms] == ["价格", "objection"]  # the stopword dropped
    docs = [
        Doc("b", ["价格", "异议"], [], []),  # both terms, body only
        Doc("a", ["价格"], ["价格"], []),  # one term, in the title
        Doc("c", ["异议"], [], ["异议"]),  # one term, as a label
        Doc("d", ["其他"], ["其他"], []),
    ]
    assert [h.card_id for h in rank(docs, terms)] == ["b", "a", "c"]


def test_snippets_escape_the_card_text() -> None:
    out = highlights(["<script>价格</script> 太高", "no match"], [("价格",)])
    assert out == ["&lt;script&gt;<em>价格</em>&lt;/script&gt; 太高"]
    # English words are highlighted whole, not inside other words.
    assert highlights(["price and pricey"], [("price",)]) == ["<em>price</em> and pricey"]
