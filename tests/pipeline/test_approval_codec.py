"""approval_codec.encode writes what Temporal's encoder writes of the approval dataclasses (asdict), and
decode reads it back: checked on the recorded runs' inputs, a run after every kind of action, and the
record activity's input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.converter import default

from services.pipeline.approval_codec import decode, encode
from services.pipeline.approval_messages import EventSpec, RecordInput
from services.pipeline.approval_workflows import ActionInput, ActionResult, ApprovalInput, FirstOpenings
from services.pipeline.domain import approvals as d

HISTORIES = sorted((Path(__file__).parent / "histories").glob("approval_*.json"))


def _inputs() -> list[ApprovalInput]:
    out = []
    for path in HISTORIES:
        history = WorkflowHistory.from_json("approval", path.read_text())
        payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
        out.append(decode(ApprovalInput, json.loads(payload.data)))
    return out


def _bytes(value: object) -> bytes:
    (payload,) = default().payload_converter.to_payloads([value])
    return payload.data


@pytest.mark.parametrize("inp", _inputs(), ids=[p.stem for p in HISTORIES])
def test_an_input_encodes_as_temporal_encodes_it(inp: ApprovalInput) -> None:
    assert encode(inp) == dataclasses.asdict(inp)
    assert _bytes(encode(inp)) == _bytes(inp)
    assert decode(ApprovalInput, json.loads(_bytes(encode(inp)))) == inp


def test_a_run_with_history_and_openings_encodes_the_same() -> None:
    inp = _inputs()[0]
    run = inp.run
    d.start(run, "2026-01-01T00:00:00.000000+00:00", run.requester, "web")
    keys = d.ready(run, "2026-01-01T00:00:00.000000+00:00")
    for k in keys:
        d.activate(
            run, k, d.Opening(["a", "b"], {"b": "c"}, "2026-01-02T00:00:00.000000+00:00"), "2026-01-01"
        )
    run.done_actions["x"] = 3
    first = FirstOpenings("2026-01-01", keys, [d.Opening(["a"])])
    for value in (
        ApprovalInput(run, "web", first=first, version=2),
        RecordInput(run, [EventSpec("REQUESTED"), EventSpec("WAITING", keys[0], users=["a"])]),
        ActionInput("a", "id-1", facts=run.facts, form={"k": "1"}),
        ActionResult(3, "IN_PROGRESS"),
    ):
        assert encode(value) == dataclasses.asdict(value)
        assert _bytes(encode(value)) == _bytes(value)
        assert decode(type(value), json.loads(_bytes(value))) == value
