"""repositories/read_memos: each memo answers what it stands for, every time: a stored datetime's
parse, kit's keyset of an order and query, a page token as the signer encodes it (values that are
equal but pack differently get their own token; another signer gets its own); bounded."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kit.resources import PageTokens, Sort
from services.leads.repositories import read_memos
from services.leads.repositories.lead_reads import LeadReads
from services.leads.repositories.leads import ORDERS


@pytest.fixture(autouse=True)
def _empty(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("_TIMES", "_KEYSETS", "_TOKENS"):
        monkeypatch.setattr(read_memos, name, {})


def test_datetimes_parse_as_fromisoformat_and_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(read_memos, "_TIMES_MAX", 50)
    rnd = random.Random(3)
    base = datetime(2026, 11, 1)
    texts = [
        str(base + timedelta(seconds=rnd.randrange(10**7), microseconds=rnd.randrange(10**6)))
        for _ in range(80)
    ]
    for _ in range(3):
        for text in texts:
            assert read_memos.parsed_datetime(text) == datetime.fromisoformat(text)
            assert len(read_memos._TIMES) <= 50


def test_keysets_are_kits_per_order_and_query() -> None:
    reads = LeadReads.__new__(LeadReads)  # _keyset reads no state of the repository
    make = super(LeadReads, reads)._keyset  # kit's
    for name, descending, query in [("score", True, "q1"), ("score", False, "q1"), ("score", True, "q2")]:
        order = Sort(ORDERS[name], descending=descending)
        kept = read_memos.keyset(make, order, query)
        again = read_memos.keyset(make, Sort(ORDERS[name], descending=descending), query)
        made = make([order], query)
        assert again is kept
        assert reads._keyset([order], query) is kept  # LeadReads asks the memo
        assert [(s.name, s.descending) for s in kept.sorts] == [(s.name, s.descending) for s in made.sorts]
        assert kept.fingerprint == made.fingerprint


def test_tokens_are_the_signers() -> None:
    one, other = PageTokens(b"a" * 32), PageTokens(b"b" * 32)
    cases: list[list[Any]] = [
        [97, "01HX"],
        [True, "01HX"],  # equal to [1, ...] but packed as a bool
        [1, "01HX"],
        [None, "01HX"],
        [datetime(2026, 11, 1, 8), "01HX"],
        [datetime(2026, 11, 1, 8, tzinfo=UTC), "01HX"],
    ]
    for signer in (one, other, one):
        for values in cases:
            for tenant, fingerprint in (("t1", "f1"), ("t2", "f1"), ("t1", "f2")):
                token = read_memos.page_token(signer, tenant, fingerprint, values)
                assert token == signer.encode(tenant, fingerprint, values)
                assert signer.decode(token, tenant, fingerprint) == values
