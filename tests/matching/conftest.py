"""Fixtures for matching tests: the test's migrated database (``engine``, from ``tests/conftest.py``: SQLite
or PostgreSQL), fakes, and the real MiniLM once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from bot.db import session_scope
from bot.models import Community
from matching.embedder import HashingEmbedder, SentenceTransformerEmbedder
from matching.search import IndexedMatcher

NOW = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)


class _RecordingEmbedder(HashingEmbedder):
    """A HashingEmbedder that records every passage it embeds (to see what a sync re-embedded)."""

    def __init__(self, passages: list[str]) -> None:
        super().__init__(dim=256)
        self.passages = passages

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.passages.extend(texts)
        return super().embed_passages(texts, progress=progress)


@pytest.fixture
def community_id(engine: Engine) -> int:
    with session_scope(engine) as s:
        c = Community(name="founders")
        s.add(c)
        s.flush()
        assert c.id is not None
        return c.id


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def recorded() -> list[str]:
    """Every passage the ``embedder`` fixture embedded, in order."""
    return []


@pytest.fixture
def embedder(recorded: list[str]) -> HashingEmbedder:
    """A 256-d HashingEmbedder that appends each embedded passage to ``recorded``."""
    return _RecordingEmbedder(recorded)


@pytest.fixture
def now() -> datetime:
    """The fixed "now" of the ``matcher`` fixture's clock (2024-07-01 12:00 UTC)."""
    return NOW


@pytest.fixture
def matcher(engine: Engine, data_dir: Path, embedder: HashingEmbedder) -> IndexedMatcher:
    return IndexedMatcher(engine=engine, data_dir=data_dir, embedder=embedder, clock=lambda: NOW)


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEmbedder:
    """The shipped MiniLM, loaded once per test session."""
    return SentenceTransformerEmbedder.from_base_model("all-MiniLM-L6-v2")


@pytest.fixture
def add(engine: Engine) -> Callable[..., None]:
    """``add(*rows)`` inserts rows (with explicit ids where given) in one transaction."""

    def _add(*rows: object) -> None:
        with session_scope(engine) as s:
            for row in rows:
                s.add(row)

    return _add
