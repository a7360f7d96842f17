"""IndexedMatcher: cases M1 and M2, filters, thresholds, merging, duplicates, explanations (fake embedder)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.db import session_scope
from bot.messages import MatchKind
from bot.models import Community, Event, EventStatus, Member, Resource
from bot.ports import Matcher
from matching.embedder import HashingEmbedder
from matching.search import DEFAULT_LEXICAL_WEIGHT, IndexedMatcher

ALL: tuple[MatchKind, ...] = ("member", "resource", "event")
Add = Callable[..., None]
EXACT = 1.0 + DEFAULT_LEXICAL_WEIGHT
"""The fused score of a query equal to a document's whole text: cosine 1 and full BM25 coverage."""


def test_indexed_matcher_satisfies_the_port(matcher: IndexedMatcher) -> None:
    port: Matcher = matcher  # checked by mypy; at run time the two methods exist with keyword-only args
    assert callable(port.search) and callable(port.sync)


# --- M1 -------------------------------------------------------------------------------------------------


def test_m1_fresh_install_answers_no_match(matcher: IndexedMatcher, community_id: int, recorded: list[str],
                                           ) -> None:
    assert matcher.search(community_id=community_id, query="anyone done a hardware seed round?",
                          kinds=ALL) == []
    queries = [f"question number {i} about fundraising" for i in range(25)]
    assert matcher.search_many(community_id=community_id, queries=queries, kinds=ALL) == [[]] * 25
    for q in queries:
        assert matcher.search(community_id=community_id, query=q, kinds=ALL, top_k=5) == []
    assert matcher.search(community_id=999, query="a community that does not exist", kinds=ALL) == []
    assert recorded == []


def test_m1_three_items_top_k_five_gives_exactly_three(
    matcher: IndexedMatcher, community_id: int, add: Add,
) -> None:
    add(*[Resource(id=i, community_id=community_id, title=t) for i, t in
          [(11, "Seed round checklist"), (12, "Hardware supplier list"), (13, "Pitch deck template")]])
    results = matcher.search(community_id=community_id, query="seed round checklist", kinds=["resource"],
                             top_k=5)
    assert [m.id for m in results][0] == 11
    assert sorted(m.id for m in results) == [11, 12, 13]
    assert all(m.id != -1 for m in results)
    batch = matcher.search_many(community_id=community_id, queries=["pitch deck"] * 25, kinds=ALL, top_k=5)
    assert all(len(r) == 3 and r[0].id == 13 for r in batch)


# --- M2 -------------------------------------------------------------------------------------------------

A, B, C, D = ("Angel list of hardware investors in Shenzhen", "Bookkeeping template for tiny startups",
              "Cloud credits programme for early teams", "Design system starter kit in Figma")


def test_m2_ids_stay_true_through_delete_add_restart_and_rebuild(
    engine: Engine, data_dir: Path, matcher: IndexedMatcher, community_id: int, add: Add,
    embedder: HashingEmbedder, recorded: list[str],
) -> None:
    add(*[Resource(id=i, community_id=community_id, title=t) for i, t in [(101, A), (102, B), (103, C)]])
    assert matcher.search(community_id=community_id, query=B, kinds=["resource"])[0].id == 102
    with session_scope(engine) as s:
        row = s.get(Resource, 102)
        assert row is not None
        s.delete(row)
    add(Resource(id=104, community_id=community_id, title=D))

    def check(m: IndexedMatcher) -> None:
        top_c = m.search(community_id=community_id, query=C, kinds=["resource"], top_k=10)
        top_d = m.search(community_id=community_id, query=D, kinds=["resource"], top_k=10)
        top_b = m.search(community_id=community_id, query=B, kinds=ALL, top_k=10)
        assert top_c[0].id == 103 and top_c[0].score == pytest.approx(EXACT, abs=1e-5)
        assert top_d[0].id == 104 and top_d[0].score == pytest.approx(EXACT, abs=1e-5)
        assert 102 not in {r.id for r in top_b + top_c + top_d}
        assert m.store.size(community_id=community_id, kind="resource") == 3
        assert m.store.ids(community_id=community_id, kind="resource") == [101, 103, 104]

    check(matcher)
    recorded.clear()
    restarted = IndexedMatcher(engine=engine, data_dir=data_dir, embedder=embedder)
    check(restarted)
    assert recorded == []  # reloaded from disk, nothing re-embedded
    assert restarted.rebuild(community_id=community_id, kind="resource") == {"resource": 3}
    check(restarted)
    assert restarted.rebuild(community_id=community_id) == {"member": 0, "resource": 3, "event": 0}
    check(IndexedMatcher(engine=engine, data_dir=data_dir, embedder=embedder))


