"""Two simultaneous CreateApproval calls with different ids for one deal and flow: exactly one starts."""

# ruff: noqa: F811  (the `world` fixture is imported from approval_world)
from __future__ import annotations

import asyncio

import grpc
import pytest

from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from tests.pipeline.approval_world import World, contract_flow, world  # noqa: F401

pytestmark = pytest.mark.timeout(300)


async def test_concurrent_requests_start_one_approval_and_a_final_one_frees_the_pair(world: World) -> None:
    await world.flow(contract_flow())
    await world.deal("big")
    results = await asyncio.gather(
        *(world.request(f"race-{n}", "big") for n in range(4)), return_exceptions=True
    )
    started = [r for r in results if isinstance(r, ap.Approval)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(started) == 1, results
    assert {e.code() for e in refused} == {grpc.StatusCode.ALREADY_EXISTS}
    assert len(started) + len(refused) == 4
    listed = await world.call(
        "ListApprovals", pb.ListApprovalsRequest(filter=pb.ApprovalFilter(deal_id="big")), "admin"
    )
    assert [a.approval_id for a in listed.approvals] == [started[0].approval_id]
    # The same request again is the same approval; once it is final, a new one may start.
    again = await world.request(started[0].approval_id, "big")
    assert again.approval_id == started[0].approval_id
    cancel = pb.CancelApprovalRequest(approval_id=again.approval_id)
    await world.call("CancelApproval", cancel, "rep-a1")
    assert (await world.get(again.approval_id)).state == ap.APPROVAL_STATE_CANCELLED
    assert (await world.request("race-next", "big")).state == ap.APPROVAL_STATE_IN_PROGRESS
