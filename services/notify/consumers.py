"""Other services' events -> notifications, applied once per event inside the consumer's transaction.

leads.SlaReminderDue -> the owner (SLA reminder); leads.SlaBreached -> the owner
and, when the policy escalates, the supervisor (critical); leads.LeadNeedsAttention
-> the supervisor; pipeline.ApprovalStepWaiting -> the approvers; pipeline.ApprovalStepIdle
-> the approvers (or the escalation targets) also by SMS and WeCom; pipeline.DealFrozen
-> owner and supervisor (DealUnfrozen resolves it); pipeline.DealDwellExceeded -> owner and
supervisor; pipeline.ProcessAnomalyDetected -> the team's supervisor;
pipeline.ReconciliationIssueRaised -> the deal owner (ReconciliationIssueResolved resolves it);
knowledge.FeedbackDue -> the user, and once overdue also the user's supervisor;
knowledge.ContributionReviewed -> the contributor; knowledge.CardRetired / CardReturnedToReview
-> the card's author (when someone else, e.g. the monthly iteration, moved it). Dedupe keys
carry the subject and deadline, so a re-emitted event (or a producer retry with a new event
id) does not notify twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kit.events import EventEnvelope, unpack_payload
from kit.events.entries import Delivery
from kit.events.streams import producer_streams
from kit.runtime import ConsumerSpec, Runtime
from salesops.common.v1 import types_pb2
from salesops.integration.v1 import events_pb2 as integration_events
from salesops.knowledge.v1 import events_pb2 as knowledge_events
from salesops.leads.v1 import events_pb2 as leads_events
from salesops.notify.v1 import notification_pb2, notify_service_pb2
from salesops.pipeline.v1 import approval_pb2
from salesops.pipeline.v1 import events_pb2 as pipeline_events
from services.notify import (
    cancelling,
    insight_notices,
    knowledge_notices,
    live,
    read_memo,
    sending,
    sync_lag_notices,
)
from services.notify.notification_builders import feedback_overdue as _feedback_overdue
from services.notify.notification_builders import notification as _notification
from services.notify.notification_builders import process_anomaly as _process_anomaly
from services.notify.notification_builders import reconciliation as _reconciliation
from services.notify.notification_builders import ts_key as _ts_key
from services.notify.notification_builders import webhook_failed as _webhook_failed
from services.notify.presenters import INBOX_ITEM
from services.notify.repositories import on_session

N = notification_pb2
TYPES = (
    "leads.SlaReminderDue",
    "leads.SlaBreached",
    "leads.LeadNeedsAttention",
    "pipeline.ApprovalStepWaiting",
    "pipeline.DealFrozen",
    "pipeline.ApprovalStepIdle",
    "pipeline.DealDwellExceeded",
    "knowledge.FeedbackDue",
    "leads.LeadAssigned",
    "leads.FirstResponseRecorded",
    "pipeline.DealUnfrozen",
    "pipeline.ApprovalReturned",
    "pipeline.ApprovalCompleted",
    "pipeline.ProcessAnomalyDetected",
    "pipeline.ReconciliationIssueRaised",
    "pipeline.ReconciliationIssueResolved",
    "integration.SyncLagDetected",
    "integration.SyncRecovered",
    "integration.WebhookDeliveryFailed",
    "integration.KeywordDigestGenerated",
    *knowledge_notices.TYPES,
)


@dataclass(frozen=True)
class Resolve:
    """Open notifications about a subject (of some categories) that an event makes moot."""

    service: str
    kind: str
    id: str
    categories: tuple[str, ...]


def resolutions(envelope: EventEnvelope) -> list[Resolve]:
    kind = envelope.type
    if kind == "leads.FirstResponseRecorded":
        e = unpack_payload(envelope, leads_events.FirstResponseRecorded)
        return [Resolve("leads", "lead", e.lead.lead_id, ("sla_reminder", "sla_breach"))]
    if kind == "pipeline.DealUnfrozen":
        d = unpack_payload(envelope, pipeline_events.DealUnfrozen)
        return [Resolve("pipeline", "deal", d.deal.deal_id, ("frozen_deal",))]
    if kind == "pipeline.ApprovalReturned":
        returned = unpack_payload(envelope, pipeline_events.ApprovalReturned)
        return [Resolve("pipeline", "approval", returned.approval.approval_id, ("approval_waiting",))]
    if kind == "pipeline.ApprovalCompleted":
        completed = unpack_payload(envelope, pipeline_events.ApprovalCompleted)
        return [Resolve("pipeline", "approval", completed.approval.approval_id, ("approval_waiting",))]
    if kind == "pipeline.ReconciliationIssueResolved":
        settled = unpack_payload(envelope, pipeline_events.ReconciliationIssueResolved)
        return [Resolve("pipeline", "reconciliation_issue", settled.issue_id, ("anomaly",))]
    if kind == "integration.SyncRecovered":
        recovered = unpack_payload(envelope, integration_events.SyncRecovered)
        return [Resolve("integration", "sync_lag_alert", recovered.alert_id, ("sync_lag",))]
    return []


def translate(envelope: EventEnvelope) -> list[notification_pb2.Notification]:
    """The notifications an event asks for (pure, apart from proto unpacking)."""
    kind = envelope.type
    if kind == "leads.SlaReminderDue":
        e = unpack_payload(envelope, leads_events.SlaReminderDue)
        ref = types_pb2.ResourceRef(service="leads", kind="lead", id=e.lead.lead_id)
        owner = e.owner_user_id or e.lead.owner_user_id
        vars_ = {"lead_name": e.lead.display_name or e.lead.lead_id, "lead_id": e.lead.lead_id}
        return [
            _notification(
                N.NOTIFICATION_CATEGORY_SLA_REMINDER,
                [owner],
                vars_,
                ref,
                f"sla_reminder:{e.lead.lead_id}:{_ts_key(e.due_time)}",
                e.due_time,
            )
        ]
    if kind == "leads.SlaBreached":
        e2 = unpack_payload(envelope, leads_events.SlaBreached)
        ref = types_pb2.ResourceRef(service="leads", kind="lead", id=e2.lead.lead_id)
        users = [e2.owner_user_id] + ([e2.supervisor_user_id] if e2.escalate else [])
        vars_ = {
            "lead_name": e2.lead.display_name or e2.lead.lead_id,
            "lead_id": e2.lead.lead_id,
            "owner": e2.owner_user_id,
        }
        return [
            _notification(
                N.NOTIFICATION_CATEGORY_SLA_BREACH,
                users,
                vars_,
                ref,
                f"sla_breach:{e2.lead.lead_id}:{_ts_key(e2.due_time)}",
                e2.due_time,
            )
        ]
    if kind == "leads.LeadNeedsAttention":
        e3 = unpack_payload(envelope, leads_events.LeadNeedsAttention)
        ref = types_pb2.ResourceRef(service="leads", kind="lead", id=e3.lead.lead_id)
        vars_ = {"title": f"{e3.lead.display_name or e3.lead.lead_id}: {e3.idle_days} days without follow-up"}
        return [
            _notification(
                N.NOTIFICATION_CATEGORY_ANOMALY,
                [e3.supervisor_user_id or e3.lead.supervisor_user_id],
                vars_,
                ref,
                f"lead_attention:{e3.lead.lead_id}:{e3.idle_days}",
            )
        ]
    if kind == "pipeline.ApprovalStepWaiting":
        e4 = unpack_payload(envelope, pipeline_events.ApprovalStepWaiting)
        ref = types_pb2.ResourceRef(service="pipeline", kind="approval", id=e4.approval.approval_id)
        vars_ = {
            "deal_name": e4.approval.title or e4.approval.deal_id,
            "deal_id": e4.approval.deal_id,
            "step": e4.step_display_name or e4.step_key,
        }
        return [
            _notification(
                N.NOTIFICATION_CATEGORY_APPROVAL_WAITING,
                list(e4.approver_user_ids),
                vars_,
                ref,
                f"approval:{e4.approval.approval_id}:{e4.step_key}:{envelope.id if e4.reassigned else ''}",
                e4.due_time,
            )
        ]
    if kind == "pipeline.DealFrozen":
        e5 = unpack_payload(envelope, pipeline_events.DealFrozen)
        ref = types_pb2.ResourceRef(service="pipeline", kind="deal", id=e5.deal.deal_id)
        vars_ = {"deal_name": e5.deal.title or e5.deal.deal_id, "deal_id": e5.deal.deal_id}
        return [
            _notification(
                N.NOTIFICATION_CATEGORY_FROZEN_DEAL,
                [e5.deal.owner_user_id, e5.deal.supervisor_user_id],
                vars_,
                ref,
                f"frozen:{e5.deal.deal_id}:{_ts_key(e5.frozen_time)}",
            )
        ]
    if kind == "pipeline.ApprovalStepIdle":
        e6 = unpack_payload(envelope, pipeline_events.ApprovalStepIdle)
        ref = types_pb2.ResourceRef(service="pipeline", kind="approval", id=e6.approval.approval_id)
        escalate = e6.action == pipeline_events.IDLE_ACTION_ESCALATE
        users = list(e6.escalate_to_user_ids) if escalate else list(e6.approver_user_ids)
        vars_ = {
            "deal_name": e6.approval.title or e6.approval.deal_id,
            "deal_id": e6.approval.deal_id,
            "step": e6.step_display_name or e6.step_key,
        }
        n = _notification(
            N.NOTIFICATION_CATEGORY_APPROVAL_WAITING,
            users,
            vars_,
            ref,
            f"approval_idle:{e6.approval.approval_id}:{e6.step_key}:{e6.reminder_count}:{int(escalate)}",
        )
        # An idle approval goes beyond the inbox: SMS and the team's WeCom bot, as the domain asks.
        n.channels[:] = [N.CHANNEL_SMS, N.CHANNEL_WECOM_BOT]
        n.priority = N.NOTIFICATION_PRIORITY_HIGH
        return [n]
    if kind == "pipeline.DealDwellExceeded":
        e7 = unpack_payload(envelope, pipeline_events.DealDwellExceeded)
        ref = types_pb2.ResourceRef(service="pipeline", kind="deal", id=e7.deal.deal_id)
        limit = e7.dwell_deadline_time.ToDatetime() - e7.stage_enter_time.ToDatetime()
        dwell_vars: dict[str, object] = {
            "deal_name": e7.deal.title or e7.deal.deal_id,
            "deal_id": e7.deal.deal_id,
            "stage": e7.stage_id,
            # Whole days in the stage when the limit was reached (a limit in hours rounds up).
            "days": max(1, -(-int(limit.total_seconds()) // 86400)),
        }
        users = [e7.deal.owner_user_id, e7.deal.supervisor_user_id]
        return [
            _notification(
                N.NOTIFICATION_CATEGORY_DWELL_ALERT,
                users,
                dwell_vars,
                ref,
                f"dwell:{e7.deal.deal_id}:{e7.stage_id}:{_ts_key(e7.stage_enter_time)}",
            )
        ]
    if kind == "knowledge.FeedbackDue":
        e8 = unpack_payload(envelope, knowledge_events.FeedbackDue)
        which = e8.WhichOneof("subject")
        ref = (
            types_pb2.ResourceRef(service="pipeline", kind="deal", id=e8.deal_id)
            if which == "deal_id"
            else types_pb2.ResourceRef(service="leads", kind="lead", id=e8.lead_id)
            if which == "lead_id"
            else types_pb2.ResourceRef(service="knowledge", kind="card", id=e8.card_id)
        )
        vars_ = {"card_title": e8.card_title or e8.card_id}
        out = [
            _notification(
                N.NOTIFICATION_CATEGORY_FEEDBACK_DUE,
                [e8.user_id],
                vars_,
                ref,
                f"feedback:{e8.use_id}:{e8.reminder_number}",
                e8.due_time,
            )
        ]
        if e8.overdue:
            out.append(_feedback_overdue(e8, ref))
        return out
    if kind == "leads.LeadAssigned":
        e9 = unpack_payload(envelope, leads_events.LeadAssigned)
        owner = e9.lead.owner_user_id
        if not owner or owner == e9.actor_user_id:
            return []  # claiming a lead yourself needs no notice
        ref = types_pb2.ResourceRef(service="leads", kind="lead", id=e9.lead.lead_id)
        vars_ = {"lead_name": e9.lead.display_name or e9.lead.lead_id, "lead_id": e9.lead.lead_id}
        return [
            _notification(
                N.NOTIFICATION_CATEGORY_LEAD_ASSIGNED,
                [owner],
                vars_,
                ref,
                f"assigned:{e9.lead.lead_id}:{owner}:{e9.decision_id or envelope.id}",
                e9.first_response_due_time,
            )
        ]
    if kind == "pipeline.ApprovalCompleted":
        e10 = unpack_payload(envelope, pipeline_events.ApprovalCompleted)
        ref = types_pb2.ResourceRef(service="pipeline", kind="approval", id=e10.approval.approval_id)
        decision = approval_pb2.ApprovalState.Name(e10.outcome).removeprefix("APPROVAL_STATE_").lower()
        vars_ = {
            "deal_name": e10.approval.title or e10.approval.deal_id,
            "deal_id": e10.approval.deal_id,
            "decision": decision,
        }
        return [
            _notification(
                N.NOTIFICATION_CATEGORY_APPROVAL_DECIDED,
                [e10.approval.requester_user_id],
                vars_,
                ref,
                f"approval_decided:{e10.approval.approval_id}",
            )
        ]
    if kind == "pipeline.ProcessAnomalyDetected":
        return [_process_anomaly(unpack_payload(envelope, pipeline_events.ProcessAnomalyDetected))]
    if kind == "pipeline.ReconciliationIssueRaised":
        return [_reconciliation(unpack_payload(envelope, pipeline_events.ReconciliationIssueRaised))]
    if kind == "integration.SyncLagDetected":
        return [sync_lag_notices.sync_lag(unpack_payload(envelope, integration_events.SyncLagDetected))]
    if kind == "integration.WebhookDeliveryFailed":
        return [_webhook_failed(unpack_payload(envelope, integration_events.WebhookDeliveryFailed))]
    if kind == "integration.KeywordDigestGenerated":
        digest = unpack_payload(envelope, integration_events.KeywordDigestGenerated)
        return [insight_notices.keyword_digest(digest)]
    if kind in knowledge_notices.TYPES:
        return [
            _notification(
                N.NOTIFICATION_CATEGORY_SYSTEM,
                [x.user_id],
                {"title": x.title, "message": x.message},
                x.subject,
                x.dedupe,
            )
            for x in knowledge_notices.notices(envelope)
        ]
    return []


class EventNotifier:
    """The StreamConsumer handler: sends in the consumer's transaction, publishes after it commits.

    What to publish is kept per event id: the consumer applies a read's entries in one transaction
    (group_commit), and when that fails applies each again alone, so an event may be handled twice;
    its last run's outcomes replace the earlier ones, and only acknowledged events are published."""

    def __init__(self, sender: sending.Sender) -> None:
        self.sender = sender
        self.pending: dict[str, list[tuple[str, sending.SendOutcome]]] = {}
        self.resolved: dict[str, list[tuple[str, Any]]] = {}

    async def __call__(self, envelope: EventEnvelope, session: AsyncSession) -> None:
        # The consumer's transaction writes no settings: its events read the tenant's defaults once.
        session.info.setdefault(read_memo.READ_MEMO, {})
        pending = self.pending[envelope.id] = []
        resolved = self.resolved[envelope.id] = []
        for r in resolutions(envelope):
            rows = await cancelling.matching(
                on_session(session),
                dedupe_key="",
                subject_service=r.service,
                subject_kind=r.kind,
                subject_id=r.id,
                categories=list(r.categories),
            )
            items = await cancelling.cancel(on_session(session), rows, f"resolved by {envelope.type}")
            resolved.extend((envelope.tenant, i) for i in items)
        for n in translate(envelope):
            if not n.recipients:
                continue
            source = N.NotificationSource(
                service=envelope.source, event_id=envelope.id, event_type=envelope.type
            )
            outcome = await self.sender.send(
                envelope.tenant, n, source=source, session=session, is_admin=False
            )
            pending.append((envelope.tenant, outcome))

    async def before_ack(self, deliveries: Sequence[Delivery] | None = None) -> None:
        """Publish what the read's transactions committed (the runtime calls it before acknowledging):
        the acknowledged deliveries' events (all when not given); a failed event's are dropped."""
        acked = None if deliveries is None else {d.event_id for d in deliveries}
        pending_by, self.pending = self.pending, {}
        resolved_by, self.resolved = self.resolved, {}
        watching: dict[str, set[str]] = {}  # per tenant, asked once for the read (a burst: 100 sends)
        unreachable: set[str] = set()  # tenants Redis could not be asked about: not asked again
        for event_id, outcomes in pending_by.items():
            if acked is None or event_id in acked:
                for tenant, outcome in outcomes:
                    if outcome.deduplicated or not outcome.inbox_items or tenant in unreachable:
                        continue
                    if tenant not in watching:
                        try:
                            watching[tenant] = await live.online_users(self.sender.redis, tenant)
                        except Exception:  # committed; streams catch up on resume (announce logs it)
                            unreachable.add(tenant)  # once, not a Redis timeout per send of the burst
                            await self.sender.announce(tenant, outcome)
                            continue
                    await self.sender.announce(tenant, outcome, watching[tenant])
        resolved = [
            r for event_id, rs in resolved_by.items() if acked is None or event_id in acked for r in rs
        ]
        if resolved:
            events = [
                (
                    tenant,
                    item.user_id,
                    notify_service_pb2.StreamInboxResponse(
                        cursor=item.id, item_updated=INBOX_ITEM.for_owner(item)
                    ),
                )
                for tenant, item in resolved
            ]
            with contextlib.suppress(Exception):  # committed; streams catch up on reconnect
                await live.publish(self.sender.redis, events)


def _notifier(rt: Runtime) -> EventNotifier:
    return EventNotifier(sending.Sender(rt.db, rt.redis))


# One consumer group over every other producing service's stream, derived from the stubs
# (kit.events.streams): a new service with events is read without a list to update here.
CONSUMER = ConsumerSpec(
    group="notify",
    streams=producer_streams(exclude=("notify",)),
    handler=_notifier,
    types=TYPES,
    role="api",
    # A burst (a thousand SLA reminders due in one second) is a transaction per event without it.
    # A consumer that keeps up still read such a burst one or two entries at a time (600 reminders at
    # 200/s: 287-494 transactions); coalescing reads 50 ms apart makes them ~50 (CPU per event 3.1-3.7
    # -> 1.9-2.2 ms). An event following another within 50 ms waits up to that long.
    options={"group_commit": True, "coalesce": 0.05},
)
