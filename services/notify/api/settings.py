"""The tenant's NotifySettings."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from kit.errors import (
    Aborted,
    InvalidArgument,
)
from kit.grpc import context as call
from salesops.notify.v1 import (
    settings_pb2,
)
from services.notify import (
    tenant_settings,
)
from services.notify.api.base import ApiBase, Ctx, M
from services.notify.api.base import admin_only as _admin
from services.notify.store import (
    SettingsRow,
)


class SettingsApi(ApiBase):
    async def GetNotifySettings(
        self, request: M.GetNotifySettingsRequest, context: Ctx
    ) -> M.GetNotifySettingsResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        async with self.rt.db.session(p.tenant) as s:
            stored, version = await tenant_settings.load(s)
        out = tenant_settings.filled(stored)
        out.etag = str(version)
        return M.GetNotifySettingsResponse(settings=out)

    async def UpdateNotifySettings(
        self, request: M.UpdateNotifySettingsRequest, context: Ctx
    ) -> M.UpdateNotifySettingsResponse:
        p = call.principal()
        _admin(p)
        async with self.rt.db.session(p.tenant) as s:
            stored, version = await tenant_settings.load(s)
            if request.settings.etag and request.settings.etag != str(version):
                raise Aborted("the settings changed since they were read; reload and retry")
            merged = settings_pb2.NotifySettings()
            if stored is not None:
                merged.CopyFrom(stored)
            paths = list(request.update_mask.paths)
            if not paths:
                merged.CopyFrom(request.settings)
            for path in paths:
                name = path.split(".")[0]
                if name not in settings_pb2.NotifySettings.DESCRIPTOR.fields_by_name or name in (
                    "etag",
                    "audit",
                ):
                    raise InvalidArgument.field("update_mask", f"unknown field {path!r}")
                merged.ClearField(name)  # type: ignore[arg-type]
                field = settings_pb2.NotifySettings.DESCRIPTOR.fields_by_name[name]
                value = getattr(request.settings, name)
                if field.is_repeated:
                    getattr(merged, name).extend(value)
                elif field.message_type is not None:
                    getattr(merged, name).CopyFrom(value)
                else:
                    setattr(merged, name, value)
            merged.etag = ""
            tenant_settings.validate(merged)
            row = await s.scalar(select(SettingsRow))
            if row is None:
                row = SettingsRow(version=0, payload=b"")
                s.add(row)
            row.version += 1
            row.payload = merged.SerializeToString()
            row.updated_at = datetime.now(UTC)
            await s.commit()
            out = tenant_settings.filled(merged)
            out.etag = str(row.version)
        return M.UpdateNotifySettingsResponse(settings=out)
