"""CheckStock over gRPC against a loopback ERP (availability, restock date, substitutes), its
fallback to the last STOCK sync, and who may do what with sync jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Struct

from deploy.local.infra import free_port
from kit.net import OutboundPolicy, SafeClient
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import stock_pb2 as st
from salesops.integration.v1 import sync_pb2 as s
from services.integration import demo_erp
from services.integration.store import transactions
from services.integration.sync_activities import drive
from services.integration.sync_workflows import SyncInput
from tests.integration.conftest import Integration

NOW = datetime.now(UTC)


def erp_connector(base_url: str, connector_id: str = "erp-1") -> c.Connector:
    settings = Struct()
    settings.update({"base_url": base_url})
    return c.Connector(
        connector_id=connector_id,
        display_name="ERP",
        kind=c.CONNECTOR_KIND_ERP,
        provider="erp_http",
        settings=settings,
        secrets={"api_key": demo_erp.DEMO_API_KEY},
    )


@pytest.fixture
async def erp(integration: Integration) -> AsyncIterator[demo_erp.ErpData]:
    data = demo_erp.demo_data(NOW)
    async with demo_erp.serve(data, free_port()) as url:
        await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=erp_connector(url)))
        await integration.call("EnableConnector", pb.EnableConnectorRequest(connector_id="erp-1"))
        yield data


def lines(*pairs: tuple[str, int]) -> list[st.StockCheckLine]:
    return [st.StockCheckLine(sku=k, quantity=q) for k, q in pairs]


async def test_check_stock_says_available_short_discontinued_and_unknown_with_substitutes(
    integration: Integration, erp: demo_erp.ErpData
) -> None:
    req = pb.CheckStockRequest(
        lines=lines(("PMP-200-A", 50), ("PMP-300-B", 20), ("VLV-50", 2), ("NOPE-1", 1)), deal_id="D-1"
    )
    resp = await integration.call("CheckStock", req, user="rep-a1")  # reps check stock for their deals
    by = {line.sku: line for line in resp.lines}
    assert [line.sku for line in resp.lines] == ["PMP-200-A", "PMP-300-B", "VLV-50", "NOPE-1"]
    assert by["PMP-200-A"].status == st.STOCK_STATUS_AVAILABLE and by["PMP-200-A"].available_quantity == 52
    short = by["PMP-300-B"]
    assert short.status == st.STOCK_STATUS_PARTIAL and short.available_quantity == 8
    restock = NOW.date() + timedelta(days=12)
    assert (short.restock_date.year, short.restock_date.month, short.restock_date.day) == (
        restock.year,
        restock.month,
        restock.day,
    )
    assert [x.sku for x in short.substitutes] == ["PMP-200-A"]
    assert short.substitutes[0].reason == st.SUBSTITUTE_REASON_SAME_FAMILY
    assert short.substitutes[0].unit_price_delta.amount_minor == -300_000
    gone = by["VLV-50"]
    assert gone.status == st.STOCK_STATUS_DISCONTINUED
    assert [(x.sku, x.reason) for x in gone.substitutes] == [("VLV-50S", st.SUBSTITUTE_REASON_SUCCESSOR)]
    assert by["NOPE-1"].status == st.STOCK_STATUS_UNKNOWN_SKU
    assert not resp.all_available and resp.source == st.STOCK_DATA_SOURCE_LIVE

    # Only some warehouses considered.
    only_bj = await integration.call(
        "CheckStock", pb.CheckStockRequest(lines=lines(("PMP-200-A", 20)), warehouse_codes=["BJ02"])
    )
    assert only_bj.lines[0].status == st.STOCK_STATUS_PARTIAL and only_bj.lines[0].available_quantity == 12

    # Bad input: typed, every problem at once; another tenant has no ERP connector.
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await integration.call("CheckStock", pb.CheckStockRequest(lines=lines(("", 0))))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await integration.call(
            "CheckStock",
            pb.CheckStockRequest(lines=lines(("PMP-200-A", 1)), connector_id="erp-1"),
            tenant="acme",
        )
    assert other.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_unreachable_erp_falls_back_to_the_stock_sync_or_is_unavailable(
    integration: Integration, erp: demo_erp.ErpData
) -> None:
    erp.fail_next = 100
    req = pb.CheckStockRequest(lines=lines(("PMP-300-B", 5)))
    with pytest.raises(grpc.aio.AioRpcError) as down:
        await integration.call("CheckStock", req)
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE

    # A STOCK sync job ran while the ERP was up: its records answer, marked SNAPSHOT.
    erp.fail_next = 0
    job = s.SyncJob(
        sync_job_id="job-stock",
        connector_id="erp-1",
        data_kind=s.SYNC_DATA_KIND_STOCK,
        schedule=s.SyncSchedule(interval=Duration(seconds=3600)),
    )
    with pytest.raises(
        grpc.aio.AioRpcError
    ) as pending:  # no workflow engine in this test: saved, schedule pending
        await integration.call("CreateSyncJob", pb.CreateSyncJobRequest(sync_job=job))
    assert pending.value.code() == grpc.StatusCode.UNAVAILABLE
    client = SafeClient(OutboundPolicy.parse("127.0.0.1"))
    out = await drive(
        transactions(integration.db), client, SyncInput("demo", "job-stock", s.SYNC_TRIGGER_MANUAL)
    )
    assert out.state == s.SYNC_RUN_STATE_SUCCEEDED and out.fetched == 4
    erp.fail_next = 100
    resp = await integration.call("CheckStock", req)
    assert resp.source == st.STOCK_DATA_SOURCE_SNAPSHOT and resp.HasField("as_of_time")
    assert resp.lines[0].status == st.STOCK_STATUS_AVAILABLE and resp.lines[0].available_quantity == 8


async def test_admins_manage_sync_jobs_and_other_tenants_see_nothing(
    integration: Integration, erp: demo_erp.ErpData
) -> None:
    job = s.SyncJob(
        sync_job_id="job-ship",
        connector_id="erp-1",
        data_kind=s.SYNC_DATA_KIND_SHIPMENTS,
        schedule=s.SyncSchedule(interval=Duration(seconds=1800)),
        owner_user_id="ops-li",
    )
    with pytest.raises(grpc.aio.AioRpcError) as rep:
        await integration.call("CreateSyncJob", pb.CreateSyncJobRequest(sync_job=job), user="rep-a1")
    assert rep.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError):
        await integration.call(
            "CreateSyncJob", pb.CreateSyncJobRequest(sync_job=job)
        )  # saved, schedule pending
    got = (await integration.call("GetSyncJob", pb.GetSyncJobRequest(sync_job_id="job-ship"))).sync_job
    assert got.status == s.SYNC_JOB_STATUS_NEVER_RUN and got.display_name == "ERP / shipments"
    # One job per connector and kind; a finance-only kind on ERP is fine, conversations are not.
    twin = s.SyncJob()
    twin.CopyFrom(job)
    twin.sync_job_id = "job-ship-2"
    with pytest.raises(grpc.aio.AioRpcError) as dup:
        await integration.call("CreateSyncJob", pb.CreateSyncJobRequest(sync_job=twin))
    assert dup.value.code() == grpc.StatusCode.ALREADY_EXISTS
    bad = s.SyncJob(sync_job_id="j3", connector_id="erp-1", data_kind=s.SYNC_DATA_KIND_CONVERSATIONS)
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await integration.call("CreateSyncJob", pb.CreateSyncJobRequest(sync_job=bad))
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for method, request in (
        ("GetSyncJob", pb.GetSyncJobRequest(sync_job_id="job-ship")),
        ("GetSyncRun", pb.GetSyncRunRequest(run_id="01J00000000000000000000000")),
        ("GetSyncLagAlert", pb.GetSyncLagAlertRequest(alert_id="01J00000000000000000000000")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await integration.call(method, request, tenant="acme")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, method
    listed = await integration.call("ListSyncJobs", pb.ListSyncJobsRequest(), tenant="acme")
    assert list(listed.sync_jobs) == []
    # A rep lists only alerts asking them (none here) and cannot read jobs.
    mine = await integration.call("ListSyncLagAlerts", pb.ListSyncLagAlertsRequest(), user="rep-a1")
    assert list(mine.alerts) == []
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await integration.call("ListSyncJobs", pb.ListSyncJobsRequest(), user="rep-a1")
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
