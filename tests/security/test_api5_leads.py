"""OWASP API5 (function-level authorisation) in leads: bulk import is for sales-ops admins and
partner systems, not for any rep."""

from __future__ import annotations

import grpc
import pytest

from salesops.leads.v1 import leads_service_pb2 as pb
from tests.leads.conftest import Leads
from tests.leads.helpers import hot_lead


@pytest.mark.parametrize("user", ["rep-a1", "sup-a", "director-east"])
async def test_only_admins_import_leads(leads: Leads, user: str) -> None:
    rows = [pb.ImportLeadRow(row_ref=str(i), lead=hot_lead(phone=f"1380000{i:04d}")) for i in range(3)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call("ImportLeads", pb.ImportLeadsRequest(import_id="IMP-RIGHTS", rows=rows), user=user)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = await leads.call("ListLeads", pb.ListLeadsRequest())
    assert listed.total_size == 0  # nothing was created
    done = await leads.call("ImportLeads", pb.ImportLeadsRequest(import_id="IMP-RIGHTS", rows=rows))
    assert done.created_count == 3
