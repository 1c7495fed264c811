"""The tenant's knowledge settings: one versioned document (kit keeps every version).

In effect now: `scenarios` (the vocabulary SopCard.scenario must come from) and
`synonyms` (bilingual search). The feedback, iteration, points and recommendation
policies are stored and served with their defaults for the features that read
them as they land.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.type import timeofday_pb2  # type: ignore[import-untyped]

from kit.auth import Principal
from kit.errors import Violations
from kit.resources import TenantSettings, UnitOfWork, merge_update
from salesops.knowledge.v1 import settings_pb2 as s
from services.knowledge import access
from services.knowledge.domain.cards import KEY
from services.knowledge.segmentation import tokens
from services.knowledge.store import settings

HOUR = 3600
SCENARIOS = [
    ("first_cold_call", "首次电话", "First cold call"),
    ("discovery_meeting", "需求调研会", "Discovery meeting"),
    ("failed_poc_restart", "POC 失败后重启", "Restart after a failed POC"),
    ("upsell_negotiation", "增购谈判", "Upsell negotiation"),
    ("price_talks_breakdown", "价格谈崩", "Price talks breaking down"),
    ("competitor_displacement", "竞品替换", "Displacing a competitor"),
    ("budget_objection", "预算异议", "Budget objection"),
    ("contract_closing", "合同收尾", "Closing the contract"),
]
SYNONYMS = [
    ("异议", "objection"),
    ("价格", "price", "pricing"),
    ("报价", "quote", "quotation"),
    ("预算", "budget"),
    ("折扣", "discount"),
    ("竞品", "competitor"),
    ("决策人", "decision maker"),
    ("合同", "contract"),
    ("续约", "renewal"),
    ("增购", "upsell"),
    ("试点", "pilot", "poc"),
    ("案例", "case study"),
]
DEFAULTS = s.KnowledgeSettings(
    feedback=s.FeedbackPolicy(
        window=Duration(seconds=48 * HOUR),
        reminder_offsets=[Duration(seconds=-4 * HOUR), Duration(seconds=0)],
    ),
    iteration=s.IterationPolicy(
        retire_max_usage_rate=0.15,
        retire_min_negative_rate=0.40,
        return_to_review_count=3,
        min_feedback_count=5,
        new_card_grace_period=Duration(seconds=30 * 24 * HOUR),
        usage_basis=s.USAGE_BASIS_IMPRESSIONS,
        apply_mode=s.ITERATION_APPLY_MODE_AUTOMATIC,
        run_day_of_month=1,
        run_time=timeofday_pb2.TimeOfDay(hours=3),
    ),
    points=s.PointsPolicy(
        contribution_submitted=1,
        contribution_accepted=10,
        contributed_card_used=1,
        contributed_card_praised=2,
        monthly_use_points_cap_per_card=50,
    ),
    recommendation=s.RecommendationPolicy(
        default_count=3,
        newcomer_tenure=Duration(seconds=180 * 24 * HOUR),
        skip_recently_used=Duration(seconds=14 * 24 * HOUR),
        lift_min_sample=10,
        exploration_max_sample=10,
    ),
    scenarios=[s.Scenario(key=k, name_zh=zh, name_en=en) for k, zh, en in SCENARIOS],
    synonyms=[s.SynonymGroup(terms=list(group)) for group in SYNONYMS],
)
DEFAULT_TENURE = timedelta(days=180)
STORE = TenantSettings(s.KnowledgeSettings, DEFAULTS, tables=settings)
MAX_SCENARIOS = 200
MAX_SYNONYM_GROUPS = 500
MAX_TERMS = 10
MAX_TERM_CHARS = 40


def newcomer_tenure(settings: s.KnowledgeSettings) -> timedelta:
    """How long after their first deal a rep counts as a newcomer."""
    policy = settings.recommendation
    return policy.newcomer_tenure.ToTimedelta() if policy.HasField("newcomer_tenure") else DEFAULT_TENURE


async def current(uow: UnitOfWork) -> s.KnowledgeSettings:
    stored = await STORE.load(uow)
    value = s.KnowledgeSettings()
    value.CopyFrom(stored.value)
    if stored.updated_at is not None:
        value.audit.update_time.FromDatetime(stored.updated_at)
        value.audit.updated_by = stored.updated_by
    return value


async def scenario_keys(uow: UnitOfWork) -> frozenset[str]:
    return frozenset(sc.key for sc in (await STORE.get(uow)).scenarios)


def synonyms_of(settings: s.KnowledgeSettings) -> list[list[tuple[str, ...]]]:
    """Each synonym group's terms as segmented words, the way card text and queries are."""
    groups = []
    for group in settings.synonyms:
        alternatives = [tuple(tokens(term)) for term in group.terms]
        groups.append([a for a in alternatives if a])
    return groups


