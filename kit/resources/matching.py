"""Text matches of literal text (substring, prefix), case-sensitive or not, alike on both databases.

SQLite's LIKE ignores ASCII case whatever the column's collation (only the deprecated
`PRAGMA case_sensitive_like` changes that), so a case-sensitive match there is a GLOB with the
text's wildcards bracketed; PostgreSQL's LIKE is case-sensitive already. Scopes are built on
these (a team "east" and its sub-teams "east/..."), so "East/NJ" must not match "east/".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, ColumnElement, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import Boolean, String


def escape_like(text: str, escape: str = "\\") -> str:
    """`text` with LIKE wildcards and the escape character made literal."""
    return text.replace(escape, escape * 2).replace("%", escape + "%").replace("_", escape + "_")


def escape_glob(text: str) -> str:
    """`text` with GLOB's wildcards made literal (a bracket expression of one character each)."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)


def like_pattern(text: str, *, anywhere: bool = False) -> str:
    """The LIKE pattern (escape `\\`) of literal `text` as a prefix, or anywhere."""
    return f"{'%' if anywhere else ''}{escape_like(text)}%"


def glob_pattern(text: str, *, anywhere: bool = False) -> str:
    """The GLOB pattern of literal `text` as a prefix, or anywhere."""
    return f"{'*' if anywhere else ''}{escape_glob(text)}*"


class CaseSensitiveMatch(ColumnElement[bool]):
    """`column` matches a pattern exactly in case: `like` (a LIKE pattern, escape `\\`) on
    PostgreSQL and others, `glob` (the same match as a GLOB pattern) on SQLite. Both are bound
    parameters, so a statement built once per shape can bind them per call."""

    type = Boolean()
    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("like_param", InternalTraversal.dp_clauseelement),
        ("glob_param", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: Any, like: BindParameter[str], glob: BindParameter[str]) -> None:
        self.column = column
        self.like_param = like
        self.glob_param = glob


@compiles(CaseSensitiveMatch)
def _like(element: CaseSensitiveMatch, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    escape = compiler.render_literal_value("\\", String())
    return f"{column} LIKE {compiler.process(element.like_param, **kw)} ESCAPE {escape}"


@compiles(CaseSensitiveMatch, "sqlite")
def _glob(element: CaseSensitiveMatch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} GLOB {compiler.process(element.glob_param, **kw)}"


def _match(column: Any, text: str, case_sensitive: bool, anywhere: bool) -> ColumnElement[bool]:
    like = like_pattern(text, anywhere=anywhere)
    if not case_sensitive:
        return column.ilike(like, escape="\\")  # type: ignore[no-any-return]
    glob = glob_pattern(text, anywhere=anywhere)
    return CaseSensitiveMatch(
        column,
        bindparam(None, like, type_=String(), unique=True),
        bindparam(None, glob, type_=String(), unique=True),
    )


def contains(column: Any, text: str, *, case_sensitive: bool = False) -> ColumnElement[bool]:
    """Substring match of literal `text`: `%`, `_`, `*`, `?`, `[` and `\\` in it match only themselves."""
    return _match(column, text, case_sensitive, anywhere=True)


def starts_with(column: Any, text: str, *, case_sensitive: bool = False) -> ColumnElement[bool]:
    """Prefix match of literal `text`."""
    return _match(column, text, case_sensitive, anywhere=False)
