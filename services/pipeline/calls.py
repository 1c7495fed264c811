"""Forecast calls: submissions (a rep's or manager's call, a manager's adjustment), their re-homing
when a member moves, and locking them at a period's lock points. Never commits.

A submission is stored apart from the system figure (which is recorded beside it at
submit time), never edited and never deleted: the latest per (period, level, kind,
subject) is the one in force. A lock copies, for every rep of the lock's snapshot and
every subject with a submission, the call and adjustment in force with the system
figure; the copies are immutable and accuracy is measured against them.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from sqlalchemy import ColumnElement, or_
from ulid import ULID

from kit.auth import Principal
from kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Violations,
)
from kit.errors import PreconditionViolation as Missing
from kit.resources import UnitOfWork, sanitize_create
from salesops.pipeline.v1 import forecast_pb2, settings_pb2, types_pb2
from services.pipeline import access, pipeline_settings
from services.pipeline.convert import bounded_lists, date_proto, enum_name, enum_value, optional_date, ts
from services.pipeline.deals import MAX_AMOUNT_MINOR
from services.pipeline.domain import accuracy as acc
from services.pipeline.domain import forecast as f
from services.pipeline.repositories.calls import CallLocks, CallSums, CoachingViews, Submissions
from services.pipeline.repositories.deals import in_org, visible_where
from services.pipeline.repositories.forecast import ForecastSums
from services.pipeline.repositories.members import MemberProfiles
from services.pipeline.store import DealRow
from services.pipeline.store_calls import CallLockRow, LockedCallRow, SubmissionChangeRow, SubmissionRow

KINDS = {"CALL", "ADJUSTMENT"}
UNIT_LEVELS = (f.Level.REGION, f.Level.CITY, f.Level.TEAM)


def period_of(period: types_pb2.SalesPeriod, prefix: str = "period") -> tuple[f.Granularity, date, date]:
    name = enum_name(types_pb2.PeriodGranularity, period.granularity)
    v = Violations()
    if name not in f.Granularity.__members__:
        v.add(f"{prefix}.granularity", "one of WEEK, MONTH, QUARTER, YEAR")
    day = optional_date(period.start_date, f"{prefix}.start_date")
    if day is None:
        v.add(f"{prefix}.start_date", "required: any day inside the period")
    v.raise_if_any("invalid period")
    assert day is not None
    granularity = f.Granularity[name]
    return (granularity, *f.period_bounds(granularity, day))


def _digest(s: forecast_pb2.ForecastSubmission) -> str:
    return hashlib.sha256(s.SerializeToString(deterministic=True)).hexdigest()


def _check_input(s: forecast_pb2.ForecastSubmission, currency: str) -> tuple[f.Level, str]:
    v = Violations()
    level = enum_name(types_pb2.OrgLevel, s.level)
    if level not in f.Level.__members__:
        v.add("submission.level", "ORG_LEVEL_REP for a rep's call, else the unit's level")
    kind = enum_name(forecast_pb2.SubmissionKind, s.kind) or "CALL"
    if kind not in KINDS:
        v.add("submission.kind", "CALL or ADJUSTMENT")
    for name, money in (("commit_amount", s.commit_amount), ("best_case_amount", s.best_case_amount)):
        if name == "best_case_amount" and not s.HasField("best_case_amount"):
            continue
        if money.currency != currency:
            v.add(f"submission.{name}.currency", f"the tenant's base currency {currency}")
        if not 0 <= money.amount_minor <= MAX_AMOUNT_MINOR:
            v.add(f"submission.{name}", f"0 to {MAX_AMOUNT_MINOR} minor units")
    if s.HasField("best_case_amount") and s.best_case_amount.amount_minor < s.commit_amount.amount_minor:
        v.add("submission.best_case_amount", "at least the commit amount (best case includes commit)")
    if len(s.note) > 2000:
        v.add("submission.note", "at most 2000 characters")
    if len(s.submission_id) > 64:
        v.add("submission.submission_id", "at most 64 characters")
    if any(not d or len(d) > 64 for d in s.commit_deal_ids):
        v.add("submission.commit_deal_ids", "deal ids of 1-64 characters")
    if len(s.org_path.strip("/")) > 200 or len(s.subject_user_id) > 128:
        v.add("submission.org_path", "at most 200 characters (subject_user_id 128)")
    v.raise_if_any("invalid forecast submission")
    return f.Level[level], kind


async def _subject(
    uow: UnitOfWork, who: Principal, s: forecast_pb2.ForecastSubmission, level: f.Level, kind: str
) -> tuple[str, str]:
    """(subject key, org path) after the access rules: reps call for themselves; managers call for
    their units and adjust the calls of those below them; admins anything."""
    if level is f.Level.REP:
        if kind == "CALL":
            if s.subject_user_id and s.subject_user_id != who.user_id:
                raise PermissionDenied(
                    "a call is the submitter's own; managers submit ADJUSTMENT", reason="OWN_CALL"
                )
            profile = await MemberProfiles(uow).find(who.user_id)
            return who.user_id, profile.org_path if profile is not None else who.org.strip("/")
        if not s.subject_user_id:
            raise InvalidArgument.field(
                "submission.subject_user_id", "required: the rep whose call is adjusted"
            )
        profile = await MemberProfiles(uow).find(s.subject_user_id)
        if profile is None or not (access.sees_all(who) or access.manages(who, profile.org_path)):
            raise NotFound("pipeline.MemberProfile", s.subject_user_id)
        if s.subject_user_id == who.user_id:
            raise PermissionDenied("an adjustment is of someone else's call", reason="OWN_ADJUSTMENT")
        return s.subject_user_id, profile.org_path
    org = s.org_path.strip("/")
    depth = len(f.segments(org))
    if depth != level.value:
        segments = "no org path" if level is f.Level.COMPANY else f"an org path of {level.value} segment(s)"
        raise InvalidArgument.field("submission.org_path", f"{level.name} is {segments}")
    if not access.can_assign(who, org) or (level is f.Level.COMPANY and not access.sees_all(who)):
        raise PermissionDenied(
            "only a manager of the unit or an admin submits its call", reason="NOT_MANAGER"
        )
    return org, org


async def _require_coaching(
    uow: UnitOfWork, who: Principal, s: forecast_pb2.ForecastSubmission, start: date, today: date
) -> bool:
    """Reps in their first months submit after seeing the coaching view (returns whether it was)."""
    profile = await MemberProfiles(uow).find(who.user_id)
    settings = await pipeline_settings.current(uow)
    months = settings.coaching_tenure_months or 6
    started = profile_start(profile.body if profile is not None else b"")
    in_coaching = started is not None and tenure_months(started, today) < months
    if s.coaching_view_id:
        view = await CoachingViews(uow).find(s.coaching_view_id)
        if view is None or view.user_id != who.user_id or view.period_start != start:
            raise NotFound("pipeline.ForecastCoachingView", s.coaching_view_id)
        return True
    if in_coaching:
        raise FailedPrecondition(
            f"reps in their first {months} months look at the coaching view before submitting",
            [
                Missing(
                    "COACHING_VIEW", "coaching_view_id", "call GetForecastCoachingView for this period first"
                )
            ],
            reason="COACHING_VIEW_REQUIRED",
        )
    return False


def profile_start(body: bytes) -> date | None:
    if not body:
        return None
    p = settings_pb2.MemberProfile.FromString(body)
    if not p.HasField("start_date") or not p.start_date.year:
        return None
    try:
        return date(p.start_date.year, p.start_date.month or 1, p.start_date.day or 1)
    except ValueError:  # a directory's impossible date (Feb 30) counts as unknown, never a crash
        return None


def tenure_months(start: date, today: date) -> int:
    """Whole months from `start` to `today`."""
    months = (today.year - start.year) * 12 + today.month - start.month
    return max(months - (1 if today.day < start.day else 0), 0)


async def _system(uow: UnitOfWork, level: f.Level, key: str, start: date, end: date) -> tuple[int, int]:
    """(weighted + won, open effective COMMIT + won) of the subject now: SQL sums."""
    where: list[ColumnElement[bool]] = (
        [DealRow.owner_user_id == key]
        if level is f.Level.REP
        else ([in_org(DealRow.org_path, key)] if key else [])
    )
    totals, _ = f.fold(await ForecastSums(uow).by_owner(where, start, end), f.Level.COMPANY)
    commit = totals.categories.get("COMMIT")
    return totals.weighted + totals.won_amount, (commit.amount if commit else 0) + totals.won_amount


async def create_submission(
    uow: UnitOfWork, who: Principal, incoming: forecast_pb2.ForecastSubmission, at: datetime, today: date
) -> SubmissionRow:
    bounded_lists(incoming, "submission")
    currency = await pipeline_settings.base_currency(uow)
    s = sanitize_create(incoming)
    s.coaching_view_id = incoming.coaching_view_id  # INPUT_ONLY: kept for the check, never stored
    level, kind = _check_input(s, currency)
    granularity, start, end = period_of(s.period, "submission.period")
    key, org = await _subject(uow, who, s, level, kind)
    repo = Submissions(uow)
    digest = _digest(s)
    if s.submission_id and (earlier := await repo.find(s.submission_id)) is not None:
        if earlier.request_digest == digest and earlier.submitter_user_id == who.user_id:
            return earlier
        raise AlreadyExists(repo.resource, s.submission_id, "another submission has this id")
    coached = False
    if level is f.Level.REP and kind == "CALL":
        coached = await _require_coaching(uow, who, s, start, today)
    weighted, commit = await _system(uow, level, key, start, end)
    body = forecast_pb2.ForecastSubmission()
    body.CopyFrom(s)
    body.ClearField("coaching_view_id")
    body.coached = coached
    row = SubmissionRow(
        submission_id=s.submission_id or str(ULID()),
        granularity=granularity.value,
        period_start=start,
        period_end=end,
        level=level.name,
        kind=kind,
        subject_key=key,
        org_path=org,
        submitter_user_id=who.user_id,
        commit_minor=s.commit_amount.amount_minor,
        best_case_minor=s.best_case_amount.amount_minor if s.HasField("best_case_amount") else 0,
        currency=currency,
        system_weighted_minor=weighted,
        system_commit_minor=commit,
        submitted_at=at,
        request_digest=digest,
        body=body.SerializeToString(deterministic=True),
    )
    await repo.add(row)
    await repo.record(
        SubmissionChangeRow(
            change_id=str(ULID()),
            submission_id=row.submission_id,
            field="created",
            new_value=f"{kind} {level.name} {row.subject_key}",
            changed_by=who.user_id,
            changed_at=at,
            reason=s.note[:300],
        )
    )
    return row


async def rehome_member(uow: UnitOfWork, user_id: str, org_path: str, by: str, at: datetime) -> int:
    """A member moved to `org_path`: their calls and the adjustments of them follow, audited."""
    repo = Submissions(uow)
    moved = await repo.of_rep_elsewhere(user_id, org_path)
    if not moved:
        return 0
    await repo.record(
        *(
            SubmissionChangeRow(
                change_id=str(ULID()),
                submission_id=r.submission_id,
                field="org_path",
                old_value=r.org_path,
                new_value=org_path,
                changed_by=by,
                changed_at=at,
                reason=f"member profile of {user_id} moved to {org_path or '(company)'}",
            )
            for r in moved
        )
    )
    await repo.rehome([r.submission_id for r in moved], org_path)
    return len(moved)


def submissions_visible_to(who: Principal) -> ColumnElement[bool]:
    """Own calls and submissions, adjustments of one's call, the units one manages; admins all."""
    S = SubmissionRow
    return or_(visible_where(who, S.subject_key, S.org_path), S.submitter_user_id == who.user_id)


