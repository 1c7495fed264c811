"""IntegrationSettings: kit's versioned tenant settings documents (current + history)."""

from __future__ import annotations

from kit.resources import settings_tables
from services.integration.store import Base

settings = settings_tables(Base.metadata)
