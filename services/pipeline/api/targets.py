"""Targets: the cascade of a period, signed by each node's owner, and weekly calibrations."""

from __future__ import annotations

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import target_pb2, types_pb2
from services.pipeline import target_calibrations, targets
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import bounded_lists, enum_name, enum_value, now, optional_date, ts
from services.pipeline.domain import targets as t
from services.pipeline.forecasting import check_scope
from services.pipeline.presenters import CALIBRATIONS, TARGETS
from services.pipeline.repositories.targets import (
    Calibrations,
    CalibrationSearch,
    TargetChanges,
    Targets,
    TargetSearch,
)
from services.pipeline.store_targets import TargetChangeRow
from services.pipeline.target_cascade import Cascade, cascade


def _period(p: types_pb2.SalesPeriod) -> targets.Period | None:
    """An optional period filter: unset, or a real month, quarter or year."""
    if not p.granularity and not (p.start_date.year or p.start_date.month or p.start_date.day):
        return None
    return targets.period_of(p, "filter.period")


def _level(value: int, field: str) -> str:
    name = enum_name(types_pb2.OrgLevel, value)
    if name and name not in t.LEVELS:
        raise InvalidArgument.field(field, "an org level")
    return name


def _statuses(values: list[int]) -> tuple[str, ...]:
    names = tuple(enum_name(target_pb2.TargetStatus, v) for v in values)
    if any(n not in ("DRAFT", "ASSIGNED", "COMMITTED") for n in names):
        raise InvalidArgument.field("filter.statuses", "target statuses")
    return names


def _reasons(values: list[int]) -> tuple[str, ...]:
    names = tuple(enum_name(target_pb2.DeviationReasonType, v) for v in values)
    if any(not n or n.startswith("UNKNOWN_") for n in names):
        raise InvalidArgument.field("filter.reason_types", "deviation reason types")
    return names


def _money(minor: int, currency: str) -> Money:
    return Money(amount_minor=minor, currency=currency)


def present_cascade(c: Cascade) -> target_pb2.TargetCascade:
    """The tree as computed: only targets the caller sees were put in it (target_cascade)."""
    out = target_pb2.TargetCascade(
        period=targets.period_proto(c.period.granularity.value, c.period.start, c.period.end)
    )

    def fill(into: target_pb2.TargetCascadeNode, node: t.CascadeNode) -> None:
        row = c.rows[node.node.target_id]
        into.target.CopyFrom(targets.document(row))
        into.display_name = (
            c.names.get(row.user_id, "") if row.level == "REP" else row.org_path.rsplit("/", 1)[-1]
        )
        if not into.display_name:
            into.display_name = row.user_id or "company"
        into.children_committed_amount.CopyFrom(_money(node.children_committed, c.currency))
        if node.attrition is not None:
            into.attrition_ratio = node.attrition
        into.won_amount.CopyFrom(_money(node.won, c.currency))
        into.weighted_forecast_amount.CopyFrom(_money(node.weighted, c.currency))
        if node.attainment is not None:
            into.attainment_ratio = node.attainment
        for child in node.children:
            fill(into.children.add(), child)

    fill(out.root, c.tree)
    for lv in c.levels:
        total = out.levels.add(
            level=enum_value(types_pb2.OrgLevel, lv.level),
            committed_amount=_money(lv.committed, c.currency),
            challenge_amount=_money(lv.challenge, c.currency),
        )
        if lv.retained is not None:
            total.retained_ratio = lv.retained
    return out


def _reason_counts(into: object, summary: t.ReasonSummary, currency: str) -> None:
    for r in summary.reasons:
        into.add(  # type: ignore[attr-defined]
            reason_type=enum_value(target_pb2.DeviationReasonType, r.reason),
            count=r.count,
            share=r.share,
            gap_amount=_money(r.gap, currency),
        )


class TargetChangePresenter:
    """Changes are read through their target (its visibility checked there); nothing is masked."""

    def present(self, viewer: Principal, item: TargetChangeRow) -> target_pb2.TargetChange:
        return target_pb2.TargetChange(
            change_id=item.change_id,
            target_id=item.target_id,
            action=enum_value(target_pb2.TargetChangeAction, item.action),
            field=item.field,
            old_value=item.old_value,
            new_value=item.new_value,
            changed_by=item.changed_by,
            change_time=ts(item.changed_at),
        )


CHANGES = TargetChangePresenter()


