"""The gate engine: entry criteria as a small rule tree, evaluated against what a deal has.

A tree's leaves are the four kinds of criterion the contract names (a required
field, evidence of a kind, a ticked checklist item, an APPROVED approval); its
inner nodes combine them: `AllOf` (AND), `AnyOf` (OR), `NoneOf` (NOT: none of its
children may hold). `evaluate` answers whether the tree holds and, when it does
not, every leaf that must change for it to hold, with the branch of the tree it
sits in and what would satisfy it. It is the dry run (CheckGate) and the decision
of every write path alike: there is no second implementation.

Reporting follows the decision, by De Morgan: an AND reports all its children; a
satisfied OR reports the alternative that satisfied it; a failed OR reports every
alternative's missing items (any one alternative would do); under NOT the wanted
truth of each leaf is inverted, so a leaf that holds where it must not is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum


class Kind(Enum):
    REQUIRED_FIELD = "REQUIRED_FIELD"
    EVIDENCE = "EVIDENCE"
    CHECKLIST = "CHECKLIST"
    APPROVAL = "APPROVAL"


APPROVED = "APPROVED"


@dataclass(frozen=True)
class FieldSet:
    """A deal field that must hold a value (any, or one of `allowed` enum value names)."""

    path: str
    label: str = ""
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class HasEvidence:
    evidence_type_id: str
    label: str = ""


@dataclass(frozen=True)
class Checked:
    item_id: str
    label: str = ""


@dataclass(frozen=True)
class Approved:
    """An approval of this flow must be APPROVED for the deal."""

    flow_id: str
    label: str = ""


Leaf = FieldSet | HasEvidence | Checked | Approved


@dataclass(frozen=True)
class AllOf:
    children: tuple[Node, ...]
    label: str = ""
    # Branch names of the children, when the caller's schema names them (e.g. "required_fields[0]").
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]
    label: str = ""


@dataclass(frozen=True)
class NoneOf:
    children: tuple[Node, ...]
    label: str = ""


Node = Leaf | AllOf | AnyOf | NoneOf

ALWAYS = AllOf(())  # the empty gate: nothing required


@dataclass(frozen=True)
class DealFacts:
    """What the engine may look at, gathered by the caller (no I/O here).

    `fields`: field path -> its value as text (an enum's value name), only for set
    fields; `evidence`: evidence type ids attached; `checked`: checklist item ids
    ticked; `approvals`: approval flow id -> the state of the deal's latest approval;
    `flows_not_applicable`: flows whose entry conditions (amount / discount / product lines)
    this deal does not meet: a criterion requiring their approval does not apply to it.
    """

    fields: Mapping[str, str] = field(default_factory=dict)
    evidence: frozenset[str] = frozenset()
    checked: frozenset[str] = frozenset()
    approvals: Mapping[str, str] = field(default_factory=dict)
    flows_not_applicable: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Item:
    """One leaf as evaluated: `satisfied` is False when it must change for the gate to pass."""

    kind: Kind
    key: str
    label: str
    satisfied: bool
    branch: str  # where in the tree, e.g. "all_of[2].any_of[0]"
    hint: str = ""  # what would satisfy it (set when not satisfied)
    negated: bool = False  # under a NOT: it must NOT hold


@dataclass(frozen=True)
class Evaluation:
    passed: bool
    items: tuple[Item, ...]

    @property
    def missing(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if not i.satisfied)


def leaf_kind(leaf: Leaf) -> Kind:
    if isinstance(leaf, FieldSet):
        return Kind.REQUIRED_FIELD
    if isinstance(leaf, HasEvidence):
        return Kind.EVIDENCE
    if isinstance(leaf, Checked):
        return Kind.CHECKLIST
    return Kind.APPROVAL


def leaf_key(leaf: Leaf) -> str:
    if isinstance(leaf, FieldSet):
        return leaf.path
    if isinstance(leaf, HasEvidence):
        return leaf.evidence_type_id
    if isinstance(leaf, Checked):
        return leaf.item_id
    return leaf.flow_id


def holds(leaf: Leaf, facts: DealFacts) -> bool:
    if isinstance(leaf, FieldSet):
        value = facts.fields.get(leaf.path, "")
        return bool(value) and (not leaf.allowed or value in leaf.allowed)
    if isinstance(leaf, HasEvidence):
        return leaf.evidence_type_id in facts.evidence
    if isinstance(leaf, Checked):
        return leaf.item_id in facts.checked
    return facts.approvals.get(leaf.flow_id, "") == APPROVED


NOT_APPLICABLE = "not applicable: the deal does not meet the flow's entry conditions"


def applies(leaf: Leaf, facts: DealFacts) -> bool:
    """False for an approval criterion of a flow that does not apply to this deal (e.g. a contract
    flow from 500,000 up, for a deal of 100,000): it is met whatever is wanted, even under a NOT."""
    return not (isinstance(leaf, Approved) and leaf.flow_id in facts.flows_not_applicable)


def _hint(leaf: Leaf, facts: DealFacts, want: bool) -> str:
    label = leaf.label or leaf_key(leaf)
    if not want:
        if isinstance(leaf, FieldSet):
            return f"clear {leaf.path}" + (
                f" or set it to a value other than {', '.join(leaf.allowed)}" if leaf.allowed else ""
            )
        if isinstance(leaf, HasEvidence):
            return f"remove the {label} evidence"
        if isinstance(leaf, Checked):
            return f"untick '{label}'"
        return f"the {label} approval must not be approved"
    if isinstance(leaf, FieldSet):
        current = facts.fields.get(leaf.path, "")
        if leaf.allowed:
            now = f" (now {current})" if current else ""
            return f"set {leaf.path} to one of {', '.join(leaf.allowed)}{now}"
        return f"set {leaf.path}"
    if isinstance(leaf, HasEvidence):
        return f"attach evidence of type {leaf.evidence_type_id}"
    if isinstance(leaf, Checked):
        return f"tick checklist item {leaf.item_id}"
    state = facts.approvals.get(leaf.flow_id, "")
    now = f" (latest is {state})" if state else " (none requested)"
    return f"get an approval of flow {leaf.flow_id} APPROVED{now}"


def _join(parent: str, step: str) -> str:
    return f"{parent}.{step}" if parent else step


def _branch(parent: str, name: str, index: int) -> str:
    return _join(parent, f"{name}[{index}]")


def _children(node: AllOf | AnyOf | NoneOf) -> tuple[Node, ...]:
    return node.children


def _name(node: AllOf | AnyOf | NoneOf) -> str:
    return "all_of" if isinstance(node, AllOf) else "any_of" if isinstance(node, AnyOf) else "none_of"


def _eval(node: Node, facts: DealFacts, branch: str, want: bool) -> tuple[bool, list[Item]]:
    """Whether `node` has the truth `want`, and the items that say why (or what to change)."""
    if isinstance(node, FieldSet | HasEvidence | Checked | Approved):
        applicable = applies(node, facts)
        ok = not applicable or holds(node, facts) == want
        item = Item(
            kind=leaf_kind(node),
            key=leaf_key(node),
            label=node.label or leaf_key(node),
            satisfied=ok,
            branch=branch,
            hint=NOT_APPLICABLE if not applicable else "" if ok else _hint(node, facts, want),
            negated=not want,
        )
        return ok, [item]
    named = node.names if isinstance(node, AllOf) else ()
    kids = [
        (_join(branch, named[i]) if i < len(named) else _branch(branch, _name(node), i), c)
        for i, c in enumerate(_children(node))
    ]
    # NOT(a, b) = AND(not a, not b); every combination reduces to "all" or "any" of children with a truth.
    if isinstance(node, NoneOf):
        every, child_want = want, not want
    else:
        every, child_want = isinstance(node, AllOf) == want, want
    results = [_eval(child, facts, b, child_want) for b, child in kids]
    if every:
        return all(ok for ok, _ in results), [i for _, items in results for i in items]
    winners = [items for ok, items in results if ok]
    if winners:
        return True, winners[0]
    alternatives = ", ".join(b for b, _ in kids)
    missing = [
        Item(
            i.kind,
            i.key,
            i.label,
            i.satisfied,
            i.branch,
            f"{i.hint} (or satisfy another of: {alternatives})" if not i.satisfied else "",
            i.negated,
        )
        for _, items in results
        for i in items
    ]
    return False, missing


def evaluate(node: Node, facts: DealFacts) -> Evaluation:
    """Whether `facts` pass the gate `node`, with every item and what each missing one needs."""
    passed, items = _eval(node, facts, "", True)
    return Evaluation(passed, tuple(items))


def leaves(node: Node) -> list[Leaf]:
    """Every leaf of the tree, depth first (what facts a caller must gather)."""
    if isinstance(node, FieldSet | HasEvidence | Checked | Approved):
        return [node]
    return [leaf for child in node.children for leaf in leaves(child)]


def field_paths(nodes: Sequence[Node]) -> set[str]:
    return {leaf.path for n in nodes for leaf in leaves(n) if isinstance(leaf, FieldSet)}


def approval_flow_ids(nodes: Sequence[Node]) -> set[str]:
    """The flows whose approval some criterion requires (whose entry conditions a caller must read)."""
    return {leaf.flow_id for n in nodes for leaf in leaves(n) if isinstance(leaf, Approved)}


def depth(node: Node) -> int:
    if isinstance(node, FieldSet | HasEvidence | Checked | Approved):
        return 0
    return 1 + max((depth(c) for c in node.children), default=0)


__all__ = [
    "ALWAYS",
    "APPROVED",
    "NOT_APPLICABLE",
    "AllOf",
    "AnyOf",
    "Approved",
    "Checked",
    "DealFacts",
    "Evaluation",
    "FieldSet",
    "HasEvidence",
    "Item",
    "Kind",
    "Leaf",
    "Node",
    "NoneOf",
    "applies",
    "approval_flow_ids",
    "depth",
    "evaluate",
    "field_paths",
    "holds",
    "leaves",
]
