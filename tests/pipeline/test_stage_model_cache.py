"""The parsed stage model is reused only for the very document it was parsed from: another
database's model of the same tenant and version, or a version a rolled-back save had written,
never answers for the committed one."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from kit.db import Database
from kit.migrations import upgrade_to_head
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import stage_model_pb2 as sm
from services.pipeline import stage_models
from services.pipeline.store import transactions

TENANT = "t1"


def _model(probability: int) -> sm.StageModel:
    model = sm.StageModel()
    model.CopyFrom(stage_models.DEFAULT)
    model.stages[0].win_probability_percent = probability
    return model


async def _save(uow: UnitOfWork, model: sm.StageModel) -> sm.StageModel:
    return await stage_models.update(uow, model, FieldMask(paths=["*"]), "admin", {}, {})


async def _first_probability(db: Database) -> int:
    async with transactions(db).read(TENANT) as uow:
        _, parsed = await stage_models.domain_model(uow)
    return parsed.stages[0].probability


class RolledBack(Exception):
    pass


async def test_a_parsed_model_answers_only_for_its_own_document(tmp_path: Path, database_url: str) -> None:
    one = Database(database_url)  # SQLite, then PostgreSQL
    two = Database(f"sqlite+aiosqlite:///{tmp_path / 'two.db'}")
    try:
        for db in (one, two):
            await upgrade_to_head("pipeline", db)
        # Same tenant, same version 1, different models in two databases.
        await transactions(one).run(TENANT, lambda uow: _save(uow, _model(11)))
        await transactions(two).run(TENANT, lambda uow: _save(uow, _model(12)))
        assert await _first_probability(one) == 11
        assert await _first_probability(two) == 12
        assert await _first_probability(one) == 11

        # A save that is rolled back after the writer parsed its own version 2 ...
        async def save_then_fail(uow: UnitOfWork) -> None:
            await _save(uow, _model(13))
            _, parsed = await stage_models.domain_model(uow)
            assert parsed.stages[0].probability == 13
            raise RolledBack

        with pytest.raises(RolledBack):
            await transactions(one).run(TENANT, save_then_fail)
        assert await _first_probability(one) == 11
        # ... and a different version 2 committed afterwards: the committed one is what gates see.
        await transactions(one).run(TENANT, lambda uow: _save(uow, _model(14)))
        assert await _first_probability(one) == 14
    finally:
        await one.dispose()
        await two.dispose()