class TargetsApi(ApiBase):
    async def CreateTarget(self, request: pb.CreateTargetRequest, context: Ctx) -> pb.CreateTargetResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> target_pb2.Target:
            return TARGETS.present(who, await targets.create(uow, who, request.target, now()))

        return pb.CreateTargetResponse(target=await self.write(who, work))

    async def GetTarget(self, request: pb.GetTargetRequest, context: Ctx) -> pb.GetTargetResponse:
        who = call.principal()
        async with self.read(who) as uow:
            row = await targets.visible(uow, who, request.target_id)
        return pb.GetTargetResponse(target=TARGETS.present(who, row))

    async def ListTargets(self, request: pb.ListTargetsRequest, context: Ctx) -> pb.ListTargetsResponse:
        who = call.principal()
        bounded_lists(request)
        page = PageRequest.parse(request.page_size, request.page_token)
        fl = request.filter
        period = _period(fl.period)
        search = TargetSearch(
            granularity=period.granularity.value if period else "",
            period_start=period.start if period else None,
            level=_level(fl.level, "filter.level"),
            org_path=fl.org_path.strip("/"),
            user_id=fl.user_id,
            statuses=_statuses(list(fl.statuses)),
        )
        query = query_key("ListTargets", fl)
        async with self.read(who) as uow:
            found = await Targets(uow).page(search, who, page, query)
        return pb.ListTargetsResponse(
            targets=[TARGETS.present(who, r) for r in found.items], next_page_token=found.next_page_token
        )

    async def UpdateTarget(self, request: pb.UpdateTargetRequest, context: Ctx) -> pb.UpdateTargetResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> target_pb2.Target:
            row = await targets.update(uow, who, request.target, request.update_mask, now())
            return TARGETS.present(who, row)

        return pb.UpdateTargetResponse(target=await self.write(who, work))

    async def SignTarget(self, request: pb.SignTargetRequest, context: Ctx) -> pb.SignTargetResponse:
        who = call.principal()
        if not request.HasField("committed_amount"):
            raise InvalidArgument.field("committed_amount", "required: the committed amount you sign")

        async def work(uow: UnitOfWork) -> target_pb2.Target:
            row = await targets.sign(
                uow, who, request.target_id, request.committed_amount, request.statement, request.etag, now()
            )
            return TARGETS.present(who, row)

        return pb.SignTargetResponse(target=await self.write(who, work))

    async def ListTargetChanges(
        self, request: pb.ListTargetChangesRequest, context: Ctx
    ) -> pb.ListTargetChangesResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        query = query_key("ListTargetChanges", request.target_id)
        async with self.read(who) as uow:
            row = await targets.visible(uow, who, request.target_id)
            found = await TargetChanges(uow).page(row.target_id, page, query)
        return pb.ListTargetChangesResponse(
            changes=[CHANGES.present(who, c) for c in found.items], next_page_token=found.next_page_token
        )

    async def GetTargetCascade(
        self, request: pb.GetTargetCascadeRequest, context: Ctx
    ) -> pb.GetTargetCascadeResponse:
        who = call.principal()
        period = targets.period_of(request.period)
        if request.depth < 0:
            raise InvalidArgument.field("depth", "0 (all levels) or more")
        check_scope(who, request.org_path.strip("/"))
        async with self.read(who) as uow:
            found = await cascade(uow, who, period, request.org_path, request.depth)
        return pb.GetTargetCascadeResponse(cascade=present_cascade(found))

    async def CreateTargetCalibration(
        self, request: pb.CreateTargetCalibrationRequest, context: Ctx
    ) -> pb.CreateTargetCalibrationResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> target_pb2.TargetCalibration:
            row = await target_calibrations.calibrate(uow, who, request.calibration, now())
            return CALIBRATIONS.present(who, row)

        return pb.CreateTargetCalibrationResponse(calibration=await self.write(who, work))

    async def ListTargetCalibrations(
        self, request: pb.ListTargetCalibrationsRequest, context: Ctx
    ) -> pb.ListTargetCalibrationsResponse:
        who = call.principal()
        bounded_lists(request)
        page = PageRequest.parse(request.page_size, request.page_token)
        fl = request.filter
        check_scope(who, fl.scope.org_path.strip("/"))
        period = _period(fl.period)
        search = CalibrationSearch(
            target_id=fl.target_id,
            org_path=fl.scope.org_path.strip("/"),
            user_ids=tuple(fl.scope.user_ids),
            granularity=period.granularity.value if period else "",
            period_start=period.start if period else None,
            reasons=_reasons(list(fl.reason_types)),
            week_from=optional_date(fl.week_from, "filter.week_from"),
            week_to=optional_date(fl.week_to, "filter.week_to"),
        )
        query = query_key("ListTargetCalibrations", fl)
        async with self.read(who) as uow:
            found = await Calibrations(uow).page(search, who, page, query)
        return pb.ListTargetCalibrationsResponse(
            calibrations=[CALIBRATIONS.present(who, r) for r in found.items],
            next_page_token=found.next_page_token,
        )

    async def SummarizeDeviationReasons(
        self, request: pb.SummarizeDeviationReasonsRequest, context: Ctx
    ) -> pb.SummarizeDeviationReasonsResponse:
        who = call.principal()
        bounded_lists(request)
        org = request.scope.org_path.strip("/")
        check_scope(who, org)
        week_from = optional_date(request.week_from, "week_from")
        week_to = optional_date(request.week_to, "week_to")
        if week_from and week_to and week_from > week_to:
            raise InvalidArgument.field("week_from", "not after week_to")
        search = CalibrationSearch(
            org_path=org, user_ids=tuple(request.scope.user_ids), week_from=week_from, week_to=week_to
        )
        async with self.read(who) as uow:
            found = await target_calibrations.summarize(
                uow, who, search, now(), clusters=request.include_clusters
            )
        out = pb.SummarizeDeviationReasonsResponse(
            calibration_count=found.overall.calibrations, deviation_count=found.overall.deviations
        )
        currency = found.currency
        _reason_counts(out.reasons, found.overall, currency)
        for cl in found.clusters:
            out.clusters.add(
                label=cl.label,
                keywords=cl.keywords,
                count=cl.count,
                reason_types=[enum_value(target_pb2.DeviationReasonType, r) for r in cl.reasons],
                sample_calibration_ids=cl.samples,
            )
        for level, summary in found.levels:
            by = out.levels.add(
                level=enum_value(types_pb2.OrgLevel, level),
                calibration_count=summary.calibrations,
                deviation_count=summary.deviations,
            )
            _reason_counts(by.reasons, summary, currency)
        return out
