"""Pure functions of GetLead's and ListLeads' reads, kept by their inputs (lead_reads).

A list is asked again and again with the same filter and shows the same leads, so the same values
are made again and again: a page's ~120 datetimes parsed from their SQLite text (10 columns, 20 rows),
its keyset (kit hashes the order's shape with the query fingerprint) and its next page token (JSON +
HMAC + base64). Each value is a function of exactly its key, so no entry can go stale; each memo is
bounded and cleared when full.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from kit.resources import PageTokens, Sort

_TIMES: dict[str, datetime] = {}
_TIMES_MAX = 8192  # ~2 MB at most
_KEYSETS: dict[tuple[str, bool, str], Any] = {}
_TOKENS: dict[tuple[str, str, str], tuple[PageTokens, str]] = {}  # -> (the signer, its token)
_MAX = 4096


def parsed_datetime(text: str) -> datetime:
    """`datetime.fromisoformat(text)` (a stored SQLite datetime; the same object for the same text)."""
    found = _TIMES.get(text)
    if found is None:
        if len(_TIMES) >= _TIMES_MAX:
            _TIMES.clear()
        found = _TIMES[text] = datetime.fromisoformat(text)
    return found


def keyset(make: Callable[[Sequence[Sort], str], Any], order: Sort, query: str) -> Any:
    """`make([order], query)` (Repository._keyset) for one order and a query fingerprint."""
    key = (order.name, order.descending, query)
    found = _KEYSETS.get(key)
    if found is None:
        if len(_KEYSETS) >= _MAX:
            _KEYSETS.clear()
        found = _KEYSETS[key] = make([order], query)
    return found


def page_token(signer: PageTokens, tenant: str, fingerprint: str, values: list[Any]) -> str:
    """`signer.encode(tenant, fingerprint, values)`."""
    # repr: the values as exactly as a token packs them (a bool is not its int; a datetime's zone)
    key = (tenant, fingerprint, repr(values))
    found = _TOKENS.get(key)
    if found is None or found[0] is not signer:
        if len(_TOKENS) >= _MAX:
            _TOKENS.clear()
        found = _TOKENS[key] = (signer, signer.encode(tenant, fingerprint, values))
    return found[1]
