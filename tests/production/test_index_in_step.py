"""Each process keeps its FAISS index in step with the shared database: two matchers with their own data
directories (two processes, or two machines) over one database see each other's writes on their next
search, and a member forgotten through one is never suggested by the other, before and after a rebuild."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.db import session_scope
from bot.models import Community, Member, utcnow
from bot.privacy import forget_member
from matching.embedder import HashingEmbedder
from matching.search import IndexedMatcher

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _matcher(engine: Engine, data_dir: Path) -> IndexedMatcher:
    return IndexedMatcher(engine=engine, data_dir=data_dir, embedder=HashingEmbedder(dim=256),
                          clock=lambda: NOW, explain_with_embeddings=False)


def _names(matcher: IndexedMatcher, community_id: int, query: str) -> list[str]:
    """Members matching ``query`` above a threshold that unrelated profiles stay under (the hashing
    embedder gives texts without a shared word a cosine near 0)."""
    return [m.title for m in matcher.search(community_id=community_id, query=query, kinds=["member"],
                                            threshold=0.3) if not m.below_threshold]


def test_two_processes_see_each_others_writes_and_a_forget(engine: Engine, tmp_path: Path) -> None:
    with session_scope(engine) as s:
        community = Community(name="founders")
        s.add(community)
        s.flush()
        assert community.id is not None
        cid = community.id
        s.add(Member(community_id=cid, display_name="Ada Chen", skills="hardware manufacturing in Shenzhen"))
        s.add(Member(community_id=cid, display_name="Bo Li", skills="seed fundraising and angel rounds"))
    a, b = _matcher(engine, tmp_path / "a"), _matcher(engine, tmp_path / "b")
    assert _names(a, cid, "hardware manufacturing")[0] == "Ada Chen"
    assert _names(b, cid, "hardware manufacturing")[0] == "Ada Chen"

    # process A's member edits their profile: B's next search answers from the new text
    with session_scope(engine) as s:
        ada = s.exec(select(Member).where(Member.display_name == "Ada Chen")).one()
        ada.skills, ada.updated_at = "pottery and ceramics", utcnow()  # as every product writer does
        s.add(ada)
    assert "Ada Chen" in _names(b, cid, "pottery ceramics")
    assert "Ada Chen" not in _names(b, cid, "hardware manufacturing")

    # Ada asks process A to forget her: B never suggests her again, nor after rebuilding its index
    with session_scope(engine) as s:
        ada = s.exec(select(Member).where(Member.display_name == "Ada Chen")).one()
        forget_member(s, ada, NOW)
    for query in ("pottery ceramics", "hardware manufacturing", "Ada Chen"):
        assert "Ada Chen" not in _names(a, cid, query)
        assert "Ada Chen" not in _names(b, cid, query)
    shutil.rmtree(tmp_path / "b")
    rebuilt = _matcher(engine, tmp_path / "b")
    assert "Ada Chen" not in _names(rebuilt, cid, "pottery ceramics")
    assert _names(rebuilt, cid, "angel rounds")[0] == "Bo Li"
