"""Tables of the pipeline service (its own database; no other service reads them)."""

from __future__ import annotations

from sqlalchemy import MetaData

from kit.db import NAMING_CONVENTION
from kit.events import outbox_table, processed_events_table

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Events leave through the outbox in the same transaction as the change they announce.
outbox = outbox_table(metadata)
# Ids of events this service has applied, so redelivered events apply once.
processed_events = processed_events_table(metadata)
