"""Escalation policies (pure): the built-in "default" chain and what a tenant's own must hold."""

from __future__ import annotations

from datetime import timedelta

from kit.errors import Violations
from salesops.common.v1 import types_pb2
from salesops.notify.v1 import escalation_pb2, notification_pb2

DEFAULT_ID = "default"


def built_in() -> escalation_pb2.EscalationPolicy:
    """rep (30 min) -> supervisor (2 h) -> director (24 h, then EXHAUSTED)."""
    policy = escalation_pb2.EscalationPolicy(
        escalation_policy_id=DEFAULT_ID,
        display_name="Default chain",
        built_in=True,
        description="Original recipients, then their supervisor, then the director above.",
    )
    policy.initial_ack_timeout.FromTimedelta(timedelta(minutes=30))
    for role, timeout in (
        (types_pb2.ROLE_SUPERVISOR, timedelta(hours=2)),
        (types_pb2.ROLE_DIRECTOR, timedelta(hours=24)),
    ):
        step = policy.steps.add(manager_role=role)
        step.ack_timeout.FromTimedelta(timeout)
    return policy


def validate(policy: escalation_pb2.EscalationPolicy) -> None:
    v = Violations()
    if not policy.display_name.strip():
        v.add("escalation_policy.display_name", "required")
    if not policy.HasField("initial_ack_timeout") or policy.initial_ack_timeout.ToTimedelta() < timedelta(
        minutes=1
    ):
        v.add("escalation_policy.initial_ack_timeout", "at least 1 minute")
    if not 1 <= len(policy.steps) <= 5:
        v.add("escalation_policy.steps", "1 to 5 steps")
    for i, step in enumerate(policy.steps):
        target = step.WhichOneof("target")
        if target is None:
            v.add(f"escalation_policy.steps[{i}]", "a manager_role or recipients is required")
        elif target == "manager_role" and step.manager_role not in (
            types_pb2.ROLE_SUPERVISOR,
            types_pb2.ROLE_DIRECTOR,
            types_pb2.ROLE_ADMIN,
            types_pb2.ROLE_APPROVER,
        ):
            v.add(f"escalation_policy.steps[{i}].manager_role", "a managing role")
        elif target == "recipients" and not step.recipients.recipients:
            v.add(f"escalation_policy.steps[{i}].recipients", "at least one recipient")
        if not step.HasField("ack_timeout") or step.ack_timeout.ToTimedelta() < timedelta(minutes=1):
            v.add(f"escalation_policy.steps[{i}].ack_timeout", "at least 1 minute")
        for ch in step.channels:
            if ch == notification_pb2.CHANNEL_UNSPECIFIED:
                v.add(f"escalation_policy.steps[{i}].channels", "unspecified channel")
    v.raise_if_any("invalid escalation policy")
