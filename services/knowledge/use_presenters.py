"""What a viewer sees of a card use and a feedback duty: the one place that decides.

Whether the viewer may see the use at all is decided before, in use_access.py.
The rep and the managers above them see the use whole, the free-text reason
included (it is for coaching); other services (service tokens) get the rating
and its category only: free text from reps stays in the knowledge service, as
in its events.
"""

from __future__ import annotations

from kit.auth import Principal
from salesops.knowledge.v1.usage_pb2 import CardFeedback, CardUse, FeedbackDuty
from services.knowledge.domain import duties as rules
from services.knowledge.presenters import ts
from services.knowledge.store_uses import CardUseRow, FeedbackDutyRow
from services.knowledge.uses import aware


def _feedback(viewer: Principal, duty: FeedbackDutyRow) -> CardFeedback:
    feedback = CardFeedback(
        rating=duty.rating,  # type: ignore[arg-type]
        reason_category=duty.reason_category,  # type: ignore[arg-type]
        reason=duty.reason,
        late=duty.late,
    )
    if duty.submitted_at is not None:
        feedback.submit_time.CopyFrom(ts(aware(duty.submitted_at)))
    if duty.recorded_at is not None:
        feedback.record_time.CopyFrom(ts(aware(duty.recorded_at)))
    if viewer.is_service and not viewer.is_admin:
        feedback.ClearField("reason")
    return feedback


class UsePresenter:
    def present(self, viewer: Principal, row: tuple[CardUseRow, FeedbackDutyRow]) -> CardUse:
        use, duty = row
        out = CardUse(
            use_id=use.use_id,
            card_id=use.card_id,
            card_version=use.card_version,
            user_id=use.user_id,
            customer_id=use.customer_id,
            stage_id=use.stage_id,
            industry=use.industry,
            recommendation_id=use.recommendation_id,
            use_time=ts(aware(use.used_at)),
            feedback_due_time=ts(aware(duty.due_at)),
            feedback_state=duty.state,  # type: ignore[arg-type]
        )
        if use.deal_id:
            out.deal_id = use.deal_id
        elif use.lead_id:
            out.lead_id = use.lead_id
        if duty.state == rules.SUBMITTED:
            out.feedback.CopyFrom(_feedback(viewer, duty))
        out.audit.create_time.CopyFrom(ts(aware(use.recorded_at)))
        out.audit.created_by = use.user_id
        return out


class DutyPresenter:
    def present(self, viewer: Principal, duty: FeedbackDutyRow) -> FeedbackDuty:
        out = FeedbackDuty(
            use_id=duty.use_id,
            card_id=duty.card_id,
            card_version=duty.card_version,
            card_title=duty.card_title,
            user_id=duty.user_id,
            use_time=ts(aware(duty.used_at)),
            due_time=ts(aware(duty.due_at)),
            state=duty.state,  # type: ignore[arg-type]
            reminders_sent=duty.reminders_sent,
            org_path=duty.org_path,
        )
        if duty.deal_id:
            out.deal_id = duty.deal_id
        elif duty.lead_id:
            out.lead_id = duty.lead_id
        return out


USES = UsePresenter()
DUTIES = DutyPresenter()
