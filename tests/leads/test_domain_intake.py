"""Normalisation and dedupe rules, table-driven."""

from __future__ import annotations

import pytest

from kit.errors import InvalidArgument
from services.leads.domain import dedupe
from services.leads.domain.normalize import mask_phone, normalize_company, normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("13812345678", "CN", "+8613812345678"),
        ("138 1234 5678", "CN", "+8613812345678"),
        ("+86 138-1234-5678", "CN", "+8613812345678"),
        ("0086 13812345678", "CN", "+8613812345678"),
        ("021 6123 4567", "CN", "+862161234567"),
        ("+1 650 253 0000", "CN", "+16502530000"),
        ("650 253 0000", "US", "+16502530000"),
        ("", "CN", ""),
    ],
)
def test_phones_are_e164(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["12345", "not a phone", "+86 138"])
def test_bad_phones_are_refused_with_the_field(raw: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        normalize_phone(raw)
    assert err.value.violations[0].field == "lead.contact.phone"


@pytest.mark.parametrize(
    ("raw", "expected"), [(" Zhang.Wei@ACME.com ", "zhang.wei@acme.com"), ("", ""), ("a@b.cn", "a@b.cn")]
)
def test_emails_are_lower_cased(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


def test_bad_email_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        normalize_email("zhang at acme")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ACME Trading Co., Ltd.", "acmetrading"),
        ("Acme Trading Ltd", "acmetrading"),
        ("上海阿克米贸易有限公司", "上海阿克米贸易"),
        ("上海阿克米贸易股份有限公司", "上海阿克米贸易"),
        ("\uff21\uff23\uff2d\uff25 Inc.", "acme"),  # full-width letters
    ],
)
def test_company_names_normalised(name: str, expected: str) -> None:
    assert normalize_company(name) == expected


def test_mask_phone() -> None:
    assert mask_phone("+8613812345678") == "+86138****5678"


OPEN = dedupe.ExistingLead("L1", "+8613800000001", "a@x.cn", "acme", closed=False)
CLOSED = dedupe.ExistingLead("L2", "+8613800000002", "b@x.cn", "beta", closed=True)


@pytest.mark.parametrize(
    ("phone", "email", "existing", "policy", "action", "into", "kinds"),
    [
        ("+8613800000001", "", [OPEN], "MERGE", "MERGE", "L1", ("PHONE",)),
        ("", "a@x.cn", [OPEN], "MERGE", "MERGE", "L1", ("EMAIL",)),
        ("+8613800000001", "a@x.cn", [OPEN], "MERGE", "MERGE", "L1", ("PHONE", "EMAIL")),
        ("+8613800000001", "", [OPEN], "FLAG", "FLAG", "", ()),
        ("+8613800000002", "", [CLOSED], "MERGE", "FLAG", "", ()),  # closed leads are flagged, never merged
        ("+8613800000009", "z@x.cn", [OPEN, CLOSED], "MERGE", "CREATE", "", ()),
    ],
)
def test_exact_match_decisions(
    phone: str,
    email: str,
    existing: list[dedupe.ExistingLead],
    policy: str,
    action: str,
    into: str,
    kinds: tuple[str, ...],
) -> None:
    d = dedupe.decide(phone, email, existing, [], policy)
    assert (d.action, d.merge_into, d.match_kinds) == (action, into, kinds)
    if action == "FLAG":
        assert d.candidates and d.candidates[0].score == 1.0


def test_similar_company_is_flagged_with_a_score() -> None:
    names = [("L1", "acmetrading", "ACME"), ("L2", "zenithmotors", "Zenith")]
    found = dedupe.similar_companies("acmetradng", names, 0.85)
    assert [m.lead_id for m in found] == ["L1"]
    assert 0.85 <= found[0].score < 1.0
    d = dedupe.decide("+8613800000009", "", [], found, "MERGE")
    assert d.action == "FLAG" and d.candidates[0].kind == "COMPANY_NAME"
    assert dedupe.similar_companies("acmetrading", names, 0) == []  # threshold 0 = off
