"""Target arithmetic and rules: where a node sits in the cascade, what may be handed down,
attrition and attainment, coverage beside a forecast, and deviation reason counts.

Pure: the use cases load target rows and SQL sums, this module decides and computes.
Amounts are integer minor units.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum

from services.pipeline.domain.forecast import Aggregate, Granularity, Totals, segments

PERIODS = (Granularity.MONTH, Granularity.QUARTER, Granularity.YEAR)
LEVELS = ("COMPANY", "REGION", "CITY", "TEAM", "REP")  # top first, as OrgLevel numbers them


def path_problem(level: str, org_path: str) -> str:
    """Why `org_path` cannot hold a unit target of `level` ("" when it can).

    Paths are "region/city/team"; a tenant without cities has its teams right under
    the region ("east/team-a"), so a TEAM sits two or three segments down.
    """
    depth = len(segments(org_path))
    wanted = {"COMPANY": (0,), "REGION": (1,), "CITY": (2,), "TEAM": (2, 3)}[level]
    if depth in wanted:
        return ""
    if level == "COMPANY":
        return "the company's target has the empty org path"
    return f"a {level} target's org path has {' or '.join(map(str, wanted))} segment(s)"


def unit_key(level: str, org_path: str, user_id: str) -> str:
    """The "one target per unit and period" key: the rep for REP, else the unit's path."""
    return f"u:{user_id}" if level == "REP" else f"o:{org_path}"


def ancestor_paths(level: str, org_path: str) -> list[str]:
    """Org paths whose unit target would be the parent, deepest first (a rep: its team up to "")."""
    parts = segments(org_path)
    top = len(parts) if level == "REP" else len(parts) - 1
    return ["/".join(parts[:n]) for n in range(top, -1, -1)]


def under(org_path: str, root: str) -> bool:
    """`org_path` is `root` or below it, segment by segment."""
    r = segments(root)
    return segments(org_path)[: len(r)] == r


def hand_down_limit(committed: int, challenge: int | None) -> int:
    """What a node may hand down in total: its challenge, else its committed amount."""
    return committed if challenge is None else challenge


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


# ---------------------------------------------------------------- the cascade


@dataclass(frozen=True)
class Node:
    """A target as the cascade needs it."""

    target_id: str
    parent_id: str | None
    level: str
    org_path: str
    user_id: str
    committed: int
    challenge: int | None


@dataclass
class CascadeNode:
    node: Node
    children: list[CascadeNode] = field(default_factory=list)
    children_committed: int = 0
    attrition: float | None = None  # 1 - children / committed, None for a leaf
    won: int = 0
    weighted: int = 0
    attainment: float | None = None  # won / committed


@dataclass(frozen=True)
class LevelSum:
    level: str
    committed: int
    challenge: int
    retained: float | None  # committed / the root level's committed


def fold_deals(node: Node, sums: Iterable[Aggregate]) -> Totals:
    """The forecast totals of a node from the SQL sums: a rep's own deals, a unit's subtree."""
    totals = Totals()
    for a in sums:
        mine = a.owner == node.user_id if node.level == "REP" else under(a.org_path, node.org_path)
        if mine:
            totals.add(a)
    return totals


def build_cascade(
    root: Node, nodes: Sequence[Node], sums: Sequence[Aggregate], depth: int = 0
) -> tuple[CascadeNode, list[LevelSum]]:
    """The tree under `root` (children by parent id, `depth` levels below it, 0 = all),
    each node's children's committed sum, attrition and attainment; and per level, top
    first, the committed and challenge sums and what is retained of the root level's."""
    by_parent: dict[str, list[Node]] = {}
    for n in nodes:
        if n.parent_id:
            by_parent.setdefault(n.parent_id, []).append(n)

    def grow(n: Node, left: int | None) -> CascadeNode:
        out = CascadeNode(n)
        kids = sorted(
            by_parent.get(n.target_id, []), key=lambda k: (LEVELS.index(k.level), k.org_path, k.user_id)
        )
        if left is None or left > 0:
            out.children = [grow(k, None if left is None else left - 1) for k in kids]
        if kids:
            out.children_committed = sum(k.committed for k in kids)
            out.attrition = None if n.committed == 0 else 1 - out.children_committed / n.committed
        t = fold_deals(n, sums)
        out.won, out.weighted = t.won_amount, t.weighted
        out.attainment = ratio(t.won_amount, n.committed)
        return out

    tree = grow(root, depth or None)
    per_level: dict[str, list[int]] = {}
    stack = [tree]
    while stack:
        c = stack.pop()
        acc = per_level.setdefault(c.node.level, [0, 0])
        acc[0] += c.node.committed
        acc[1] += c.node.challenge if c.node.challenge is not None else c.node.committed
        stack.extend(c.children)
    top = per_level[root.level][0]
    levels = [
        LevelSum(lv, per_level[lv][0], per_level[lv][1], ratio(per_level[lv][0], top))
        for lv in LEVELS
        if lv in per_level
    ]
    return tree, levels


# ---------------------------------------------------------------- coverage


class CoverageState(Enum):
    NO_TARGET = "NO_TARGET"
    TARGET_REACHED = "TARGET_REACHED"
    MEASURED = "MEASURED"


