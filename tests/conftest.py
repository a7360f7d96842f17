"""Shared fixtures: a migrated SQLite database in a temp dir, settings pointing at it, shared-data path."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported anywhere (see bot/cli)
# Tests drive one member through many messages at a frozen clock: the per-member rate limit (20/min, burst 10)
# would silence them. It is off for the suite and on in the tests of the limit itself
# (tests/production/test_input_bounds.py), which set the product's defaults explicitly.
os.environ.setdefault("COMMUNITYBOT_RATE_LIMIT_PER_MINUTE", "0")

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.db import create_db_engine, upgrade_database
from bot.settings import Settings

SHARED_DATA = Path(
    os.environ.get("COMMUNITYBOT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data directory and model cache live in ``tmp_path``, on the light English MiniLM
    (named explicitly; the default multilingual-e5-small would be converted into that empty cache and
    trained for minutes if a test loaded it). Tests of the default model build their own settings."""
    return Settings(data_dir=tmp_path / "data", model_cache=tmp_path / "cache", database_url=None,
                    base_model="all-MiniLM-L6-v2")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """A migrated SQLite database under the test's data directory."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    eng = create_db_engine(settings.resolved_database_url())
    upgrade_database(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; skips the test when it is absent (it is never copied into the repo)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared evaluation data not found at {SHARED_DATA} (set COMMUNITYBOT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A fresh schema on the machine's PostgreSQL (``TEST_POSTGRES_URL``), dropped afterwards."""
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.skip("TEST_POSTGRES_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    schema = f"cb_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
