"""The terms of an approval (the workflow's state and its input), as plain dataclasses Temporal serialises.

Rules over them live in `approvals.py`; they are apart so each file stays readable.
"""

# Deliberately no `from __future__ import annotations`: Temporal's converter resolves these types with
# typing.get_type_hints on every decode (uncached), and string annotations are evaluated each time;
# evaluated ones halve the cost of decoding a Run (every record activity, every workflow start).
from dataclasses import dataclass, field

# Approval states (the contract's ApprovalState names without the prefix).
IN_PROGRESS, RETURNED, APPROVED, REJECTED, CANCELLED = (
    "IN_PROGRESS",
    "RETURNED",
    "APPROVED",
    "REJECTED",
    "CANCELLED",
)
FINAL = (APPROVED, REJECTED, CANCELLED)
# Step states.
PENDING, ACTIVE, SKIPPED = "PENDING", "ACTIVE", "SKIPPED"
PASSED = (APPROVED, SKIPPED)
# Refusal codes (mapped to gRPC codes by the use cases).
NOT_ASSIGNEE, WRONG_STATE, STALE, INVALID, NOT_ALLOWED = (
    "NOT_ASSIGNEE",
    "WRONG_STATE",
    "STALE",
    "INVALID",
    "NOT_ALLOWED",
)
SYSTEM = "system:pipeline"
# Fields a resubmission may change, as concern_fields names them.
FACT_FIELDS = ("amount", "discount_bps", "product_lines", "summary", "attachments")


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Limit:
    value: int
    unit: str  # MINUTES / HOURS / CALENDAR_DAYS / WORKING_HOURS / WORKING_DAYS


@dataclass
class Condition:
    """Set parts are ANDed; an empty condition holds."""

    min_amount_minor: int | None = None
    min_discount_bps: int = 0
    product_lines: list[str] = field(default_factory=list)


@dataclass
class Facts:
    """What the conditions test and a resubmission may change."""

    amount_minor: int = 0
    currency: str = ""
    discount_bps: int = 0
    product_lines: list[str] = field(default_factory=list)
    summary: str = ""
    attachments: list[str] = field(default_factory=list)  # serialized refs, compared as text
    form: dict[str, str] = field(default_factory=dict)  # key -> the value as JSON text


@dataclass
class StepDef:
    key: str
    display_name: str
    mode: str = "APPROVAL"  # or TASK
    selector: str = "USERS"  # USERS / APPROVER_ROLE / OWNER_MANAGER / DEAL_OWNER
    user_ids: list[str] = field(default_factory=list)
    role_key: str = ""
    quorum: str = "COUNT"  # ANY / ALL / COUNT
    required: int = 1
    after: list[str] = field(default_factory=list)
    condition: Condition | None = None
    due: Limit | None = None
    remind: Limit | None = None
    repeat: Limit | None = None
    escalate: Limit | None = None
    escalate_to: str = "APPROVER_MANAGER"  # or USERS / APPROVER_ROLE
    escalate_user_ids: list[str] = field(default_factory=list)
    escalate_role: str = ""
    escalation_assigns: bool = False
    channels: list[str] = field(default_factory=list)
    fallback: Limit | None = None
    fallback_action: str = ""  # ASSIGN / AUTO_APPROVE / AUTO_REJECT
    fallback_user_ids: list[str] = field(default_factory=list)
    keep_on_resubmit: bool = False
    concern: list[str] = field(default_factory=list)
    form_required: list[str] = field(default_factory=list)


@dataclass
class Opening:
    """A step's approvers and deadlines as resolved when it opens (org, delegations, calendar)."""

    assignees: list[str]
    acting_for: dict[str, str] = field(default_factory=dict)  # delegate -> the approver they replace
    remind_at: str | None = None
    escalate_at: str | None = None
    fallback_at: str | None = None
    due_at: str | None = None


@dataclass
class StepRun:
    key: str
    state: str = PENDING
    assignees: list[str] = field(default_factory=list)
    acting_for: dict[str, str] = field(default_factory=dict)
    indirect: list[str] = field(default_factory=list)  # by escalation, delegation or fallback
    slots: int = 0  # approvers resolved when it opened (n of the quorum)
    required: int = 1
    approved_slots: list[str] = field(default_factory=list)
    approved_by: list[str] = field(default_factory=list)
    activate_time: str | None = None
    due_time: str | None = None
    complete_time: str | None = None
    reminder_count: int = 0
    next_reminder: str | None = None
    escalate_at: str | None = None
    escalated: bool = False
    escalated_to: list[str] = field(default_factory=list)
    fallback_at: str | None = None
    fallback_done: bool = False
    form: dict[str, str] = field(default_factory=dict)


@dataclass
class Action:
    """One audit entry (ApprovalActionRecord)."""

    type: str
    step_key: str
    actor: str
    at: str
    revision: int
    comment: str = ""
    targets: list[str] = field(default_factory=list)
    form: dict[str, str] = field(default_factory=dict)
    client: str = ""
    action_id: str = ""


@dataclass
class Run:
    approval_id: str
    tenant: str
    flow_id: str
    flow_version: int
    kind: str
    title: str
    deal_id: str
    deal_owner: str
    org_path: str
    requester: str
    submit_time: str
    steps_def: list[StepDef]
    facts: Facts
    steps: list[StepRun] = field(default_factory=list)
    state: str = IN_PROGRESS
    revision: int = 1
    seq: int = 0  # every change; the etag and the projection's guard
    complete_time: str | None = None
    history: list[Action] = field(default_factory=list)
    recorded: int = 0  # history entries already written to the database
    done_actions: dict[str, int] = field(default_factory=dict)  # action id -> seq after it (first result)
    decided_by: str = ""
    decisive_step: str = ""

    def step(self, key: str) -> StepRun:
        for s in self.steps:
            if s.key == key:
                return s
        raise Refused(INVALID, f"no step {key!r} in this flow")

    def definition(self, key: str) -> StepDef:
        return next(d for d in self.steps_def if d.key == key)

    @property
    def etag(self) -> str:
        return f'"{self.seq}"'
