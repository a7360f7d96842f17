"""Two-sided matching: a member's needs against other members' offers and skills, with the reason.

The basis of introductions (``jobs/``). For a member A with stated needs, the needs text is searched as a
query over the community's members (the same fused dense + BM25 ranking and filters as any search: only
members who consented to be suggested, never A). Each candidate B is then checked the other way, A's
offers and skills against B's needs, so a mutual match ("each can help the other") ranks first among
equals and says so. The result carries both scores and a sentence naming the need and the offer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy.engine import Engine

from bot.db import session_scope
from bot.models import Member
from matching.documents import clip, explain, one_line, to_document
from matching.embedder import l2_normalise
from matching.search import IndexedMatcher

#: Share of the reverse direction (A's offers vs B's needs, cosine) added to the forward score.
MUTUAL_WEIGHT = 0.25
_NEED_CHARS = 60


@dataclass(frozen=True, slots=True)
class PairMatch:
    """Member ``other_id`` can help member ``member_id`` with a need (and maybe the other way round).

    Attributes:
        member_id: the member whose needs were searched.
        other_id: the suggested member.
        title: the suggested member's display name.
        score: ``need_score + MUTUAL_WEIGHT * max(0, offer_score)``; the order of results.
        need_score: the fused search score of the need against the other's profile.
        offer_score: cosine of this member's offers/skills with the other's needs; ``None`` when either is
            empty.
        below_threshold: ``need_score`` is under the matcher's threshold.
        why: e.g. ``needs "a contract manufacturer in Shenzhen" <-> offers: ...; shares 'shenzhen'``.
    """

    member_id: int
    other_id: int
    title: str
    score: float
    need_score: float
    offer_score: float | None
    below_threshold: bool
    why: str


def suggest_for(matcher: IndexedMatcher, engine: Engine, *, community_id: int, member_id: int,
                top_k: int = 3, exclude: Sequence[int] = ()) -> list[PairMatch]:
    """The ``top_k`` members who best meet ``member_id``'s needs, best first.

    Args:
        matcher: the community's matcher (its threshold and lexical weight apply).
        engine: the database engine.
        exclude: member ids never to suggest (already introduced, snoozed, "don't introduce me").

    Returns:
        ``[]`` when the member does not exist, is in another community, or has stated no needs.
    """
    with session_scope(engine) as session:
        member = session.get(Member, member_id)
        if member is None or member.community_id != community_id or not member.needs.strip():
            return []
        needs, gives = member.needs.strip(), "; ".join(x for x in (member.offers, member.skills) if x.strip())
    skip = {member_id, *exclude}
    found = [m for m in matcher.search(community_id=community_id, query=needs, kinds=["member"],
                                       top_k=top_k + len(skip)) if m.id not in skip][:top_k]
    if not found:
        return []
    with session_scope(engine) as session:
        others = {m.id: session.get(Member, m.id) for m in found}
        their_needs = {i: (o.needs.strip() if o is not None else "") for i, o in others.items()}
        docs = {i: to_document(o) for i, o in others.items() if o is not None}
    reverse = _reverse_scores(matcher, gives, their_needs)
    out = []
    for m in found:
        offer = reverse.get(m.id)
        why = f'needs "{clip(one_line(needs), _NEED_CHARS)}" <-> ' + explain(query=needs, document=docs[m.id])
        if offer is not None and not m.below_threshold and offer >= matcher.threshold:
            why += f'; and they need "{clip(one_line(their_needs[m.id]), _NEED_CHARS)}", which you offer'
        out.append(PairMatch(member_id=member_id, other_id=m.id, title=m.title,
                             score=m.score + MUTUAL_WEIGHT * max(0.0, offer or 0.0), need_score=m.score,
                             offer_score=offer, below_threshold=m.below_threshold, why=why))
    return sorted(out, key=lambda p: (-p.score, p.other_id))


def _reverse_scores(matcher: IndexedMatcher, gives: str, their_needs: dict[int, str]) -> dict[int, float]:
    """Cosine of ``gives`` (as a query) with each non-empty need (as a passage)."""
    wanted = {i: t for i, t in their_needs.items() if t}
    if not gives or not wanted:
        return {}
    embedder = matcher.embedder
    q = l2_normalise(embedder.embed_queries([gives]))[0]
    vecs = l2_normalise(embedder.embed_passages(list(wanted.values())))
    return {i: float(np.clip(v @ q, -1.0, 1.0)) for i, v in zip(wanted, vecs, strict=True)}
