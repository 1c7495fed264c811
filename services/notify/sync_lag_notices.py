"""integration.SyncLagDetected -> a sync_lag inbox item asking those named to explain the lag.

SyncRecovered resolves it (consumers.resolutions). Pure, apart from proto unpacking;
the consumer sends it.
"""

from __future__ import annotations

from google.protobuf.struct_pb2 import Struct

from salesops.common.v1 import types_pb2
from salesops.integration.v1 import events_pb2 as integration_events
from salesops.integration.v1 import sync_pb2
from salesops.notify.v1 import notification_pb2 as N


def sync_lag(e: integration_events.SyncLagDetected) -> N.Notification:
    """Asks the users named (else the job owner) to explain the lag with ExplainSyncLag."""
    kind = sync_pb2.SyncDataKind.Name(e.data_kind).removeprefix("SYNC_DATA_KIND_").lower()
    hours = e.lag.seconds // 3600
    message = (
        f"{kind} from connector {e.connector_id} are {hours} h behind (threshold "
        f"{e.threshold.seconds // 3600} h). Please explain the delay (ExplainSyncLag, alert {e.alert_id})."
    )
    values = Struct()
    values.update({"title": f"{e.connector_id} / {kind}: {hours} h behind", "message": message})
    users = [u for u in dict.fromkeys(e.requested_user_ids or [e.owner_user_id]) if u]
    return N.Notification(
        category=N.NOTIFICATION_CATEGORY_SYNC_LAG,
        recipients=[N.Recipient(user_id=u) for u in users],
        template=N.TemplateContent(variables=values),
        subject=types_pb2.ResourceRef(service="integration", kind="sync_lag_alert", id=e.alert_id),
        dedupe_key=f"sync_lag:{e.alert_id}",
    )