def test_restart_catches_up_with_changes_made_while_down(
    engine: Engine, data_dir: Path, matcher: IndexedMatcher, community_id: int, add: Add,
    embedder: HashingEmbedder, recorded: list[str],
) -> None:
    add(*[Resource(id=i, community_id=community_id, title=t) for i, t in [(1, A), (2, B)]])
    matcher.sync(community_id=community_id)
    add(Resource(id=3, community_id=community_id, title=C))
    recorded.clear()
    restarted = IndexedMatcher(engine=engine, data_dir=data_dir, embedder=embedder)
    assert restarted.search(community_id=community_id, query=C, kinds=["resource"])[0].id == 3
    assert recorded == [C]  # only the new row was embedded


# --- filters --------------------------------------------------------------------------------------------


def test_members_without_consent_are_never_returned(
    engine: Engine, matcher: IndexedMatcher, community_id: int, add: Add,
) -> None:
    add(Member(id=1, community_id=community_id, display_name="Ann", offers="angel investing"),
        Member(id=2, community_id=community_id, display_name="Bo", offers="angel investing",
               consent_suggest=False))
    found = matcher.search(community_id=community_id, query="angel investing", kinds=["member"], top_k=10)
    assert [m.id for m in found] == [1]
    with session_scope(engine) as s:  # withdrawn after indexing: gone at the next search
        row = s.get(Member, 1)
        assert row is not None
        row.consent_suggest = False
    assert matcher.search(community_id=community_id, query="angel investing", kinds=ALL, top_k=10) == []


def test_past_and_cancelled_events_are_left_out(
    engine: Engine, matcher: IndexedMatcher, community_id: int, add: Add, now: datetime,
) -> None:
    h = timedelta(hours=1)
    add(Event(id=1, community_id=community_id, title="Demo night", starts_at=now + 24 * h),
        Event(id=2, community_id=community_id, title="Demo night recap", starts_at=now - 48 * h),
        Event(id=3, community_id=community_id, title="Demo night workshop", starts_at=now - h,
              ends_at=now + h),  # under way: still upcoming
        Event(id=4, community_id=community_id, title="Demo night cancelled", starts_at=now + 48 * h,
              status=EventStatus.CANCELLED))
    upcoming = matcher.search(community_id=community_id, query="demo night", kinds=["event"], top_k=10)
    assert sorted(m.id for m in upcoming) == [1, 3]
    everything = matcher.search(community_id=community_id, query="demo night", kinds=["event"], top_k=10,
                                upcoming_only=False)
    assert sorted(m.id for m in everything) == [1, 2, 3]
    with session_scope(engine) as s:
        row = s.get(Event, 1)
        assert row is not None
        row.status = EventStatus.CANCELLED
    found = matcher.search(community_id=community_id, query="demo night", kinds=["event"])
    assert [m.id for m in found] == [3]


def test_filters_do_not_starve_results(matcher: IndexedMatcher, community_id: int, add: Add, now: datetime,
                                       ) -> None:
    past = [Event(id=i, community_id=community_id, title="Founder dinner", starts_at=now - timedelta(days=i))
            for i in range(1, 41)]
    add(*past, Event(id=100, community_id=community_id, title="Founder dinner and talks",
                     starts_at=now + timedelta(days=3)))
    found = matcher.search(community_id=community_id, query="founder dinner", kinds=["event"], top_k=1)
    assert [m.id for m in found] == [100]


def test_communities_are_kept_apart(engine: Engine, matcher: IndexedMatcher, community_id: int, add: Add,
                                    ) -> None:
    with session_scope(engine) as s:
        other = Community(name="other")
        s.add(other)
        s.flush()
        other_id = other.id
    assert other_id is not None
    add(Resource(id=1, community_id=community_id, title="Visa guide"),
        Resource(id=2, community_id=other_id, title="Visa guide for founders"))
    assert [m.id for m in matcher.search(community_id=community_id, query="visa", kinds=ALL)] == [1]
    assert [m.id for m in matcher.search(community_id=other_id, query="visa", kinds=ALL)] == [2]


