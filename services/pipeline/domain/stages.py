"""Stage models and moves: which gates a move must pass and what probability a deal gets.

A model has 6 to 8 open stages in order (won and lost are statuses, not stages),
each with a base probability that never decreases along the model, an entry gate
(a criteria tree, see gates.py) and probability rules that may raise the base
(never lower it; the highest matching rule wins, rules do not add up). Moving
forward runs the gate of every stage entered, so skipping stages cannot skip a
gate; moving backward runs none but needs a note; moving to the current stage is
a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from services.pipeline.domain.gates import (
    ALWAYS,
    AllOf,
    AnyOf,
    Approved,
    Checked,
    DealFacts,
    HasEvidence,
    Item,
    Node,
    NoneOf,
    evaluate,
    leaves,
)

MIN_STAGES, MAX_STAGES = 6, 8
MAX_DEPTH = 8  # a gate tree deeper than this is a configuration mistake, not a rule
WON = "won"  # GateItem.stage_id of the won criteria


@dataclass(frozen=True)
class ProbabilityRule:
    rule_id: str
    label: str
    condition: Node
    probability: int


@dataclass(frozen=True)
class Stage:
    stage_id: str
    label: str
    probability: int
    entry: Node = ALWAYS
    rules: tuple[ProbabilityRule, ...] = ()
    default_category: str = ""


@dataclass(frozen=True)
class StageModel:
    version: int
    stages: tuple[Stage, ...]
    won: Node = ALWAYS
    evidence_types: frozenset[str] = frozenset()
    checklist_items: frozenset[str] = frozenset()

    def index(self, stage_id: str) -> int | None:
        for i, s in enumerate(self.stages):
            if s.stage_id == stage_id:
                return i
        return None

    def stage(self, stage_id: str) -> Stage | None:
        i = self.index(stage_id)
        return None if i is None else self.stages[i]

    @property
    def first(self) -> Stage:
        return self.stages[0]

    def next_after(self, stage_id: str) -> Stage | None:
        i = self.index(stage_id)
        return None if i is None or i + 1 >= len(self.stages) else self.stages[i + 1]


@dataclass(frozen=True)
class Problem:
    """A reason a stage model is refused: where (a path in the StageModel message) and why."""

    path: str
    description: str


def _tree_problems(node: Node, model: StageModel, path: str, level: int = 0) -> list[Problem]:
    problems: list[Problem] = []
    if level > MAX_DEPTH:
        return [Problem(path, f"criteria nest deeper than {MAX_DEPTH} levels")]
    if isinstance(node, AllOf | AnyOf | NoneOf):
        if not node.children and (level > 0 or not isinstance(node, AllOf)):
            problems.append(Problem(path, "a combination needs at least one criterion"))
        for i, child in enumerate(node.children):
            problems += _tree_problems(child, model, f"{path}[{i}]", level + 1)
        return problems
    for leaf in leaves(node):
        if isinstance(leaf, HasEvidence) and leaf.evidence_type_id not in model.evidence_types:
            problems.append(Problem(path, f"unknown evidence type {leaf.evidence_type_id!r}"))
        if isinstance(leaf, Checked) and leaf.item_id not in model.checklist_items:
            problems.append(Problem(path, f"unknown checklist item {leaf.item_id!r}"))
        if isinstance(leaf, Approved) and not leaf.flow_id:
            problems.append(Problem(path, "approval flow id is empty"))
    return problems


def validate(model: StageModel) -> list[Problem]:
    """Every problem of the model (empty when it may be stored)."""
    problems: list[Problem] = []
    n = len(model.stages)
    if not MIN_STAGES <= n <= MAX_STAGES:
        problems.append(
            Problem("stages", f"a stage model has {MIN_STAGES} to {MAX_STAGES} open stages, not {n}")
        )
    seen: set[str] = set()
    previous = 0
    for i, stage in enumerate(model.stages):
        where = f"stages[{i}]"
        if not stage.stage_id:
            problems.append(Problem(f"{where}.stage_id", "required"))
        elif stage.stage_id in seen or stage.stage_id == WON:
            problems.append(
                Problem(f"{where}.stage_id", f"duplicate or reserved stage id {stage.stage_id!r}")
            )
        seen.add(stage.stage_id)
        if not 0 <= stage.probability <= 99:
            problems.append(Problem(f"{where}.win_probability_percent", "must be 0-99"))
        elif stage.probability < previous:
            problems.append(Problem(f"{where}.win_probability_percent", "must not decrease along the model"))
        previous = max(previous, stage.probability)
        problems += _tree_problems(stage.entry, model, f"{where}.entry_criteria")
        rule_ids: set[str] = set()
        for j, rule in enumerate(stage.rules):
            rwhere = f"{where}.probability_rules[{j}]"
            if not rule.rule_id or rule.rule_id in rule_ids:
                problems.append(Problem(f"{rwhere}.rule_id", "required and unique within the stage"))
            rule_ids.add(rule.rule_id)
            if not stage.probability < rule.probability <= 99:
                problems.append(
                    Problem(
                        f"{rwhere}.probability_percent",
                        f"must be above the stage's {stage.probability} and at most 99",
                    )
                )
            problems += _tree_problems(rule.condition, model, f"{rwhere}.condition")
    problems += _tree_problems(model.won, model, "won_criteria")
    return problems


@dataclass(frozen=True)
class Probability:
    """A deal's probability in a stage: the base, raised by the best matching rule."""

    percent: int
    base: int
    applied: tuple[ProbabilityRule, ...] = ()