def _check(value: s.KnowledgeSettings) -> None:
    v = Violations()
    if len(value.scenarios) > MAX_SCENARIOS:
        v.add("settings.scenarios", f"at most {MAX_SCENARIOS}")
    keys = [sc.key for sc in value.scenarios]
    if len(set(keys)) != len(keys):
        v.add("settings.scenarios", "keys repeat")
    for i, sc in enumerate(value.scenarios):
        if not KEY.match(sc.key):
            v.add(f"settings.scenarios[{i}].key", "a lower_snake_case key")
        for name in ("name_zh", "name_en"):
            if len(getattr(sc, name)) > 100:
                v.add(f"settings.scenarios[{i}].{name}", "at most 100 characters")
    if len(value.synonyms) > MAX_SYNONYM_GROUPS:
        v.add("settings.synonyms", f"at most {MAX_SYNONYM_GROUPS} groups")
    for i, group in enumerate(value.synonyms):
        if not 2 <= len(group.terms) <= MAX_TERMS:
            v.add(f"settings.synonyms[{i}].terms", f"2-{MAX_TERMS} terms")
        for j, term in enumerate(group.terms):
            if not term.strip() or len(term) > MAX_TERM_CHARS:
                v.add(f"settings.synonyms[{i}].terms[{j}]", f"1-{MAX_TERM_CHARS} characters")
            elif not tokens(term):
                v.add(f"settings.synonyms[{i}].terms[{j}]", "has no letters or digits to search by")
    for name in ("retire_max_usage_rate", "retire_min_negative_rate"):
        rate = getattr(value.iteration, name)
        if not 0.0 <= rate <= 1.0:  # NaN fails too
            v.add(f"settings.iteration.{name}", "0..1")
    window = value.feedback.window.seconds
    if not HOUR <= window <= 14 * 24 * HOUR:
        v.add("settings.feedback.window", "1 hour to 14 days")
    if len(value.feedback.reminder_offsets) > 5:
        v.add("settings.feedback.reminder_offsets", "at most 5")
    for i, offset in enumerate(value.feedback.reminder_offsets):
        # Before the deadline no earlier than the use itself could be; after it, at most 14 days.
        if not -window < offset.seconds <= 14 * 24 * HOUR:
            v.add(
                f"settings.feedback.reminder_offsets[{i}]", "after the use and within 14 days of the deadline"
            )
    if not 1 <= value.iteration.run_day_of_month <= 28:
        v.add("settings.iteration.run_day_of_month", "1-28")
    _check_iteration_and_points(v, value)
    if not 1 <= value.recommendation.default_count <= 10:
        v.add("settings.recommendation.default_count", "1-10")
    for name in ("lift_min_sample", "exploration_max_sample"):
        if not 2 <= getattr(value.recommendation, name) <= 100_000:
            v.add(f"settings.recommendation.{name}", "2-100000 closed deals")
    v.raise_if_any("invalid knowledge settings")


def _check_iteration_and_points(v: Violations, value: s.KnowledgeSettings) -> None:
    """The monthly iteration's counts, grace, clock and zone; points per reason and the cap."""
    it = value.iteration
    if not 0 <= it.return_to_review_count <= 50:
        v.add("settings.iteration.return_to_review_count", "0-50")
    if not 0 <= it.min_feedback_count <= 10_000:
        v.add("settings.iteration.min_feedback_count", "0-10000")
    if not 0 <= it.new_card_grace_period.seconds <= 365 * 24 * HOUR:
        v.add("settings.iteration.new_card_grace_period", "0 to 365 days")
    if not (0 <= it.run_time.hours <= 23 and 0 <= it.run_time.minutes <= 59):
        v.add("settings.iteration.run_time", "a time of day")
    if it.time_zone:
        try:
            ZoneInfo(it.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            v.add("settings.iteration.time_zone", f"not an IANA time zone: {it.time_zone[:64]!r}")
    for name in (
        "contribution_submitted",
        "contribution_accepted",
        "contributed_card_used",
        "contributed_card_praised",
    ):
        if not 0 <= getattr(value.points, name) <= 1000:
            v.add(f"settings.points.{name}", "0-1000 points")
    if not 0 <= value.points.monthly_use_points_cap_per_card <= 100_000:
        v.add("settings.points.monthly_use_points_cap_per_card", "0-100000 (0 = no cap)")


async def update(
    uow: UnitOfWork, who: Principal, incoming: s.KnowledgeSettings, mask: FieldMask
) -> s.KnowledgeSettings:
    """Admin only; merged, then checked whole (so a partial update cannot leave it invalid)."""
    access.require_admin(who)
    before = await current(uow)
    merged = merge_update(before, incoming, mask, mask_field="update_mask")
    merged.ClearField("audit")
    _check(merged)
    await STORE.put(uow, merged, incoming.etag, who.user_id)
    return await current(uow)