def can_view_submission(who: Principal, row: SubmissionRow) -> bool:
    """The pure twin of `submissions_visible_to`."""
    return access.can_view(who, row.subject_key, row.org_path) or row.submitter_user_id == who.user_id


async def lock_calls(
    uow: UnitOfWork,
    granularity: f.Granularity,
    start: date,
    end: date,
    point: acc.LockPoint,
    snapshot_id: str,
    at: datetime,
    local_day: date,
) -> tuple[CallLockRow, bool]:
    """Lock the period's calls at `point` (once: a second call returns the first lock, False)."""
    locks = CallLocks(uow)
    if (earlier := await locks.at_point(granularity.value, start, point.value)) is not None:
        return earlier, False
    lock = CallLockRow(
        lock_id=str(ULID()),
        granularity=granularity.value,
        period_start=start,
        period_end=end,
        lock_point=point.value,
        lock_date=local_day,
        locked_at=at,
        snapshot_id=snapshot_id,
        currency=await pipeline_settings.base_currency(uow),
    )
    await locks.add(lock)
    system = await CallSums(uow).system_by_owner(snapshot_id)
    in_force = await Submissions(uow).in_force(granularity.value, start, at)
    subs = {(r.level, r.kind, r.subject_key): r for r in in_force}
    rows: dict[tuple[str, str], LockedCallRow] = {}

    def row_for(level: str, key: str, org: str) -> LockedCallRow:
        return rows.setdefault(
            (level, key),
            LockedCallRow(
                lock_id=lock.lock_id,
                level=level,
                subject_key=key,
                org_path=org,
                system_weighted_minor=0,
                system_commit_minor=0,
                call_submission_id="",
                call_by="",
                adjustment_submission_id="",
                adjusted_by="",
            ),
        )

    for fig in system:
        r = row_for("REP", fig.owner, fig.org_path)
        r.system_weighted_minor += fig.weighted
        r.system_commit_minor += fig.commit
    for (level, kind, key), sub in subs.items():
        r = row_for(level, key, sub.org_path)
        if kind == "CALL":
            r.call_submission_id, r.call_by = sub.submission_id, sub.submitter_user_id
            r.call_commit_minor, r.call_best_case_minor = sub.commit_minor, sub.best_case_minor
            r.org_path = sub.org_path
        else:
            r.adjustment_submission_id, r.adjusted_by = sub.submission_id, sub.submitter_user_id
            r.adjusted_commit_minor = sub.commit_minor
    for (level, key), r in rows.items():
        if level != "REP":  # a unit's system figure: its reps' (an SQL aggregate per rep, folded here)
            inside = [fig for fig in system if fig.org_path == key or fig.org_path.startswith(key + "/")]
            r.system_weighted_minor = sum(x.weighted for x in inside)
            r.system_commit_minor = sum(x.commit for x in inside)
    await locks.add_calls(list(rows.values()))
    return lock, True


