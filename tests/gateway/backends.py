"""Test-only gRPC backends implementing a few real annotated RPCs of the contracts.

They run behind `kit.grpc.server.GrpcServer`, so authentication and error
mapping are the real pipeline; each RPC echoes what the gateway parsed so the
tests can see the transcoding, and counts what it applied.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import grpc

from deploy.local.infra import free_port
from kit import errors
from kit.auth import AuthConfig, TokenVerifier
from kit.config import GrpcSettings
from kit.grpc import context as call
from kit.grpc import diagnostics
from kit.grpc.server import GrpcServer, Registration
from salesops.leads.v1 import lead_pb2, leads_service_pb2, leads_service_pb2_grpc
from salesops.notify.v1 import inbox_pb2, notify_service_pb2, notify_service_pb2_grpc

# ClaimLead's lead_id picks an outcome: every gRPC code the gateway maps.
ABORT_CODES = {code.name.lower(): code for code in grpc.StatusCode if code is not grpc.StatusCode.OK}


class EchoLeads(leads_service_pb2_grpc.LeadsServiceServicer):
    def __init__(self) -> None:
        self.applied: Counter[str] = Counter()
        self.metadata: list[dict[str, str]] = []
        self.created = 0

    def _seen(self, context: Any) -> None:
        self.metadata.append({k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)})

    async def GetLead(self, request: Any, context: Any) -> leads_service_pb2.GetLeadResponse:
        self._seen(context)
        if request.lead_id == "missing":
            raise errors.NotFound("lead", request.lead_id)
        view = leads_service_pb2.LeadView.Name(request.view)
        return leads_service_pb2.GetLeadResponse(
            lead=lead_pb2.Lead(
                lead_id=request.lead_id, description=view, owner_user_id=call.principal().user_id
            )
        )

    async def ListLeads(self, request: Any, context: Any) -> leads_service_pb2.ListLeadsResponse:
        self._seen(context)
        f = request.filter
        leads = [
            lead_pb2.Lead(
                lead_id=owner,
                display_name=request.order_by,
                status=f.statuses[i % len(f.statuses)] if f.statuses else 0,
                team_path=f.team_path,
            )
            for i, owner in enumerate(f.owner_user_ids)
        ]
        return leads_service_pb2.ListLeadsResponse(
            leads=leads, total_size=request.page_size, next_page_token=request.page_token
        )

    async def CreateLead(self, request: Any, context: Any) -> leads_service_pb2.CreateLeadResponse:
        self._seen(context)
        if not request.lead.display_name:
            raise errors.InvalidArgument.field("lead.display_name", "required")
        self.created += 1
        self.applied[f"create:{request.lead.display_name}"] += 1
        lead = lead_pb2.Lead()
        lead.CopyFrom(request.lead)
        lead.lead_id = f"L{self.created}"
        return leads_service_pb2.CreateLeadResponse(lead=lead, replayed=request.assign_to_creator)

    async def UpdateLead(self, request: Any, context: Any) -> leads_service_pb2.UpdateLeadResponse:
        self._seen(context)
        self.applied[f"update:{request.lead.lead_id}"] += 1
        lead = lead_pb2.Lead()
        lead.CopyFrom(request.lead)
        lead.description = ",".join(request.update_mask.paths)
        return leads_service_pb2.UpdateLeadResponse(lead=lead)

    async def ClaimLead(self, request: Any, context: Any) -> leads_service_pb2.ClaimLeadResponse:
        self._seen(context)
        lead_id = request.lead_id
        if lead_id.startswith("slow"):
            await asyncio.sleep(float(lead_id.removeprefix("slow") or "1"))
        elif lead_id == "invalid":
            v = errors.Violations()
            v.add("lead_id", "not a lead id")
            v.raise_if_any()
        elif lead_id == "gate":
            raise errors.FailedPrecondition(
                "cap reached", [errors.PreconditionViolation("DAILY_CLAIM_CAP", "rep-a1", "10 per day")]
            )
        elif lead_id == "capped":
            raise errors.ResourceExhausted(
                "daily claim cap reached", subject="rep-a1", retry_after_seconds=90.5
            )
        elif lead_id == "crash":
            raise RuntimeError("a bug")
        elif lead_id in ABORT_CODES:
            await context.abort(ABORT_CODES[lead_id], f"forced {lead_id}")
        self.applied[f"claim:{lead_id}"] += 1
        who = call.principal()
        return leads_service_pb2.ClaimLeadResponse(
            lead=lead_pb2.Lead(lead_id=lead_id, owner_user_id=who.user_id, team_path=who.tenant),
            decision_id=f"D{self.applied[f'claim:{lead_id}']}",
        )


class StreamingNotify(notify_service_pb2_grpc.NotifyServiceServicer):
    """StreamInbox: three unread counts with cursors after resume_cursor, then the end.

    resume_cursor "bad" fails at once, "fail" fails after one event, "forever" never ends
    (until the call is cancelled, which `cancelled` records).
    """

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    async def StreamInbox(self, request: Any, context: Any) -> Any:
        if request.resume_cursor == "bad":
            raise errors.InvalidArgument.field("resume_cursor", "unknown cursor")
        if request.resume_cursor in {"fail", "forever"}:
            yield notify_service_pb2.StreamInboxResponse(cursor="1")
            if request.resume_cursor == "fail":
                raise errors.Unavailable("inbox store went away")
            try:
                while True:
                    await asyncio.sleep(0.05)
                    yield notify_service_pb2.StreamInboxResponse(
                        heartbeat=notify_service_pb2.StreamHeartbeat()
                    )
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        start = int(request.resume_cursor or "0")
        for n in range(start + 1, start + 4):
            yield notify_service_pb2.StreamInboxResponse(
                cursor=str(n), unread_count=inbox_pb2.UnreadCount(total=n)
            )
            await asyncio.sleep(0.01)


def unbuilt_registrations(
    names: tuple[str, ...] = ("pipeline", "knowledge", "integration"),
) -> list[Registration]:
    """The generated base servicers of these services: every RPC answers UNIMPLEMENTED."""
    import importlib

    regs = []
    for name in names:
        grpc_mod = importlib.import_module(f"salesops.{name}.v1.{name}_service_pb2_grpc")
        pb2 = importlib.import_module(f"salesops.{name}.v1.{name}_service_pb2")
        service = f"{name.capitalize()}Service"
        regs.append(
            Registration(
                getattr(grpc_mod, f"add_{service}Servicer_to_server"),
                getattr(grpc_mod, f"{service}Servicer")(),
                pb2.DESCRIPTOR.services_by_name[service].full_name,
            )
        )
    return regs


def grpc_settings() -> GrpcSettings:
    return GrpcSettings(f"127.0.0.1:{free_port()}", False, 1.0, 10.0, 4 << 20, 30_000, 10_000)


def build_server(name: str, *servicers: Any) -> GrpcServer:
    regs = [diagnostics.registration(name)]
    for servicer in servicers:
        if isinstance(servicer, Registration):
            regs.append(servicer)
        elif isinstance(servicer, EchoLeads):
            regs.append(
                Registration(
                    leads_service_pb2_grpc.add_LeadsServiceServicer_to_server,
                    servicer,
                    leads_service_pb2.DESCRIPTOR.services_by_name["LeadsService"].full_name,
                )
            )
        else:
            regs.append(
                Registration(
                    notify_service_pb2_grpc.add_NotifyServiceServicer_to_server,
                    servicer,
                    notify_service_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name,
                )
            )
    return GrpcServer(name, grpc_settings(), TokenVerifier(AuthConfig.from_env({})), regs)
