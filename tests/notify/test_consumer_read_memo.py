"""The event consumer's transaction reads a tenant's defaults once (tenant_settings.READ_MEMO); a
settings change committed before it is seen by the next consumer transaction at once."""

from __future__ import annotations

from salesops.notify.v1 import notify_service_pb2 as M
from salesops.notify.v1 import settings_pb2
from services.notify import tenant_settings
from tests.notify.conftest import ADMIN, TENANT, NotifyStack, auth


async def test_memo_is_one_transactions_and_a_committed_change_is_seen_by_the_next(
    notify: NotifyStack,
) -> None:
    db = notify.rt.db
    tenant = TENANT
    async with db.session(tenant) as session:
        session.info[tenant_settings.READ_MEMO] = {}
        before = await tenant_settings.load_defaults(session)
        assert await tenant_settings.load_defaults(session) is before  # read once per transaction
    change = settings_pb2.NotifySettings(default_locale="en", default_time_zone="UTC", etag="0")
    await notify.stub.UpdateNotifySettings(
        M.UpdateNotifySettingsRequest(settings=change), metadata=auth(ADMIN)
    )
    async with db.session(tenant) as session:  # the consumer's next transaction: a new memo
        session.info[tenant_settings.READ_MEMO] = {}
        after = await tenant_settings.load_defaults(session)
    assert (before.locale, after.locale) != ("en", "en") and after.locale == "en" and after.time_zone == "UTC"
    async with db.session(tenant) as session:  # sessions without the memo read each time
        assert await tenant_settings.load_defaults(session) is not await tenant_settings.load_defaults(
            session
        )
