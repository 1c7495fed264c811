"""The contract's stage model and deals, read as the gate engine's terms (proto -> domain).

`model_of(StageModel)` builds the domain model the one gate engine runs on;
`facts_of(deal, evidence)` gathers what a deal has. Field paths of required
fields are checked against the Deal message's descriptor, so a gate cannot
require a field that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from salesops.pipeline.v1 import deal_pb2, stage_model_pb2, types_pb2
from services.pipeline.domain import gates as g
from services.pipeline.domain import stages as s

CUSTOM_FIELDS = "custom_fields"


def _catalogue(model: stage_model_pb2.StageModel) -> tuple[dict[str, str], dict[str, str]]:
    evidence = {e.evidence_type_id: e.display_name for e in model.evidence_types}
    checklist = {c.item_id: c.text for c in model.checklist_items}
    return evidence, checklist


def _leaf_label(label: str, fallback: str) -> str:
    return label or fallback


def _node(c: stage_model_pb2.Criterion, evidence: dict[str, str], checklist: dict[str, str]) -> g.Node:
    kind = c.WhichOneof("criterion")
    if kind == "required_field":
        rf = c.required_field
        return g.FieldSet(rf.field_path, c.display_name or rf.display_name, tuple(rf.allowed_values))
    if kind == "evidence_type_id":
        return g.HasEvidence(c.evidence_type_id, c.display_name or evidence.get(c.evidence_type_id, ""))
    if kind == "checklist_item_id":
        return g.Checked(c.checklist_item_id, c.display_name or checklist.get(c.checklist_item_id, ""))
    if kind == "approval_flow_id":
        return g.Approved(c.approval_flow_id, c.display_name)
    if kind in ("all_of", "any_of", "none_of"):
        group: stage_model_pb2.CriterionList = getattr(c, kind)
        kids = tuple(_node(x, evidence, checklist) for x in group.criteria)
        if kind == "all_of":
            return g.AllOf(kids, c.display_name)
        if kind == "any_of":
            return g.AnyOf(kids, c.display_name)
        return g.NoneOf(kids, c.display_name)
    # An unset node can never hold: refused by validation, never silently "true".
    return g.AnyOf((), c.display_name)


def criteria_node(
    ec: stage_model_pb2.EntryCriteria, evidence: dict[str, str], checklist: dict[str, str]
) -> g.AllOf:
    """The lists ANDed with the rule tree; branches named as the contract documents them."""
    kids: list[g.Node] = []
    names: list[str] = []
    for i, rf in enumerate(ec.required_fields):
        kids.append(g.FieldSet(rf.field_path, rf.display_name, tuple(rf.allowed_values)))
        names.append(f"required_fields[{i}]")
    for i, e in enumerate(ec.required_evidence_type_ids):
        kids.append(g.HasEvidence(e, evidence.get(e, "")))
        names.append(f"required_evidence_type_ids[{i}]")
    for i, item in enumerate(ec.required_checklist_item_ids):
        kids.append(g.Checked(item, checklist.get(item, "")))
        names.append(f"required_checklist_item_ids[{i}]")
    for i, flow in enumerate(ec.required_approval_flow_ids):
        kids.append(g.Approved(flow))
        names.append(f"required_approval_flow_ids[{i}]")
    if ec.HasField("rule"):
        kids.append(_node(ec.rule, evidence, checklist))
        names.append("rule")
    return g.AllOf(tuple(kids), names=tuple(names))


def model_of(model: stage_model_pb2.StageModel, version: int | None = None) -> s.StageModel:
    evidence, checklist = _catalogue(model)
    stages = tuple(
        s.Stage(
            stage_id=st.stage_id,
            label=st.display_name,
            probability=st.win_probability_percent,
            entry=criteria_node(st.entry_criteria, evidence, checklist),
            rules=tuple(
                s.ProbabilityRule(
                    r.rule_id,
                    r.display_name,
                    criteria_node(r.condition, evidence, checklist),
                    r.probability_percent,
                )
                for r in st.probability_rules
            ),
            default_category=types_pb2.ForecastCategory.Name(st.default_forecast_category),
        )
        for st in model.stages
    )
    return s.StageModel(
        version=model.version if version is None else version,
        stages=stages,
        won=criteria_node(model.won_criteria, evidence, checklist),
        evidence_types=frozenset(evidence),
        checklist_items=frozenset(checklist),
    )


# --- required field paths ----------------------------------------------------------------------------


def _resolve(descriptor: Descriptor, path: str) -> list[FieldDescriptor] | None:
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for name in path.split("."):
        if current is None:
            return None
        f = current.fields_by_name.get(name)
        if f is None:
            return None
        fields.append(f)
        current = f.message_type if f.type == FieldDescriptor.TYPE_MESSAGE and not f.is_repeated else None
    return fields


def field_path_problem(path: str) -> str:
    """ "" when `path` names a field of Deal a gate may require, else why not."""
    if path.startswith(CUSTOM_FIELDS + "."):
        return "" if path.removeprefix(CUSTOM_FIELDS + ".") else "custom field key is empty"
    if _resolve(deal_pb2.Deal.DESCRIPTOR, path) is None:
        return f"no field {path!r} in Deal"
    return ""


def _text(value: object, field: FieldDescriptor) -> str:
    if field.type == FieldDescriptor.TYPE_ENUM:
        number = int(value)  # type: ignore[call-overload]
        if not number:
            return ""
        found = field.enum_type.values_by_number.get(number) if field.enum_type else None
        return found.name if found is not None else str(number)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        msg = value
        assert isinstance(msg, Message)
        if msg.DESCRIPTOR.full_name == "google.type.Date":
            y, m, d = msg.year, msg.month, msg.day  # type: ignore[attr-defined]
            return f"{y:04d}-{m:02d}-{d:02d}" if y else ""
        if msg.DESCRIPTOR.full_name == "salesops.common.v1.Money":
            return f"{msg.amount_minor} {msg.currency}" if msg.ByteSize() else ""  # type: ignore[attr-defined]
        return "set" if msg.ByteSize() else ""
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true" if value else ""
    return "" if not value else str(value)


def field_text(deal: deal_pb2.Deal, path: str) -> str:
    """The value of a field path of `deal` as text; "" when unset, empty, zero or UNSPECIFIED."""
    if path.startswith(CUSTOM_FIELDS + "."):
        return deal.custom_fields.get(path.removeprefix(CUSTOM_FIELDS + "."), "")
    fields = _resolve(deal_pb2.Deal.DESCRIPTOR, path)
    if fields is None:
        return ""
    current: Message = deal
    for f in fields[:-1]:
        if not current.HasField(f.name):
            return ""
        current = getattr(current, f.name)
    last = fields[-1]
    value = getattr(current, last.name)
    if last.is_repeated:
        return ",".join(_text(v, last) for v in value) if len(value) else ""
    if last.type == FieldDescriptor.TYPE_MESSAGE and not current.HasField(last.name):
        return ""
    return _text(value, last)


def facts_of(
    model: s.StageModel,
    deal: deal_pb2.Deal,
    evidence: Iterable[str],
    approvals: Mapping[str, str] | None = None,
    flows_not_applicable: frozenset[str] = frozenset(),
) -> g.DealFacts:
    """What `deal` has, for every field path the model's gates and rules look at.

    `approvals`: flow id -> the state of the deal's latest approval of it (the approvals'
    projection); a path that does not pass it sees no approval met. `flows_not_applicable`:
    flows whose trigger the deal does not meet (`gate_flows`): their criteria do not apply."""
    paths = g.field_paths(s.gate_nodes(model))
    fields = {p: v for p in paths if (v := field_text(deal, p))}
    checked = frozenset(c.item_id for c in deal.checklist if c.checked)
    return g.DealFacts(fields, frozenset(evidence), checked, dict(approvals or {}), flows_not_applicable)


def problems_of(model: stage_model_pb2.StageModel) -> list[s.Problem]:
    """Everything wrong with a stage model: the domain's rules plus the contract's references."""
    problems = s.validate(model_of(model))
    for i, st in enumerate(model.stages):
        where = f"stages[{i}]"
        if not st.display_name:
            problems.append(s.Problem(f"{where}.display_name", "required"))
        criteria = [(f"{where}.entry_criteria", st.entry_criteria)]
        criteria += [
            (f"{where}.probability_rules[{j}].condition", r.condition)
            for j, r in enumerate(st.probability_rules)
        ]
        for at, ec in criteria:
            problems += _path_problems(at, ec)
    problems += _path_problems("won_criteria", model.won_criteria)
    ids = [e.evidence_type_id for e in model.evidence_types]
    if len(set(ids)) != len(ids) or not all(ids):
        problems.append(s.Problem("evidence_types", "evidence type ids must be set and unique"))
    items = [c.item_id for c in model.checklist_items]
    if len(set(items)) != len(items) or not all(items):
        problems.append(s.Problem("checklist_items", "checklist item ids must be set and unique"))
    return problems


def _path_problems(at: str, ec: stage_model_pb2.EntryCriteria) -> list[s.Problem]:
    leaves = g.leaves(criteria_node(ec, {}, {}))
    return [
        s.Problem(at, why)
        for leaf in leaves
        if isinstance(leaf, g.FieldSet) and (why := field_path_problem(leaf.path))
    ]


__all__ = ["criteria_node", "facts_of", "field_path_problem", "field_text", "model_of", "problems_of"]
