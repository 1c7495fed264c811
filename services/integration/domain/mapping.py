"""Inbound payloads -> domain events. Pure.

Every provider here posts the canonical layout (our own signed format; vendor
adapters translate into it before this point):

    {"id": "evt_...", "type": "payment.succeeded",
     "data": {"external_id": "FK2024...", "amount_minor": 1250000, "currency": "CNY",
              "deal_id": "...", "customer_id": "...", "contract_id": "HT-...",
              "value_date": "2026-12-01", "method": "bank_transfer",
              "occurred_at": "2026-12-01T08:00:00Z", "updated_at": "..."}}

A payload that does not fit raises MappingError: the record is kept FAILED and
can be replayed once the sender or the mapping is fixed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.type.date_pb2 import Date  # type: ignore[import-untyped]

from salesops.common.v1.types_pb2 import Money
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import events_pb2 as ev

MAPPED_TYPES: dict[int, str] = {
    c.MAPPED_EVENT_TYPE_PAYMENT_RECEIVED: "integration.PaymentReceived",
    c.MAPPED_EVENT_TYPE_INVOICE_ISSUED: "integration.InvoiceIssued",
    c.MAPPED_EVENT_TYPE_CONTRACT_SIGNED: "integration.ContractSigned",
    c.MAPPED_EVENT_TYPE_SHIPMENT_DISPATCHED: "integration.ShipmentDispatched",
}


class MappingError(ValueError):
    """The payload does not fit the mapping of its type."""


def pointer(doc: Any, path: str) -> Any:
    """RFC 6901 JSON pointer ("" is the whole document); None when absent."""
    if path == "":
        return doc
    if not path.startswith("/"):
        return None
    for raw in path[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, Mapping):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc


def _text(data: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise MappingError(f"data.{key} is required")
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise MappingError(f"data.{key} must be a string")
    return str(value)[:256]


def _time(data: Mapping[str, Any], key: str) -> Timestamp | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            at = datetime.fromtimestamp(float(value), tz=UTC)
        else:
            at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise MappingError(f"data.{key} must be an RFC 3339 time or unix seconds") from None
    if at.tzinfo is None:
        raise MappingError(f"data.{key} needs a time zone")
    ts = Timestamp()
    ts.FromDatetime(at.astimezone(UTC))
    return ts


def _date(data: Mapping[str, Any], key: str) -> Date | None:
    value = data.get(key)
    if not value:
        return None
    try:
        d = date.fromisoformat(str(value))
    except ValueError:
        raise MappingError(f"data.{key} must be a date YYYY-MM-DD") from None
    return Date(year=d.year, month=d.month, day=d.day)


def _money(data: Mapping[str, Any], key: str = "amount_minor") -> Money:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > 10**15:
        raise MappingError(f"data.{key} must be an integer amount in minor units")
    currency = _text(data, "currency", required=True).upper()
    if len(currency) != 3 or not currency.isalpha():
        raise MappingError("data.currency must be an ISO 4217 code")
    return Money(amount_minor=value, currency=currency)


def _ref(
    connector_id: str, provider: str, kind: Any, external_id: str, number: str = ""
) -> c.ExternalReference:
    return c.ExternalReference(
        connector_id=connector_id,
        provider=provider,
        object_type=kind,
        external_id=external_id,
        external_number=number,
    )


def map_event(
    mapped: int, payload: Any, *, connector_id: str, provider: str, origin: ev.DataOrigin
) -> tuple[str, Message, str]:
    """(envelope type, event, subject) for one mapped payload; MappingError when it does not fit."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(data, Mapping):
        raise MappingError("the body has no object 'data'")
    external_id = _text(data, "external_id", required=True)
    deal_id, customer_id = _text(data, "deal_id"), _text(data, "customer_id")
    contract_id = _text(data, "contract_id")
    updated = _time(data, "updated_at") or _time(data, "occurred_at")
    if updated is not None:
        origin.source_update_time.CopyFrom(updated)
    contract = (
        _ref(connector_id, provider, c.EXTERNAL_OBJECT_TYPE_CONTRACT, contract_id) if contract_id else None
    )
    event: Message
    if mapped == c.MAPPED_EVENT_TYPE_PAYMENT_RECEIVED:
        event = ev.PaymentReceived(
            payment=_ref(
                connector_id, provider, c.EXTERNAL_OBJECT_TYPE_PAYMENT, external_id, _text(data, "number")
            ),
            deal_id=deal_id,
            customer_id=customer_id,
            contract=contract,
            amount=_money(data),
            value_date=_date(data, "value_date"),
            payment_method=_text(data, "method"),
            reverses_external_id=_text(data, "reverses_external_id"),
            origin=origin,
            occur_time=_time(data, "occurred_at"),
        )
    elif mapped == c.MAPPED_EVENT_TYPE_INVOICE_ISSUED:
        event = ev.InvoiceIssued(
            invoice=_ref(
                connector_id, provider, c.EXTERNAL_OBJECT_TYPE_INVOICE, external_id, _text(data, "number")
            ),
            deal_id=deal_id,
            customer_id=customer_id,
            total_amount=_money(data),
            issue_date=_date(data, "issue_date"),
            origin=origin,
            occur_time=_time(data, "occurred_at"),
        )
    elif mapped == c.MAPPED_EVENT_TYPE_CONTRACT_SIGNED:
        event = ev.ContractSigned(
            contract=_ref(
                connector_id, provider, c.EXTERNAL_OBJECT_TYPE_CONTRACT, external_id, _text(data, "number")
            ),
            deal_id=deal_id,
            customer_id=customer_id,
            amount=_money(data),
            signed_time=_time(data, "occurred_at"),
            effective_date=_date(data, "effective_date"),
            origin=origin,
        )
    elif mapped == c.MAPPED_EVENT_TYPE_SHIPMENT_DISPATCHED:
        lines = data.get("lines") or []
        if not isinstance(lines, list):
            raise MappingError("data.lines must be a list")
        shipped = []
        for line in lines[:500]:
            if not isinstance(line, Mapping) or not isinstance(line.get("quantity"), int):
                raise MappingError("each of data.lines needs sku and an integer quantity")
            shipped.append(
                ev.ShippedLine(
                    sku=_text(line, "sku", required=True), quantity=line["quantity"], unit=_text(line, "unit")
                )
            )
        event = ev.ShipmentDispatched(
            shipment=_ref(
                connector_id, provider, c.EXTERNAL_OBJECT_TYPE_SHIPMENT, external_id, _text(data, "number")
            ),
            deal_id=deal_id,
            customer_id=customer_id,
            order=contract,
            lines=shipped,
            dispatch_time=_time(data, "occurred_at"),
            carrier=_text(data, "carrier"),
            tracking_number=_text(data, "tracking_number"),
            origin=origin,
        )
    else:
        raise MappingError("this mapping emits no event yet")
    return MAPPED_TYPES[mapped], event, deal_id or external_id
