"""Finance facts and reconciliation issues: ingest (upsert per source record), match to deals,
cross-validate, resolve. Never commit.

The rules are pure (domain/reconciliation.py). They run for a deal whenever one
of its facts arrives (here, in the ingest transaction) and whenever time alone
can change the answer (payment terms running out, a won deal's grace for its
contract): the deal's durable Temporal timer (reconciliation_workflows.py)
sleeps until `next_check` and calls `check_deal`. An issue found is raised once
per kind and deal (ReconciliationIssueRaised); one the data no longer shows is
cleared by the service; the owner explains or resolves the rest (audited in the
issue: who, when, resolution, note).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ulid import ULID

from kit.auth import Principal
from kit.errors import FailedPrecondition, InvalidArgument, PermissionDenied, SalesopsError, Violations
from kit.grpc.errors import to_status_proto
from kit.resources import UnitOfWork
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import events_pb2, reconciliation_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import pipeline_settings
from services.pipeline.convert import aware, date_proto, enum_name, enum_value, from_ts, optional_date, ts
from services.pipeline.deals import MAX_AMOUNT_MINOR
from services.pipeline.domain import reconciliation as rules
from services.pipeline.presenters import fact_message
from services.pipeline.repositories.deals import Deals
from services.pipeline.repositories.finance import FinanceFacts, ReconciliationIssues
from services.pipeline.repositories.members import MemberProfiles
from services.pipeline.store import DealRow
from services.pipeline.store_customers import FinanceFactRow, ReconciliationIssueRow

SYSTEM = "system:pipeline"
WRITE_SCOPE = "pipeline.write"
FACT_RECORDED = "pipeline.FinanceFactRecorded"
ISSUE_RAISED = "pipeline.ReconciliationIssueRaised"
ISSUE_RESOLVED = "pipeline.ReconciliationIssueResolved"
MAX_FACTS = 500
MAX_ATTRIBUTES = 16 * 1024
FACT_LIMITS = {"source_system": 64, "external_id": 128, "external_number": 128, "deal_id": 64,
               "contract_external_id": 128, "customer_id": 64}  # fmt: skip
IssueKind = reconciliation_pb2.ReconciliationIssueKind
FactKind = reconciliation_pb2.FinanceFactKind


async def policy(uow: UnitOfWork) -> rules.Policy:
    s = await pipeline_settings.current(uow)
    unit = s.unpaid_grace.unit
    per = {
        types_pb2.TIME_UNIT_MINUTES: timedelta(minutes=1),
        types_pb2.TIME_UNIT_HOURS: timedelta(hours=1),
        types_pb2.TIME_UNIT_WORKING_HOURS: timedelta(hours=1),  # no business calendar yet: wall-clock
    }.get(unit, timedelta(days=1))
    return rules.Policy(
        grace=per * max(s.unpaid_grace.value, 0),
        tolerance_bps=s.amount_tolerance_bps,
        default_term_days=s.default_payment_term_days,
        zone=s.time_zone or "UTC",
    )


def check_fact(f: reconciliation_pb2.FinanceFact, currency: str) -> None:
    """The contract's required fields and bounds; every problem of the fact at once."""
    v = Violations()
    if not f.kind or f.kind not in FactKind.values():
        v.add("kind", "one of CONTRACT_SIGNED, PAYMENT_RECEIVED, INVOICE_ISSUED, SHIPMENT_DISPATCHED")
    for name in ("source_system", "external_id"):
        if not getattr(f, name).strip():
            v.add(name, "required")
    for name, limit in FACT_LIMITS.items():
        if len(getattr(f, name)) > limit:
            v.add(name, f"at most {limit} characters")
    if f.HasField("amount"):
        if f.amount.currency != currency:
            v.add("amount.currency", f"the tenant's base currency {currency}")
        if f.kind == reconciliation_pb2.FINANCE_FACT_KIND_CONTRACT_SIGNED and f.amount.amount_minor < 0:
            v.add("amount.amount_minor", "a contract's value is not negative (amend it with a newer version)")
        if abs(f.amount.amount_minor) > MAX_AMOUNT_MINOR:
            v.add("amount.amount_minor", f"at most {MAX_AMOUNT_MINOR} in absolute value")
    elif f.kind != reconciliation_pb2.FINANCE_FACT_KIND_SHIPMENT_DISPATCHED:
        v.add("amount", "required for contracts, payments and invoices")
    if f.ByteSize() > MAX_ATTRIBUTES + 4096 or f.attributes.ByteSize() > MAX_ATTRIBUTES:
        v.add("attributes", f"at most {MAX_ATTRIBUTES} bytes")
    for name in ("occur_time", "source_update_time", "payment_due_date"):
        try:
            value = (
                optional_date(f.payment_due_date, name)
                if name == "payment_due_date"
                else from_ts(getattr(f, name), name)
            )
        except InvalidArgument as exc:
            v.add(name, str(exc))
            continue
        if name == "occur_time" and value is None:
            v.add(name, "required")
    v.raise_if_any("invalid finance fact")


