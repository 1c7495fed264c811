"""Word segmentation for search: jieba in the application, the same for cards and queries.

Both databases index what this returns (space-joined), so SQLite's FTS5 and
PostgreSQL's tsvector see the same words: Chinese split into dictionary words
(search mode, so a long word also yields its two-character parts, 价格谈判 ->
价格, 谈判, 价格谈判), everything NFKC-normalised and case-folded, and any
character that is not a letter or digit treated as a separator.

jieba's dictionary ships in its package; it is loaded once per process, on first
use, and its prefix cache is kept under the service's var dir (never in the
package directory or the working directory). No download happens.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from pathlib import Path
from typing import Any

from kit.config import var_dir

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A run of Chinese characters (segmented by jieba), or a run of other letters and digits (a word).
HAN_RUN = re.compile(rf"[{HAN}]+")
RUN = re.compile(rf"[{HAN}]+|(?:(?![{HAN}])[^\W_])+")
WORD = re.compile(r"[^\W_]+")  # letters and digits in any script
MAX_TOKEN = 64  # longer runs (hashes, URLs) are not words anyone searches for
CACHE_DIR_NAME = "knowledge-jieba"

_lock = threading.Lock()
_tokenizer: Any = None


def cache_dir() -> Path | None:
    """Where jieba keeps its prefix cache; None when the var dir cannot be written."""
    path = var_dir() / CACHE_DIR_NAME
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path


def _load() -> Any:
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            import jieba  # type: ignore[import-untyped]

            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()  # the package's own dictionary
            where = cache_dir()
            if where is not None:
                tokenizer.tmp_dir = str(where)
                tokenizer.initialize()
            else:
                # Nowhere to write: build the prefix dictionary in memory, no cache file.
                tokenizer.FREQ, tokenizer.total = tokenizer.gen_pfdict(tokenizer.get_dict_file())
                tokenizer.initialized = True
            _tokenizer = tokenizer
        return _tokenizer


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def tokens(text: str) -> list[str]:
    """The words of `text`, in order, repeats kept (term frequency counts them)."""
    text = normalise(text)
    if not text.strip():
        return []
    out: list[str] = []
    for match in RUN.finditer(text):
        run = match.group()
        if HAN_RUN.fullmatch(run):
            out.extend(w for w in _load().cut_for_search(run) if WORD.fullmatch(w))
        elif len(run) <= MAX_TOKEN:
            out.append(run)
    return out
