"""Cross-validation of one deal with its finance / ERP facts: pure rules, no I/O.

`findings` answers which issues should be open for a deal at an instant;
`next_check` answers when the answer can next change by time alone (a payment
term running out, a won deal's grace for its contract), which is what the
deal's durable Temporal timer sleeps until. Facts arriving and deals changing
re-run both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

CONTRACT, PAYMENT, INVOICE, SHIPMENT = (
    "CONTRACT_SIGNED",
    "PAYMENT_RECEIVED",
    "INVOICE_ISSUED",
    "SHIPMENT_DISPATCHED",
)
SIGNED_NOT_PAID = "SIGNED_NOT_PAID"
PAID_AMOUNT_MISMATCH = "PAID_AMOUNT_MISMATCH"
CONTRACT_AMOUNT_MISMATCH = "CONTRACT_AMOUNT_MISMATCH"
WON_WITHOUT_CONTRACT = "WON_WITHOUT_CONTRACT"
FACT_ON_OPEN_DEAL = "FACT_ON_OPEN_DEAL"
UNMATCHED_FACT = "UNMATCHED_FACT"


@dataclass(frozen=True)
class Fact:
    fact_id: str
    kind: str
    amount_minor: int
    occurred_at: datetime
    due_date: date | None = None  # contracts: the payment due date they state
    number: str = ""


@dataclass(frozen=True)
class DealState:
    status: str  # OPEN, WON, LOST
    amount_minor: int
    won_at: datetime | None = None


@dataclass(frozen=True)
class Policy:
    grace: timedelta = timedelta(days=7)  # after the payment due date / after winning
    tolerance_bps: int = 0
    default_term_days: int = 30
    zone: str = "UTC"


@dataclass(frozen=True)
class Finding:
    kind: str
    expected_minor: int
    actual_minor: int
    fact_ids: tuple[str, ...] = ()
    description: str = ""
    due_date: date | None = None

    @property
    def difference_minor(self) -> int:
        return self.actual_minor - self.expected_minor


@dataclass
class Totals:
    contracted: int = 0
    invoiced: int = 0
    paid: int = 0
    shipped: int = 0
    due: date | None = None
    contracts: list[Fact] = field(default_factory=list)
    payments: list[Fact] = field(default_factory=list)


def totals(facts: list[Fact], policy: Policy) -> Totals:
    t = Totals()
    for f in facts:
        if f.kind == CONTRACT:
            t.contracted += f.amount_minor
            t.contracts.append(f)
            due = f.due_date or (f.occurred_at.date() + timedelta(days=policy.default_term_days))
            t.due = max(t.due, due) if t.due else due
        elif f.kind == PAYMENT:
            t.paid += f.amount_minor
            t.payments.append(f)
        elif f.kind == INVOICE:
            t.invoiced += f.amount_minor
        elif f.kind == SHIPMENT:
            t.shipped += 1
    return t


def differs(actual: int, expected: int, tolerance_bps: int) -> bool:
    """Beyond the tolerated relative difference (basis points of the expected amount)."""
    return abs(actual - expected) * 10_000 > tolerance_bps * abs(expected)


def terms_end(due: date, policy: Policy) -> datetime:
    """The instant past terms: the end of the due date in the tenant's zone, plus the grace."""
    local = datetime.combine(due + timedelta(days=1), time(0), tzinfo=ZoneInfo(policy.zone))
    return local.astimezone(UTC) + policy.grace


def findings(deal: DealState, facts: list[Fact], policy: Policy, at: datetime) -> list[Finding]:
    """The issues that should be open for this deal at `at` (each kind at most once)."""
    t = totals(facts, policy)
    out: list[Finding] = []
    past_terms = t.due is not None and at >= terms_end(t.due, policy)
    contract_ids = tuple(f.fact_id for f in t.contracts)
    unpaid = (
        bool(t.contracts) and t.paid < t.contracted and differs(t.paid, t.contracted, policy.tolerance_bps)
    )
    if past_terms and unpaid:
        numbers = ", ".join(f.number or f.fact_id for f in t.contracts)
        out.append(
            Finding(
                SIGNED_NOT_PAID,
                t.contracted,
                t.paid,
                contract_ids + tuple(f.fact_id for f in t.payments),
                f"contract {numbers} due {t.due.isoformat() if t.due else ''}: {t.paid} of {t.contracted} paid",
                t.due,
            )
        )
    if deal.status == "WON":
        if t.payments and differs(t.paid, deal.amount_minor, policy.tolerance_bps):
            overpaid = t.paid > deal.amount_minor
            settled = past_terms and not unpaid  # the contract counts as paid, yet the deal says otherwise
            if overpaid or settled:
                out.append(
                    Finding(
                        PAID_AMOUNT_MISMATCH,
                        deal.amount_minor,
                        t.paid,
                        tuple(f.fact_id for f in t.payments),
                        f"paid {t.paid}, the deal was won at {deal.amount_minor}",
                    )
                )
        if t.contracts and differs(t.contracted, deal.amount_minor, policy.tolerance_bps):
            out.append(
                Finding(
                    CONTRACT_AMOUNT_MISMATCH,
                    deal.amount_minor,
                    t.contracted,
                    contract_ids,
                    f"contracted {t.contracted}, the deal was won at {deal.amount_minor}",
                )
            )
        if not t.contracts and deal.won_at is not None and at >= deal.won_at + policy.grace:
            out.append(
                Finding(
                    WON_WITHOUT_CONTRACT,
                    deal.amount_minor,
                    0,
                    (),
                    f"won on {deal.won_at.date().isoformat()}, no signed contract since",
                )
            )
    else:
        on_deal = [f for f in facts if f.kind in (CONTRACT, PAYMENT, SHIPMENT)]
        if on_deal:
            kinds = ", ".join(sorted({f.kind.lower() for f in on_deal}))
            out.append(
                Finding(
                    FACT_ON_OPEN_DEAL,
                    0,
                    t.contracted or t.paid,
                    tuple(f.fact_id for f in on_deal),
                    f"{kinds} recorded while the deal is {deal.status.lower()}",
                )
            )
    return out


def next_check(deal: DealState, facts: list[Fact], policy: Policy, at: datetime) -> datetime | None:
    """The next instant after `at` at which `findings` can change by time alone; None = never."""
    t = totals(facts, policy)
    candidates: list[datetime] = []
    if t.due is not None:
        candidates.append(terms_end(t.due, policy))
    if deal.status == "WON" and not t.contracts and deal.won_at is not None:
        candidates.append(deal.won_at + policy.grace)
    future = [c for c in candidates if c > at]
    return min(future) if future else None