async def _match(uow: UnitOfWork, f: reconciliation_pb2.FinanceFact) -> DealRow | None:
    """By deal id, else by the contract it belongs to, else by customer and amount (one deal only)."""
    deals = Deals(uow)
    if f.deal_id:
        found = await deals.find(f.deal_id)
        if found is not None:
            return found
    if f.contract_external_id:
        deal_id = await FinanceFacts(uow).contract_deal(f.contract_external_id)
        if deal_id:
            return await deals.find(deal_id)
    if f.customer_id and f.amount.amount_minor:
        candidates = await FinanceFacts(uow).deals_of_customer_amount(f.customer_id, f.amount.amount_minor)
        if len(candidates) == 1:
            return candidates[0]
    return None


async def ingest(
    uow: UnitOfWork, who: Principal, facts: list[reconciliation_pb2.FinanceFact], at: datetime
) -> list[pb.FinanceFactResult]:
    if not (who.is_admin or (who.is_service and who.has_scope(WRITE_SCOPE))):
        raise PermissionDenied(
            "finance facts come from admins or partners with pipeline.write", reason="FINANCE_WRITE"
        )
    if not 1 <= len(facts) <= MAX_FACTS:
        raise InvalidArgument.field("facts", f"1 to {MAX_FACTS} facts")
    currency = await pipeline_settings.base_currency(uow)
    repo = FinanceFacts(uow)
    results: list[pb.FinanceFactResult] = []
    touched: dict[str, list[int]] = {}  # deal id -> result indexes whose facts concern it
    for index, incoming in enumerate(facts):
        result = pb.FinanceFactResult(index=index)
        results.append(result)
        try:
            check_fact(incoming, currency)
        except SalesopsError as exc:
            result.status = pb.FACT_INGEST_STATUS_INVALID
            result.error.CopyFrom(to_status_proto(exc, "pipeline"))
            continue
        occurred = from_ts(incoming.occur_time) or at
        updated = from_ts(incoming.source_update_time) or occurred
        row = await repo.by_source(incoming.source_system, incoming.external_id)
        if row is not None and updated <= aware(row.source_updated_at):
            result.status = pb.FACT_INGEST_STATUS_DUPLICATE
            result.fact.CopyFrom(fact_message(row))
            continue
        previous_deal = row.deal_id if row is not None else ""
        if row is None:
            row = FinanceFactRow(
                fact_id=str(ULID()), source_system=incoming.source_system, external_id=incoming.external_id
            )
            result.status = pb.FACT_INGEST_STATUS_ACCEPTED
        else:
            result.status = pb.FACT_INGEST_STATUS_UPDATED
        deal = await _match(uow, incoming)
        body = reconciliation_pb2.FinanceFact()
        body.CopyFrom(incoming)
        for name in ("fact_id", "match_status", "matched_deal_id", "ingest_time"):
            body.ClearField(name)
        row.kind = enum_name(FactKind, incoming.kind)
        row.contract_external_id = incoming.contract_external_id
        row.deal_id = deal.deal_id if deal is not None else ""
        row.amount_minor, row.currency = incoming.amount.amount_minor, currency
        row.due_date = optional_date(incoming.payment_due_date, "payment_due_date")
        row.occurred_at, row.source_updated_at, row.ingested_at = occurred, updated, at
        row.body = body.SerializeToString(deterministic=True)
        uow.session.add(row)  # added once complete: matching above queries (autoflush)
        await uow.session.flush()
        result.fact.CopyFrom(fact_message(row))
        await uow.emit(
            FACT_RECORDED,
            events_pb2.FinanceFactRecorded(
                fact_id=row.fact_id,
                kind=incoming.kind,
                deal_id=row.deal_id,
                source_system=row.source_system,
                amount=Money(amount_minor=row.amount_minor, currency=currency),
                payment_due_date=incoming.payment_due_date,
            ),
            subject=row.deal_id or row.fact_id,
        )
        raised = await _unmatched(uow, row, at)
        result.raised_issue_ids.extend(raised)
        for deal_id in {previous_deal, row.deal_id} - {""}:
            touched.setdefault(deal_id, []).append(index)
    for deal_id, indexes in touched.items():
        for issue in await evaluate_deal(uow, deal_id, at):
            fact_ids = set(reconciliation_pb2.ReconciliationIssue.FromString(issue.body).fact_ids)
            for i in indexes:
                if results[i].fact.fact_id in fact_ids or not fact_ids:
                    results[i].raised_issue_ids.append(issue.issue_id)
    return results


