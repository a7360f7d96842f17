"""Two-sided matching: needs against offers, both directions, consent, exclusions, the reason given."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

from bot.models import Member
from matching.introductions import suggest_for
from matching.search import IndexedMatcher


def test_needs_meet_offers_and_a_mutual_match_ranks_first_and_says_so(
    matcher: IndexedMatcher, engine: Engine, community_id: int, add: Callable[..., None],
) -> None:
    add(Member(id=1, community_id=community_id, display_name="Dan", needs="contract manufacturer shenzhen",
               offers="seed fundraising advice hardware"),
        Member(id=2, community_id=community_id, display_name="Li", offers="contract manufacturer shenzhen",
               needs="seed fundraising advice"),
        Member(id=3, community_id=community_id, display_name="Zoe", offers="contract manufacturer shenzhen"),
        Member(id=4, community_id=community_id, display_name="Ann", offers="growth marketing seo"),
        Member(id=5, community_id=community_id, display_name="Hidden", consent_suggest=False,
               offers="contract manufacturer shenzhen"))
    found = suggest_for(matcher, engine, community_id=community_id, member_id=1, top_k=3)
    assert [p.other_id for p in found][:2] == [2, 3]
    assert 5 not in {p.other_id for p in found} and 1 not in {p.other_id for p in found}
    li, zoe = found[0], found[1]
    # Li scores lower on the need alone (her profile says more), but she also needs what Dan offers
    assert li.need_score < zoe.need_score and li.score > zoe.score
    assert li.offer_score is not None and li.offer_score > 0.5 and zoe.offer_score is None
    assert li.why.startswith('needs "contract manufacturer shenzhen" <-> offers: contract manufacturer')
    assert "which you offer" in li.why and "which you offer" not in zoe.why
    assert [p.other_id for p in suggest_for(matcher, engine, community_id=community_id, member_id=1,
                                            exclude=[2])][:1] == [3]


def test_no_needs_unknown_member_or_other_community_give_nothing(
    matcher: IndexedMatcher, engine: Engine, community_id: int, add: Callable[..., None],
) -> None:
    add(Member(id=1, community_id=community_id, display_name="Ann", offers="growth marketing"),
        Member(id=2, community_id=community_id, display_name="Bo", needs="growth marketing"))
    assert suggest_for(matcher, engine, community_id=community_id, member_id=1) == []
    assert suggest_for(matcher, engine, community_id=community_id, member_id=404) == []
    assert suggest_for(matcher, engine, community_id=community_id + 1, member_id=2) == []
    assert [p.other_id for p in suggest_for(matcher, engine, community_id=community_id, member_id=2)] == [1]