# --- ranking, threshold, duplicates, display ------------------------------------------------------------


def test_kinds_are_merged_by_score_and_threshold_is_applied(
    matcher: IndexedMatcher, community_id: int, add: Add, now: datetime,
) -> None:
    add(Member(id=1, community_id=community_id, display_name="Ann", offers="robotics hardware"),
        Resource(id=1, community_id=community_id, title="robotics hardware"),
        Event(id=1, community_id=community_id, title="Cooking class", starts_at=now + timedelta(days=1)))
    found = matcher.search(community_id=community_id, query="robotics hardware", kinds=ALL, top_k=3,
                           threshold=0.5)
    assert [(m.kind, m.id) for m in found] == [("resource", 1), ("member", 1), ("event", 1)]
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    assert found[0].score == pytest.approx(EXACT, abs=1e-5)
    assert [m.below_threshold for m in found] == [m.score < 0.5 for m in found] == [False, False, True]
    assert all(-1.0 <= m.score <= EXACT for m in found)
    default = matcher.search(community_id=community_id, query="robotics hardware", kinds=ALL, top_k=3)
    assert [m.below_threshold for m in default] == [m.score < 0.35 for m in default]
    assert [(m.kind, m.id) for m in matcher.search(community_id=community_id, query="robotics hardware",
                                                   kinds=["event", "member"], top_k=1)] == [("member", 1)]


def test_near_duplicates_are_removed_but_namesakes_kept(
    matcher: IndexedMatcher, community_id: int, add: Add,
) -> None:
    add(Resource(id=1, community_id=community_id, title="YC Startup School", url="https://startupschool.org/"),
        Resource(id=2, community_id=community_id, title="YC startup school", url="https://startupschool.org",
                 description="free course"),
        Member(id=1, community_id=community_id, display_name="Alex Chen", bio="startup school mentor"),
        Member(id=2, community_id=community_id, display_name="Alex Chen", bio="startup school alumni"))
    found = matcher.search(community_id=community_id, query="startup school", kinds=ALL, top_k=10)
    assert sorted((m.kind, m.id) for m in found) == [("member", 1), ("member", 2), ("resource", 1)]


def test_display_fields_title_detail_url_and_why(
    matcher: IndexedMatcher, community_id: int, add: Add,
) -> None:
    bio = "Second-time founder. " + "Built and sold a hardware company in Shenzhen after ten years. " * 4
    add(Member(id=1, community_id=community_id, display_name="Lin Wei", bio=bio,
               offers="angel investing, intros to Shenzhen factories", location="Shanghai",
               url="https://linwei.example"),
        Resource(id=5, community_id=community_id, title="Term sheet primer", url="https://example.org/ts",
                 description="What every clause of a seed term sheet means.", tags="fundraising, legal"),
        Event(id=9, community_id=community_id, title="Angel office hours", place="Naked Hub, Jing'an",
              starts_at=datetime.fromisoformat("2024-07-12T11:00:00+00:00"), timezone="Asia/Shanghai"))
    (member,) = matcher.search(community_id=community_id, query="any angel investor here?", kinds=["member"])
    assert member.title == "Lin Wei" and member.url == "https://linwei.example"
    assert member.why == "offers: angel investing, intros to Shenzhen factories; shares 'angel', 'investor'"
    assert member.detail.endswith(" · Shanghai") and member.detail.startswith("Second-time founder.")
    assert len(member.detail) <= 140 + len("… · Shanghai")
    (res,) = matcher.search(community_id=community_id, query="seed term sheet clauses", kinds=["resource"])
    assert (res.title, res.url) == ("Term sheet primer", "https://example.org/ts")
    assert res.detail == "What every clause of a seed term sheet means."
    assert res.why == "description: What every clause of a seed term sheet means.; shares 'seed', 'term', " \
                      "'sheet', 'clauses'"
    (event,) = matcher.search(community_id=community_id, query="angel office hours", kinds=["event"],
                              upcoming_only=False)
    assert event.title == "Angel office hours"
    assert event.detail == "Fri 12 Jul 2024, 19:00 Asia/Shanghai · Naked Hub, Jing'an"
    assert event.why.startswith("title: Angel office hours; shares 'angel', 'office', 'hours'")