async def _unmatched(uow: UnitOfWork, row: FinanceFactRow, at: datetime) -> list[str]:
    """An unmatched fact has its UNMATCHED_FACT issue (admins see it); a later match clears it."""
    issues = ReconciliationIssues(uow)
    key = f"UNMATCHED_FACT/{row.fact_id}"
    current = await issues.by_open_key(key)
    if row.deal_id:
        if current is not None:
            await _close(uow, current, "RESOLVED", "CLEARED_BY_DATA", "matched to a deal", SYSTEM, at)
        return []
    if current is not None:
        return []
    finding = rules.Finding(
        rules.UNMATCHED_FACT,
        0,
        row.amount_minor,
        (row.fact_id,),
        f"{row.kind.lower()} {row.external_id} matches no deal",
    )
    return [(await _raise(uow, None, finding, row.currency, key, at)).issue_id]


async def evaluate_deal(uow: UnitOfWork, deal_id: str, at: datetime) -> list[ReconciliationIssueRow]:
    """Bring the deal's open issues in line with the rules at `at`; the issues newly raised."""
    deal = await Deals(uow).find(deal_id)
    if deal is None:
        return []
    pol = await policy(uow)
    facts = [_fact(r) for r in await FinanceFacts(uow).of_deal(deal_id)]
    found = {f.kind: f for f in rules.findings(_state(deal), facts, pol, at)}
    issues = ReconciliationIssues(uow)
    raised: list[ReconciliationIssueRow] = []
    for issue in await issues.open_of(deal_id):
        if issue.kind not in found:
            await _close(uow, issue, "RESOLVED", "CLEARED_BY_DATA", "the data no longer shows it", SYSTEM, at)
            continue
        finding = found.pop(issue.kind)
        msg = reconciliation_pb2.ReconciliationIssue.FromString(issue.body)
        _amounts(msg, finding, deal.currency)
        # The deal's owner now is the one asked to explain (a reassignment moves its open issues).
        issue.owner_user_id, issue.org_path = deal.owner_user_id, deal.org_path
        msg.owner_user_id, msg.org_path = deal.owner_user_id, deal.org_path
        issue.difference_minor, issue.body = (
            finding.difference_minor,
            msg.SerializeToString(deterministic=True),
        )
    for kind, finding in found.items():
        if finding.difference_minor in await issues.closed_differences(deal_id, kind):
            continue  # people already explained this very difference
        raised.append(await _raise(uow, deal, finding, deal.currency, f"{kind}/{deal_id}", at))
    return raised


async def check_deal(uow: UnitOfWork, deal_id: str, at: datetime) -> datetime | None:
    """The timer's work: re-run the rules at `at`; when to look again (None = nothing left to wait for)."""
    await evaluate_deal(uow, deal_id, at)
    deal = await Deals(uow).find(deal_id)
    if deal is None:
        return None
    facts = [_fact(r) for r in await FinanceFacts(uow).of_deal(deal_id)]
    return rules.next_check(_state(deal), facts, await policy(uow), at)


async def resolve(
    uow: UnitOfWork, who: Principal, req: pb.ResolveReconciliationIssueRequest, at: datetime
) -> ReconciliationIssueRow:
    v = Violations()
    if req.resolution not in reconciliation_pb2.ReconciliationResolution.values() or not req.resolution:
        v.add("resolution", "required: DEAL_CORRECTED, SOURCE_CORRECTED, EXPLAINED or WRITTEN_OFF")
    elif req.resolution == reconciliation_pb2.RECONCILIATION_RESOLUTION_CLEARED_BY_DATA:
        v.add("resolution", "CLEARED_BY_DATA is set by the service only")
    if not req.note.strip():
        v.add("note", "required: the explanation")
    elif len(req.note) > 2000:
        v.add("note", "at most 2000 characters")
    v.raise_if_any("invalid resolution")
    issue = await ReconciliationIssues(uow).visible(who, req.issue_id, for_update=True)
    if issue.state != "OPEN":
        raise FailedPrecondition(f"the issue is already {issue.state.lower()}", reason="ISSUE_CLOSED")
    state = "DISMISSED" if req.dismiss else "RESOLVED"
    resolution = enum_name(reconciliation_pb2.ReconciliationResolution, req.resolution)
    await _close(uow, issue, state, resolution, req.note.strip(), who.user_id, at)
    return issue


