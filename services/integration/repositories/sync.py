"""Every query on sync jobs, runs, synced records, lag alerts and explanation requests."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database
from kit.resources import Page, PageRequest, Repository, Sort, query_key
from services.integration.store import ConnectorRow
from services.integration.store_sync import (
    SyncJobRow,
    SyncLagAlertRow,
    SyncLagRequestRow,
    SyncRecordRow,
    SyncRunRow,
)


class SyncJobs(Repository[SyncJobRow]):
    model, resource, key = SyncJobRow, "integration.SyncJob", ("sync_job_id",)

    async def by_kind(self, connector_id: str, data_kind: int) -> SyncJobRow | None:
        return await self.session.scalar(
            select(SyncJobRow).where(
                SyncJobRow.connector_id == connector_id, SyncJobRow.data_kind == data_kind
            )
        )

    async def of_connector(self, connector_id: str) -> list[SyncJobRow]:
        return list(
            await self.session.scalars(select(SyncJobRow).where(SyncJobRow.connector_id == connector_id))
        )

    async def page(
        self, connector_id: str, data_kind: int, lagging_only: bool, page: PageRequest
    ) -> Page[SyncJobRow]:
        where: list[ColumnElement[bool]] = []
        if connector_id:
            where.append(SyncJobRow.connector_id == connector_id)
        if data_kind:
            where.append(SyncJobRow.data_kind == data_kind)
        if lagging_only:  # lagging = an alert is open (it opens past the threshold, resolves on catching up)
            where.append(SyncJobRow.open_lag_alert_id != "")
        # Documented order: display name, then id.
        order = [Sort(SyncJobRow.display_name), Sort(SyncJobRow.sync_job_id)]
        return await self.list(
            where, order, page, query=query_key("sync_jobs", connector_id, data_kind, lagging_only)
        )


class SyncRuns(Repository[SyncRunRow]):
    model, resource, key = SyncRunRow, "integration.SyncRun", ("run_id",)
    version = "fetched"  # runs are written by their own run only; no etag

    async def page(
        self, sync_job_id: str, connector_id: str, states: Sequence[int], page: PageRequest
    ) -> Page[SyncRunRow]:
        where: list[ColumnElement[bool]] = []
        if sync_job_id:
            where.append(SyncRunRow.sync_job_id == sync_job_id)
        if connector_id:
            where.append(SyncRunRow.connector_id == connector_id)
        if states:
            where.append(SyncRunRow.state.in_(list(states)))
        # Documented order: newest first, the ULID breaking ties.
        order = [Sort(SyncRunRow.started_at, descending=True), Sort(SyncRunRow.run_id, descending=True)]
        return await self.list(
            where, order, page, query=query_key("sync_runs", sync_job_id, connector_id, sorted(states))
        )


class SyncRecords(Repository[SyncRecordRow]):
    model, resource, key = (
        SyncRecordRow,
        "integration.SyncRecord",
        ("connector_id", "data_kind", "external_id"),
    )

    async def held(self, connector_id: str, data_kind: int, ids: Sequence[str]) -> dict[str, SyncRecordRow]:
        if not ids:
            return {}
        rows = await self.session.scalars(
            select(SyncRecordRow).where(
                SyncRecordRow.connector_id == connector_id,
                SyncRecordRow.data_kind == data_kind,
                SyncRecordRow.external_id.in_(list(ids)),
            )
        )
        return {r.external_id: r for r in rows}


class SyncLagAlerts(Repository[SyncLagAlertRow]):
    model, resource, key = SyncLagAlertRow, "integration.SyncLagAlert", ("alert_id",)
    version = "max_lag_seconds"  # alerts change only with their job's row (which has the etag)

    async def page(
        self,
        states: Sequence[int],
        requested_user: str,
        sync_job_id: str,
        connector_id: str,
        page: PageRequest,
    ) -> Page[SyncLagAlertRow]:
        where: list[ColumnElement[bool]] = [SyncLagAlertRow.state.in_(list(states))]
        if sync_job_id:
            where.append(SyncLagAlertRow.sync_job_id == sync_job_id)
        if connector_id:
            where.append(SyncLagAlertRow.connector_id == connector_id)
        if requested_user:
            where.append(
                exists().where(
                    SyncLagRequestRow.tenant_id == SyncLagAlertRow.tenant_id,
                    SyncLagRequestRow.alert_id == SyncLagAlertRow.alert_id,
                    SyncLagRequestRow.user_id == requested_user,
                )
            )
        # Documented order: newest first.
        order = [
            Sort(SyncLagAlertRow.detected_at, descending=True),
            Sort(SyncLagAlertRow.alert_id, descending=True),
        ]
        key = query_key("sync_lag_alerts", sorted(states), requested_user, sync_job_id, connector_id)
        return await self.list(where, order, page, query=key)


class SyncLagRequests(Repository[SyncLagRequestRow]):
    model, resource, key = SyncLagRequestRow, "integration.LagExplanationRequest", ("alert_id", "user_id")
    version = "reason"

    async def of_alerts(self, alert_ids: Sequence[str]) -> dict[str, list[SyncLagRequestRow]]:
        out: dict[str, list[SyncLagRequestRow]] = {a: [] for a in alert_ids}
        if not alert_ids:
            return out
        rows = await self.session.scalars(
            select(SyncLagRequestRow)
            .where(SyncLagRequestRow.alert_id.in_(list(alert_ids)))
            .order_by(SyncLagRequestRow.user_id)
        )
        for r in rows:
            out[r.alert_id].append(r)
        return out


async def jobs_with_connectors(db: Database) -> list[tuple[str, SyncJobRow, ConnectorRow]]:
    """Every job of every tenant with its connector (a cross-tenant read: the worker's schedule repair)."""
    async with db.system_session() as session:
        rows = await session.execute(
            select(SyncJobRow, ConnectorRow).join(
                ConnectorRow,
                (ConnectorRow.tenant_id == SyncJobRow.tenant_id)
                & (ConnectorRow.connector_id == SyncJobRow.connector_id),
            )
        )
        return [(job.tenant_id, job, conn) for job, conn in rows.all()]


async def connectors_of_kind(session: AsyncSession, kind: int) -> list[ConnectorRow]:
    """The tenant's connectors of one kind (CheckStock picks the only enabled ERP one)."""
    return list(await session.scalars(select(ConnectorRow).where(ConnectorRow.kind == kind)))
