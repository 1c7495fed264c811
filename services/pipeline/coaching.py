"""The coaching view a rep in their first months sees before submitting a call: peers' cycle times,
stage dwell and conversion, and how the rep's own deals of the period compare. Never commits.

Peers are the members of the rep's team past the coaching months (widened to the parent unit
when the team has none); their deals closed within the lookback window are measured in SQL.
A deal's peer-typical close date is today plus the peers' median time from its stage to a win;
the view is stored (its id is what CreateForecastSubmission asks a new rep to quote).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from ulid import ULID

from kit.auth import Principal
from kit.errors import NotFound
from kit.resources import UnitOfWork
from salesops.common.v1.types_pb2 import Role
from salesops.pipeline.v1 import forecast_pb2, settings_pb2, types_pb2
from services.pipeline import access, pipeline_settings, stage_models
from services.pipeline.accuracy import local_today
from services.pipeline.calls import profile_start, tenure_months
from services.pipeline.convert import date_proto, enum_value, ts
from services.pipeline.domain import forecast as f
from services.pipeline.repositories.calls import CoachingViews
from services.pipeline.repositories.coaching import CoachingSums, unit_members
from services.pipeline.repositories.members import MemberProfiles
from services.pipeline.store import DealRow
from services.pipeline.store_calls import CoachingViewRow

DAY = 86_400.0
SELLERS = (Role.ROLE_REP, Role.ROLE_UNSPECIFIED)  # managers in the unit are not peers


def _duration(into: object, seconds: float | None) -> None:
    if seconds is not None:
        into.FromTimedelta(timedelta(seconds=round(seconds)))  # type: ignore[attr-defined]


async def _peers(
    uow: UnitOfWork, user_id: str, org_path: str, months: int, today: date
) -> tuple[str, list[str]]:
    """(peer org path, peers): the team's seasoned members, else the parent unit's."""
    parts = f.segments(org_path)
    while parts:
        path = "/".join(parts)
        peers = [
            m.user_id
            for m in await unit_members(uow, path)
            if m.user_id != user_id
            and settings_pb2.MemberProfile.FromString(m.body).role in SELLERS
            and ((started := profile_start(m.body)) is None or tenure_months(started, today) >= months)
        ]
        if peers:
            return path, peers
        parts = parts[:-1]
    return org_path, []


def hint(deal: DealRow, stage_name: str, days_ahead: int, remaining_days: int | None) -> str:
    if remaining_days is None:
        return "No peer history for this stage yet."
    if days_ahead > 7:
        advice = "; consider BEST_CASE rather than COMMIT" if deal.forecast_category == "COMMIT" else ""
        return f"Peers need {remaining_days} more days from {stage_name}: your date is {days_ahead} days early{advice}."
    if days_ahead < -7:
        return (
            f"Peers close from {stage_name} in {remaining_days} days: your date is {-days_ahead} days later."
        )
    return f"In line with peers ({remaining_days} days from {stage_name})."


async def coaching_view(
    uow: UnitOfWork, who: Principal, user_id: str, granularity: f.Granularity, day: date, at: datetime
) -> forecast_pb2.ForecastCoachingView:
    target = user_id or who.user_id
    profile = await MemberProfiles(uow).find(target)
    if profile is None or not (
        target == who.user_id or access.sees_all(who) or access.manages(who, profile.org_path)
    ):
        raise NotFound(MemberProfiles.resource, target)
    settings = await pipeline_settings.current(uow)
    months = settings.coaching_tenure_months or 6
    lookback = settings.coaching_lookback_months or 12
    today = await local_today(uow, at)
    start, end = f.period_bounds(granularity, day)
    started = profile_start(profile.body)
    tenure = tenure_months(started, today) if started else 0
    view = forecast_pb2.ForecastCoachingView(
        coaching_view_id=str(ULID()),
        user_id=target,
        tenure_months=tenure,
        in_coaching_period=started is not None and tenure < months,
        generate_time=ts(at),
    )
    if started is not None:
        view.start_date.CopyFrom(date_proto(started))
    view.period.granularity = enum_value(types_pb2.PeriodGranularity, granularity.value)
    view.period.start_date.CopyFrom(date_proto(start))
    view.period.end_date.CopyFrom(date_proto(end))
    peer_path, peers = await _peers(uow, target, profile.org_path, months, today)
    view.peer_org_path, view.peer_count = peer_path, len(peers)
    sums = CoachingSums(uow)
    since = at - timedelta(days=round(lookback * 30.44))
    to_win: dict[str, float | None] = {}
    if peers:
        n_won, n_closed, median, p75 = await sums.cycle(peers, since)
        _duration(view.peer_median_cycle_time, median)
        _duration(view.peer_p75_cycle_time, p75)
        view.peer_win_ratio = n_won / n_closed if n_closed else 0.0
        by_stage = {s.stage_id: s for s in await sums.stages(peers, since)}
        model = await stage_models.current(uow)
        for st in model.stages:
            fig = by_stage.get(st.stage_id)
            bench = view.stages.add(stage_id=st.stage_id)
            if fig is not None:
                bench.sample_size, bench.peer_win_ratio = (
                    fig.entered,
                    fig.won / fig.entered if fig.entered else 0.0,
                )
                _duration(bench.peer_median_dwell, fig.median_dwell)
                _duration(bench.peer_p75_dwell, fig.p75_dwell)
                to_win[st.stage_id] = fig.median_to_win
        names = {st.stage_id: st.display_name or st.stage_id for st in model.stages}
    else:
        names = {}
    for deal in await sums.open_deals(target, start, end):
        remaining = to_win.get(deal.stage_id)
        days = round(remaining / DAY) if remaining is not None else None
        typical = today + timedelta(days=days) if days is not None else None
        ahead = (typical - deal.expected_close_date).days if typical is not None else 0
        out = view.deals.add(
            deal_id=deal.deal_id,
            title=deal.title,
            stage_id=deal.stage_id,
            forecast_category=enum_value(types_pb2.ForecastCategory, deal.forecast_category),
            expected_close_date=date_proto(deal.expected_close_date),
            days_ahead_of_peers=ahead,
            hint=hint(deal, names.get(deal.stage_id, deal.stage_id), ahead, days),
        )
        out.amount.amount_minor, out.amount.currency = deal.amount_minor, deal.currency
        if typical is not None:
            out.peer_typical_close_date.CopyFrom(date_proto(typical))
    await CoachingViews(uow).add(
        CoachingViewRow(
            coaching_view_id=view.coaching_view_id,
            user_id=target,
            granularity=granularity.value,
            period_start=start,
            in_coaching_period=view.in_coaching_period,
            peer_count=len(peers),
            generated_at=at,
        )
    )
    return view


__all__ = ["coaching_view", "hint"]
