"""Customer dedupe keys and conversation keyword tags: pure functions, no I/O.

Pipeline's own small normaliser (services never import each other): it follows
what leads does at intake (legal suffixes, case, spaces and punctuation off the
company name; E.164 phones; lower-case e-mails) closely enough that a lead's
company converts into the account it already matches.
"""

from __future__ import annotations

import re
import unicodedata

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Legal-form suffixes that say nothing about which company it is (longest first where they overlap).
_COMPANY_SUFFIXES = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "集团",
    "公司",
    "co., ltd.",
    "co.,ltd.",
    "co. ltd.",
    "co ltd",
    "company limited",
    "limited",
    "ltd.",
    "ltd",
    "inc.",
    "inc",
    "corporation",
    "corp.",
    "corp",
    "llc",
    "gmbh",
    "group",
    "co.",
    "co",
)
_PHONE_PUNCT = re.compile(r"[\s\-().]")
CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def normalize_company(name: str) -> str:
    """NFKC, lower case, legal suffixes, punctuation and spaces removed ("" when nothing is left)."""
    text = unicodedata.normalize("NFKC", name).lower().strip()
    changed = True
    while changed and text:
        changed = False
        for suffix in _COMPANY_SUFFIXES:
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)].rstrip(" ,.")
                changed = True
    return "".join(ch for ch in text if ch.isalnum())


def normalize_phone(raw: str) -> str | None:
    """E.164 form ("" for blank, None when it is no phone number). Without a country code: China."""
    text = _PHONE_PUNCT.sub("", unicodedata.normalize("NFKC", raw).strip())
    if not text:
        return ""
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):
        digits = text[1:]
        if not digits.isdigit() or not 8 <= len(digits) <= 15 or digits[0] == "0":
            return None
        return "+" + digits
    if not text.isdigit():
        return None
    if CN_MOBILE.match(text):
        return "+86" + text
    if text.startswith("0") and 10 <= len(text) <= 12:  # a Chinese landline with its area code
        return "+86" + text[1:]
    return None


def normalize_email(raw: str) -> str | None:
    text = unicodedata.normalize("NFKC", raw).strip().lower()
    if not text:
        return ""
    return text if _EMAIL.match(text) and len(text) <= 254 else None


def contact_keys(phone: str, email: str) -> list[str]:
    """The dedupe keys of one contact's normalised phone and e-mail."""
    keys = []
    if phone:
        keys.append("phone:" + phone)
    if email:
        keys.append("email:" + email)
    return keys


# Conversation keyword tags: which words raise which tag (zh and en, lower-cased substring match).
TAG_KEYWORDS: dict[str, tuple[str, ...]] = {
    "price_sensitive": (
        "price",
        "discount",
        "cheaper",
        "budget tight",
        "expensive",
        "价格",
        "折扣",
        "便宜",
        "贵",
        "预算紧",
    ),
    "long_decision_cycle": (
        "decision cycle",
        "committee",
        "next quarter",
        "next year",
        "tender",
        "决策周期",
        "招标",
        "委员会",
        "明年",
        "下季度",
    ),
    "comparing_competitors": (
        "competitor",
        "compare",
        "comparing",
        "alternative",
        "竞品",
        "对比",
        "比较",
        "竞争对手",
    ),
}


def keyword_tags(text: str) -> list[str]:
    """Tags whose keywords occur in `text`, in TAG_KEYWORDS order."""
    low = unicodedata.normalize("NFKC", text).lower()
    return [tag for tag, words in TAG_KEYWORDS.items() if any(w in low for w in words)]
