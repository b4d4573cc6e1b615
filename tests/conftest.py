"""Shared fixtures: the real default model and a small real run record measured once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from profiler import models, runner
from profiler.record import RunRecord


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep hashes and ladders of the test run out of the user's ~/.cache/hfp."""
    import os

    os.environ.setdefault("HFP_CACHE_DIR", str(tmp_path_factory.mktemp("hfp-cache")))
    # and the user's own scenarios/profiles (~/.config/hfp) out of the built-in counts the tests check
    os.environ.setdefault("HFP_CONFIG_DIR", str(tmp_path_factory.mktemp("hfp-config")))


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    return models.default_model_path()


@pytest.fixture(scope="session")
def default_model(default_model_path: Path) -> models.ModelFile:
    return models.inspect(default_model_path)


@pytest.fixture(scope="session")
def small_record(default_model: models.ModelFile, tmp_path_factory: pytest.TempPathFactory) -> RunRecord:
    """A real run of the default model: 32-token prompts, 8 output tokens, parallel 1 and 2, two repetitions."""
    path = tmp_path_factory.mktemp("runs") / "small.json"
    return runner.measure(
        default_model, runner.points_grid(32, 8, [1, 2]), runner.default_settings(repetitions=2),
        options=runner.RunOptions(record_path=str(path), idle_seconds=0),
    )


@pytest.fixture(scope="session")
def small_record_path(small_record: RunRecord, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_record.save(tmp_path_factory.mktemp("saved") / "record.json")