@dataclass(frozen=True)
class Coverage:
    state: CoverageState
    remaining: int | None = None  # target - won, at least 0; None without a target
    ratio: float | None = None  # open pipeline / remaining, when MEASURED


def coverage(open_pipeline: int, won: int, target: int | None) -> Coverage:
    """Open pipeline against the target still to close; undefined without a target or with nothing left."""
    if target is None:
        return Coverage(CoverageState.NO_TARGET)
    remaining = max(target - won, 0)
    if remaining == 0:
        return Coverage(CoverageState.TARGET_REACHED, 0)
    return Coverage(CoverageState.MEASURED, remaining, open_pipeline / remaining)


# ---------------------------------------------------------------- deviation reasons

NO_DEVIATION = "NO_DEVIATION"


@dataclass(frozen=True)
class ReasonSum:
    """One SQL aggregate row: calibrations of one level with one reason type."""

    level: str
    reason: str
    count: int
    gap: int


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    count: int
    share: float  # of the calibrations with a deviation
    gap: int


@dataclass(frozen=True)
class ReasonSummary:
    calibrations: int
    deviations: int
    reasons: list[ReasonCount]


def _summary(rows: Iterable[ReasonSum]) -> ReasonSummary:
    """NO_DEVIATION counts as a calibration, not as a reason (it explains no gap)."""
    counts: dict[str, list[int]] = {}
    total = 0
    for r in rows:
        total += r.count
        if r.reason == NO_DEVIATION:
            continue
        acc = counts.setdefault(r.reason, [0, 0])
        acc[0] += r.count
        acc[1] += r.gap
    deviations = sum(n for n, _ in counts.values())
    out = [ReasonCount(reason, n, n / deviations, gap) for reason, (n, gap) in counts.items()]
    out.sort(key=lambda c: (-c.count, c.reason))
    return ReasonSummary(total, deviations, out)


def summarize_reasons(rows: Sequence[ReasonSum]) -> tuple[ReasonSummary, list[tuple[str, ReasonSummary]]]:
    """Totals over every level, and the same per level (top first), most frequent reason first."""
    levels = [lv for lv in LEVELS if any(r.level == lv for r in rows)]
    return _summary(rows), [(lv, _summary(r for r in rows if r.level == lv)) for lv in levels]


# ---------------------------------------------------------------- clustering free-text reasons

# Words that never characterise a reason ("new" is kept: "new CIO", "new decision maker").
STOPWORDS = frozenset(
    {"the", "and", "for", "with", "our", "was", "were", "has", "have", "had", "but", "not", "are", "its"}
    | {"this", "that", "from", "into", "than", "then", "they", "their", "them", "who", "what", "when"}
    | {"why", "how", "all", "any", "can", "will", "would", "one", "two", "per", "via", "out", "off", "due"}
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]{2,}")
_CJK = re.compile(r"[\u4e00-\u9fff]+")


def keywords(text: str) -> set[str]:
    """Words of 3+ letters (no stopwords) and, for Chinese, the character pairs of each run."""
    low = text.lower()
    out = {w for w in _WORD.findall(low) if w not in STOPWORDS}
    for run in _CJK.findall(text):
        out |= {run[i : i + 2] for i in range(len(run) - 1)} if len(run) > 1 else {run}
    return out


@dataclass(frozen=True)
class Cluster:
    label: str
    keywords: list[str]
    count: int
    reasons: list[str]
    samples: list[str]  # calibration ids


def cluster_reasons(
    items: Sequence[tuple[str, str, str]], *, min_size: int = 2, limit: int = 10, samples: int = 5
) -> list[Cluster]:
    """Greedy keyword clusters over (calibration id, reason type, detail): the keyword shared by the
    most calibrations not yet clustered makes a cluster of them (at least `min_size`), largest first,
    labelled by it and the keyword most of them also share."""
    words = {cid: keywords(detail) for cid, _, detail in items}
    reason = {cid: r for cid, r, _ in items}
    left = {cid for cid, kw in words.items() if kw}
    out: list[Cluster] = []
    while left and len(out) < limit:
        counts = Counter(k for cid in left for k in words[cid])
        top, n = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if n < min_size:
            break
        members = sorted(cid for cid in left if top in words[cid])
        co = Counter(k for cid in members for k in words[cid] if k != top)
        shared = [k for k, c in sorted(co.items(), key=lambda kv: (-kv[1], kv[0])) if 2 * c > len(members)][
            :4
        ]
        label = " ".join([top, *shared[:1]]) if shared else top
        out.append(
            Cluster(
                label, [top, *shared], len(members), sorted({reason[c] for c in members}), members[:samples]
            )
        )
        left -= set(members)
    return out


__all__ = [
    "LEVELS",
    "NO_DEVIATION",
    "PERIODS",
    "CascadeNode",
    "Cluster",
    "Coverage",
    "CoverageState",
    "LevelSum",
    "Node",
    "ReasonCount",
    "ReasonSum",
    "ReasonSummary",
    "ancestor_paths",
    "build_cascade",
    "cluster_reasons",
    "coverage",
    "fold_deals",
    "hand_down_limit",
    "keywords",
    "monday",
    "path_problem",
    "ratio",
    "summarize_reasons",
    "under",
    "unit_key",
]