def present_submission(
    row: SubmissionRow, latest: bool, changes: list[SubmissionChangeRow]
) -> forecast_pb2.ForecastSubmission:
    msg = forecast_pb2.ForecastSubmission.FromString(row.body)
    msg.submission_id, msg.org_path, msg.submitter_user_id = (
        row.submission_id,
        row.org_path,
        row.submitter_user_id,
    )
    msg.kind = enum_value(forecast_pb2.SubmissionKind, row.kind)
    msg.level = enum_value(types_pb2.OrgLevel, row.level)
    msg.subject_user_id = row.subject_key if row.level == "REP" else ""
    msg.period.granularity = enum_value(types_pb2.PeriodGranularity, row.granularity)
    msg.period.start_date.CopyFrom(date_proto(row.period_start))
    msg.period.end_date.CopyFrom(date_proto(row.period_end))
    msg.system_weighted_amount.amount_minor, msg.system_weighted_amount.currency = (
        row.system_weighted_minor,
        row.currency,
    )
    msg.system_commit_amount.amount_minor, msg.system_commit_amount.currency = (
        row.system_commit_minor,
        row.currency,
    )
    msg.latest = latest
    msg.submit_time.CopyFrom(ts(row.submitted_at))
    for c in changes:
        msg.history.add(
            field=c.field,
            old_value=c.old_value,
            new_value=c.new_value,
            changed_by=c.changed_by,
            change_time=ts(c.changed_at),
            reason=c.reason,
        )
    return msg


__all__ = [
    "can_view_submission",
    "create_submission",
    "lock_calls",
    "period_of",
    "present_submission",
    "profile_start",
    "rehome_member",
    "submissions_visible_to",
    "tenure_months",
]
