"""Knowledge benchmarks, each against a bare baseline measured in the same run; each lives in its
own module (the shared cards and helpers in bench/knowledge_rows.py, their words in
bench/knowledge_words.py):

- recommend: bench/knowledge_recommend.py (RecommendSopCards with 10,000 cards and 1,000,000 uses;
  the deals, uses and lift cells seeded by bench/knowledge_history.py).
- search: bench/knowledge_search.py (SearchSopCards over 10,000 bilingual cards vs a bare FTS query).

This module only runs the ones named, printing their figures:

    .venv/bin/python -m bench.bench_knowledge [--quick] [recommend|search]
"""

from __future__ import annotations

import sys

from bench.knowledge_recommend import recommend_suite
from bench.knowledge_search import search_suite

if __name__ == "__main__":
    quick = "--quick" in sys.argv
    which = [a for a in sys.argv[1:] if not a.startswith("--")] or ["recommend", "search"]
    for name in which:
        figures = recommend_suite(quick) if name == "recommend" else search_suite(quick)
        for fig in figures:
            print(
                f"{fig.name}: {fig.value:.2f} {fig.unit} (baseline {fig.baseline}; ratio {fig.ratio}) {fig.note}"
            )
