"""Stock verdicts from what the ERP says of a SKU: availability, restock date, substitutes. Pure.

An ERP item (as `erp_http` systems answer, and as STOCK sync keeps it):
{"sku", "name", "unit", "status": "active" | "discontinued",
 "warehouses": [{"code", "name", "available"}], "incoming": [{"date", "quantity"}],
 "substitutes": [{"sku", "reason": "erp_defined" | "successor" | "same_family", "note",
                  "price_delta_minor"}], "currency"}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from google.type.date_pb2 import Date  # type: ignore[import-untyped]

from salesops.common.v1.types_pb2 import Money
from salesops.integration.v1 import stock_pb2 as st

REASONS = {
    "erp_defined": st.SUBSTITUTE_REASON_ERP_DEFINED,
    "successor": st.SUBSTITUTE_REASON_SUCCESSOR,
    "same_family": st.SUBSTITUTE_REASON_SAME_FAMILY,
}
# Best first: the successor of a discontinued model, then the ERP's table, then the family.
RANK = {
    st.SUBSTITUTE_REASON_SUCCESSOR: 0,
    st.SUBSTITUTE_REASON_ERP_DEFINED: 1,
    st.SUBSTITUTE_REASON_SAME_FAMILY: 2,
}
MAX_LINES = 100
DEFAULT_SUBSTITUTES, MAX_SUBSTITUTES = 3, 10


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def warehouses(item: Mapping[str, Any], codes: Sequence[str]) -> list[st.WarehouseStock]:
    out = []
    for w in item.get("warehouses") or []:
        if not isinstance(w, Mapping) or (codes and w.get("code") not in codes):
            continue
        out.append(
            st.WarehouseStock(
                warehouse_code=str(w.get("code", "")),
                warehouse_name=str(w.get("name", "")),
                available_quantity=max(0, _int(w.get("available"))),
            )
        )
    return out


def available(item: Mapping[str, Any], codes: Sequence[str]) -> int:
    return sum(w.available_quantity for w in warehouses(item, codes))


def restock_date(item: Mapping[str, Any], missing: int) -> Date | None:
    """The date incoming purchases cover the missing quantity (cumulatively), if they do."""
    incoming = []
    for entry in item.get("incoming") or []:
        try:
            incoming.append((date.fromisoformat(str(entry.get("date"))), _int(entry.get("quantity"))))
        except (ValueError, AttributeError):
            continue
    total = 0
    for day, qty in sorted(incoming):
        total += qty
        if total >= missing:
            return Date(year=day.year, month=day.month, day=day.day)
    return None


def assess(
    line: st.StockCheckLine,
    item: Mapping[str, Any] | None,
    substitutes: Mapping[str, Mapping[str, Any]],
    codes: Sequence[str],
    max_substitutes: int,
) -> st.StockAvailability:
    """The verdict for one requested line; `substitutes` holds the ERP's items of candidate SKUs."""
    out = st.StockAvailability(sku=line.sku, requested_quantity=line.quantity)
    if item is None:
        out.status = st.STOCK_STATUS_UNKNOWN_SKU
        return out
    out.sku_name, out.unit = str(item.get("name", "")), str(item.get("unit", ""))
    out.warehouses.extend(warehouses(item, codes))
    out.available_quantity = sum(w.available_quantity for w in out.warehouses)
    if item.get("status") == "discontinued":
        out.status = st.STOCK_STATUS_DISCONTINUED
    elif out.available_quantity >= line.quantity:
        out.status = st.STOCK_STATUS_AVAILABLE
        return out
    elif out.available_quantity > 0:
        out.status = st.STOCK_STATUS_PARTIAL
    else:
        out.status = st.STOCK_STATUS_OUT_OF_STOCK
    if out.status != st.STOCK_STATUS_DISCONTINUED:
        when = restock_date(item, line.quantity - out.available_quantity)
        if when is not None:
            out.restock_date.CopyFrom(when)
    currency = str(item.get("currency", ""))
    candidates = []
    for sub in item.get("substitutes") or []:
        if not isinstance(sub, Mapping) or not sub.get("sku"):
            continue
        found = substitutes.get(str(sub["sku"]))
        if found is None or found.get("status") == "discontinued":
            continue
        have = available(found, codes)
        if have <= 0:
            continue
        reason = REASONS.get(str(sub.get("reason", "")), st.SUBSTITUTE_REASON_ERP_DEFINED)
        candidate = st.StockSubstitute(
            sku=str(sub["sku"]),
            sku_name=str(found.get("name", "")),
            available_quantity=have,
            reason=reason,  # type: ignore[arg-type]
            note=str(sub.get("note", ""))[:200],
        )
        if "price_delta_minor" in sub and currency:
            candidate.unit_price_delta.CopyFrom(
                Money(amount_minor=_int(sub["price_delta_minor"]), currency=currency)
            )
        # Enough to cover the whole line first, then by reason.
        candidates.append((have < line.quantity, RANK.get(reason, 3), candidate))
    candidates.sort(key=lambda c: (c[0], c[1]))
    out.substitutes.extend(c[2] for c in candidates[:max_substitutes])
    return out


def substitute_skus(items: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return sorted(
        {
            str(sub["sku"])
            for item in items.values()
            for sub in item.get("substitutes") or []
            if isinstance(sub, Mapping) and sub.get("sku") and str(sub["sku"]) not in items
        }
    )
