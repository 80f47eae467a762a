"""The application's assembly (main.py)."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.main import FEATURES, freeze_startup_objects
from {{ cookiecutter.project_slug }}.settings import Settings


async def test_production_freezes_what_startup_made_once_every_feature_has_started(
    settings: Settings,
) -> None:
    assert FEATURES[-1] is freeze_startup_objects
    frozen = gc.get_freeze_count()  # not 0 on Python 3.12
    async with freeze_startup_objects(FastAPI(), settings):
        assert gc.get_freeze_count() == frozen  # tests start an app each: nothing more
    production = settings.model_copy(update={"environment": "production"})
    try:
        async with freeze_startup_objects(FastAPI(), production):
            assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()
