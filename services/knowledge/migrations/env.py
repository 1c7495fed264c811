"""Alembic environment of the knowledge service."""

from kit.migrations import run_env
from services.knowledge.store import metadata

run_env(metadata)