async def _close(
    uow: UnitOfWork,
    issue: ReconciliationIssueRow,
    state: str,
    resolution: str,
    note: str,
    by: str,
    at: datetime,
) -> None:
    msg = reconciliation_pb2.ReconciliationIssue.FromString(issue.body)
    msg.state = enum_value(reconciliation_pb2.ReconciliationIssueState, state)
    msg.resolution = enum_value(reconciliation_pb2.ReconciliationResolution, resolution)
    msg.resolution_note, msg.resolved_by = note, by
    msg.resolve_time.CopyFrom(ts(at))
    issue.state, issue.resolution, issue.open_key, issue.resolved_at = state, resolution, None, at
    issue.body = msg.SerializeToString(deterministic=True)
    # Compare-and-set on the version read: two closings racing, the second is ABORTED (not a double close).
    await ReconciliationIssues(uow).update_if_etag(issue, "")
    await uow.emit(
        ISSUE_RESOLVED,
        events_pb2.ReconciliationIssueResolved(
            issue_id=issue.issue_id,
            kind=msg.kind,
            deal_id=issue.deal_id,
            state=msg.state,
            resolution=msg.resolution,
            resolved_by=by,
        ),
        subject=issue.issue_id,
    )


def _amounts(msg: reconciliation_pb2.ReconciliationIssue, f: rules.Finding, currency: str) -> None:
    msg.expected_amount.CopyFrom(Money(amount_minor=f.expected_minor, currency=currency))
    msg.actual_amount.CopyFrom(Money(amount_minor=f.actual_minor, currency=currency))
    msg.difference_amount.CopyFrom(Money(amount_minor=f.difference_minor, currency=currency))
    del msg.fact_ids[:]
    msg.fact_ids.extend(f.fact_ids)
    msg.description = f.description
    if f.due_date is not None:
        msg.due_date.CopyFrom(date_proto(f.due_date))


async def _raise(
    uow: UnitOfWork, deal: DealRow | None, f: rules.Finding, currency: str, key: str, at: datetime
) -> ReconciliationIssueRow:
    msg = reconciliation_pb2.ReconciliationIssue(
        kind=enum_value(IssueKind, f.kind),
        state=reconciliation_pb2.RECONCILIATION_ISSUE_STATE_OPEN,
        deal_id=deal.deal_id if deal else "",
        owner_user_id=deal.owner_user_id if deal else "",
        org_path=deal.org_path if deal else "",
        detect_time=ts(at),
    )
    _amounts(msg, f, currency)
    issue = ReconciliationIssueRow(
        issue_id=str(ULID()),
        kind=f.kind,
        state="OPEN",
        resolution="",
        open_key=key,
        deal_id=msg.deal_id,
        owner_user_id=msg.owner_user_id,
        org_path=msg.org_path,
        difference_minor=f.difference_minor,
        detected_at=at,
        version=1,
    )
    msg.issue_id = issue.issue_id
    issue.body = msg.SerializeToString(deterministic=True)
    uow.session.add(issue)
    await uow.session.flush()
    supervisor = ""
    if deal is not None:
        profile = await MemberProfiles(uow).find(deal.owner_user_id)
        supervisor = profile.manager_user_id if profile is not None else ""
    await uow.emit(
        ISSUE_RAISED,
        events_pb2.ReconciliationIssueRaised(
            issue_id=issue.issue_id,
            kind=msg.kind,
            deal_id=msg.deal_id,
            deal_title=deal.title if deal else "",
            owner_user_id=msg.owner_user_id,
            supervisor_user_id=supervisor,
            org_path=msg.org_path,
            expected_amount=msg.expected_amount,
            actual_amount=msg.actual_amount,
            difference_amount=msg.difference_amount,
            due_date=msg.due_date if msg.HasField("due_date") else None,
        ),
        subject=issue.issue_id,
    )
    return issue


def _fact(row: FinanceFactRow) -> rules.Fact:
    number = reconciliation_pb2.FinanceFact.FromString(row.body).external_number
    return rules.Fact(row.fact_id, row.kind, row.amount_minor, aware(row.occurred_at), row.due_date, number)


def _state(deal: DealRow) -> rules.DealState:
    won_at = aware(deal.closed_at) if deal.status == "WON" and deal.closed_at is not None else None
    return rules.DealState(deal.status, deal.amount_minor, won_at)
