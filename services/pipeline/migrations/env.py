"""Alembic environment of the pipeline service."""

from kit.migrations import run_env
from services.pipeline.store import metadata

run_env(metadata)