def test_why_names_a_field_even_without_shared_words(
    matcher: IndexedMatcher, community_id: int, add: Add,
) -> None:
    add(Member(id=1, community_id=community_id, display_name="Ann", skills="kubernetes", offers="devops"))
    (m,) = matcher.search(community_id=community_id, query="cloud", kinds=["member"])
    assert m.why.endswith("; close in meaning")
    assert m.why.split(":")[0] in {"skills", "offers"}


def test_chinese_words_are_matched_and_explained(
    matcher: IndexedMatcher, community_id: int, add: Add,
) -> None:
    add(Member(id=1, community_id=community_id, display_name="王芳", offers="天使投资，硬件创业辅导"),
        Member(id=2, community_id=community_id, display_name="李雷", offers="跨境电商运营"))
    found = matcher.search(community_id=community_id, query="有没有人做天使投资？", kinds=["member"])
    assert found[0].id == 1
    assert found[0].why == "offers: 天使投资，硬件创业辅导; shares '天使投资'"


def test_degenerate_requests(matcher: IndexedMatcher, community_id: int, add: Add) -> None:
    add(Resource(id=1, community_id=community_id, title="Visa guide"))
    assert matcher.search(community_id=community_id, query="   ", kinds=ALL) == []
    assert matcher.search(community_id=community_id, query="visa", kinds=ALL, top_k=0) == []
    assert matcher.search(community_id=community_id, query="visa", kinds=[]) == []
    with pytest.raises(ValueError, match="unknown kind"):
        matcher.search(community_id=community_id, query="visa", kinds=["company"])  # type: ignore[list-item]
    assert [r and r[0].id for r in matcher.search_many(community_id=community_id, queries=["visa", "", "x"],
                                                       kinds=ALL)] == [1, [], 1]


def test_concurrent_searches_while_rows_are_added(
    matcher: IndexedMatcher, community_id: int, add: Add,
) -> None:
    add(Resource(id=1, community_id=community_id, title="Guide 1"))
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(15):
                matcher.search(community_id=community_id, query="guide", kinds=ALL)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(2, 12):
        add(Resource(id=i, community_id=community_id, title=f"Guide {i}"))
    for t in threads:
        t.join()
    assert errors == []
    found = matcher.search(community_id=community_id, query="guide", kinds=["resource"], top_k=20)
    assert sorted(m.id for m in found) == list(range(1, 12))


def test_languages_keep_what_the_asker_can_read(
    matcher: IndexedMatcher, community_id: int, add: Add, now: datetime,
) -> None:
    cid = community_id
    add(Member(id=1, community_id=cid, display_name="Ann", offers="seed round advice", languages="English"),
        Member(id=2, community_id=cid, display_name="Wei", offers="seed round 融资建议", languages="中文"),
        Member(id=3, community_id=cid, display_name="Sam", offers="seed round advice"),  # states none
        Member(id=4, community_id=cid, display_name="Li", offers="seed round", languages="en, 中文"),
        Resource(id=1, community_id=cid, title="Seed round guide", description="How to raise a seed."),
        Resource(id=2, community_id=cid, title="种子轮融资指南 seed round",
                 description="如何完成第一轮融资，以及投资人关心的问题。"),
        Event(id=1, community_id=cid, title="Seed round dinner in 深圳", starts_at=now + timedelta(days=2)))

    def found(languages: list[str] | None) -> set[tuple[str, int]]:
        hits = matcher.search(community_id=cid, query="seed round", kinds=ALL, top_k=10, languages=languages)
        return {(m.kind, m.id) for m in hits}

    everything = {("member", 1), ("member", 2), ("member", 3), ("member", 4), ("resource", 1),
                  ("resource", 2), ("event", 1)}
    assert found(None) == everything
    assert found(["en"]) == everything - {("member", 2), ("resource", 2)}
    assert found(["zh"]) == {("member", 2), ("member", 3), ("member", 4), ("resource", 2)}
    assert found(["zh", "en"]) == everything
