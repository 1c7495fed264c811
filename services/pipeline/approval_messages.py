"""What the approval workflow hands its activities and gets back (plain dataclasses, JSON on the wire).

Apart from approval_workflows.py (which re-exports them) so that file stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.pipeline.domain import approvals as d


@dataclass
class OpenInput:
    tenant: str
    step: d.StepDef
    deal_owner: str
    requester: str
    at: str


@dataclass
class OpenStepsInput:
    tenant: str
    steps: list[d.StepDef]
    deal_owner: str
    requester: str
    at: str


@dataclass
class Openings:
    openings: list[d.Opening]


@dataclass
class TimeInput:
    tenant: str
    start: str
    limit: d.Limit


@dataclass
class TimeResult:
    at: str


@dataclass
class EscalationInput:
    tenant: str
    step: d.StepDef
    assignees: list[str]


@dataclass
class Users:
    user_ids: list[str]


@dataclass
class EventSpec:
    """An event the record activity stages in the outbox with the projection."""

    type: str  # REQUESTED / WAITING / IDLE / RETURNED / COMPLETED
    step_key: str = ""
    action: str = ""  # IDLE: REMIND / ESCALATE
    users: list[str] = field(default_factory=list)
    reassigned: bool = False
    overdue: bool = False
    at: str = ""
    comment: str = ""


@dataclass
class RecordInput:
    run: d.Run
    events: list[EventSpec]
    # The run's first record (no row can exist but one this same record wrote before a retry): the
    # projection is inserted without reading for it first; a retry that meets the row reads as usual.
    fresh: bool = False


__all__ = [
    "EscalationInput",
    "EventSpec",
    "OpenInput",
    "OpenStepsInput",
    "Openings",
    "RecordInput",
    "TimeInput",
    "TimeResult",
    "Users",
]
