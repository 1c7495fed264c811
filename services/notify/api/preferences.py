"""A user's preferences and digest preview (the caller's own; anyone's for admins and services)."""

from __future__ import annotations

from kit.grpc import context as call
from salesops.notify.v1 import preference_pb2
from services.notify import user_preferences
from services.notify.api.base import ApiBase, Ctx, M, user_of


class PreferencesApi(ApiBase):
    async def GetPreference(self, request: M.GetPreferenceRequest, context: Ctx) -> M.GetPreferenceResponse:
        p = call.principal()
        user = user_of(p, request.user_id)
        async with self.tx.read(p.tenant) as uow:
            return M.GetPreferenceResponse(preference=await user_preferences.get(uow, user))

    async def UpdatePreference(
        self, request: M.UpdatePreferenceRequest, context: Ctx
    ) -> M.UpdatePreferenceResponse:
        p = call.principal()
        pref = preference_pb2.Preference()
        pref.CopyFrom(request.preference)
        pref.user_id = user_of(p, pref.user_id)
        saved = await self.tx.run(
            p.tenant, lambda uow: user_preferences.update(uow, pref, request.update_mask)
        )
        return M.UpdatePreferenceResponse(preference=saved)

    async def PreviewDigest(self, request: M.PreviewDigestRequest, context: Ctx) -> M.PreviewDigestResponse:
        p = call.principal()
        user = user_of(p, request.user_id)
        d = request.date
        day = user_preferences.calendar_date(d.year, d.month, d.day) if request.HasField("date") else None
        async with self.tx.read(p.tenant) as uow:
            return M.PreviewDigestResponse(digest=await user_preferences.preview_digest(uow, user, day))