def probability(stage: Stage, facts: DealFacts) -> Probability:
    matching = [
        r for r in stage.rules if evaluate(r.condition, facts).passed and r.probability > stage.probability
    ]
    if not matching:
        return Probability(stage.probability, stage.probability)
    best = max(r.probability for r in matching)
    return Probability(best, stage.probability, tuple(r for r in matching if r.probability == best))


def weighted(amount_minor: int, percent: int) -> int:
    """amount x probability in minor units, rounded half up (half away from zero for refunds)."""
    sign = -1 if amount_minor < 0 else 1
    return sign * ((abs(amount_minor) * percent + 50) // 100)


class Direction(Enum):
    SAME = "SAME"
    FORWARD = "FORWARD"
    BACKWARD = "BACKWARD"


@dataclass(frozen=True)
class GateItem:
    """An evaluated criterion with the stage whose gate asked for it (WON for the won criteria)."""

    stage_id: str
    item: Item


@dataclass(frozen=True)
class Review:
    """A gate review: passed or not, every item of every gate on the way, the probability after."""

    from_stage_id: str
    to_stage_id: str  # WON for the won criteria
    direction: Direction
    items: tuple[GateItem, ...]
    probability: Probability
    model_version: int

    @property
    def passed(self) -> bool:
        return all(g.item.satisfied for g in self.items)

    @property
    def missing(self) -> tuple[GateItem, ...]:
        return tuple(g for g in self.items if not g.item.satisfied)


class UnknownStage(ValueError):
    def __init__(self, stage_id: str) -> None:
        super().__init__(f"no stage {stage_id!r} in the stage model")
        self.stage_id = stage_id


def _gate_items(stage_id: str, node: Node, facts: DealFacts) -> list[GateItem]:
    return [GateItem(stage_id, item) for item in evaluate(node, facts).items]


def review_move(model: StageModel, from_stage_id: str, to_stage_id: str, facts: DealFacts) -> Review:
    """The gate review of moving a deal from one stage to another (from "" = creation: every gate up to it)."""
    target = model.index(to_stage_id)
    if target is None:
        raise UnknownStage(to_stage_id)
    start = -1 if not from_stage_id else model.index(from_stage_id)
    if start is None:
        # The deal's stage was removed from the model without a mapping: treat it as before the first.
        start = -1
    direction = (
        Direction.SAME if start == target else Direction.FORWARD if target > start else Direction.BACKWARD
    )
    items: list[GateItem] = []
    if direction is Direction.FORWARD:
        for stage in model.stages[start + 1 : target + 1]:
            items += _gate_items(stage.stage_id, stage.entry, facts)
    stage = model.stages[target]
    return Review(
        from_stage_id, to_stage_id, direction, tuple(items), probability(stage, facts), model.version
    )


def review_won(model: StageModel, from_stage_id: str, facts: DealFacts) -> Review:
    """MarkWon's gate: the model's won criteria."""
    return Review(
        from_stage_id,
        WON,
        Direction.FORWARD,
        tuple(_gate_items(WON, model.won, facts)),
        Probability(100, 100),
        model.version,
    )


def default_target(model: StageModel, from_stage_id: str) -> str:
    """CheckGate's default target: the stage after the deal's (the first, for a deal in none)."""
    nxt = model.next_after(from_stage_id) if from_stage_id else model.first
    if nxt is None:
        return WON
    return nxt.stage_id


def gate_nodes(model: StageModel) -> Sequence[Node]:
    """Every tree of the model (entry gates, rule conditions, won criteria)."""
    nodes: list[Node] = [model.won]
    for s in model.stages:
        nodes.append(s.entry)
        nodes += [r.condition for r in s.rules]
    return nodes


__all__ = [
    "MAX_STAGES",
    "MIN_STAGES",
    "WON",
    "Direction",
    "GateItem",
    "Probability",
    "ProbabilityRule",
    "Problem",
    "Review",
    "Stage",
    "StageModel",
    "UnknownStage",
    "default_target",
    "gate_nodes",
    "probability",
    "review_move",
    "review_won",
    "validate",
    "weighted",
]
