"""Alembic environment of the integration service."""

from kit.migrations import run_env
from services.integration.store import metadata

run_env(metadata)
