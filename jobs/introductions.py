"""The ``introductions`` job: need <-> offer matches become double opt-in introductions, and a week after an
introduction, a check-back that records whether it helped.

Each run, for the time ``now``:

1. **expire**: proposals still not accepted by both :data:`PROPOSAL_TTL` after they were made become
   ``expired`` (silently: nobody was introduced, nobody is told who did not answer);
2. **check back**: introductions made :data:`CHECK_BACK_AFTER` ago or more and not yet checked back ask
   both members once whether it helped (``/intro helped ID yes|no``; key ``intro-check:{id}:{member}``),
   except a member who has since said "don't introduce me"; ``checked_back_at`` is set;
3. **propose**: for each member who stated needs, consents to be suggested, did not opt out of
   introductions and is not snoozed (``intro_snooze_until`` later than ``now``), the matcher ranks the
   community's members against the needs (``kinds=["member"]``, the community's threshold, the asker's
   languages); the best one above the threshold who also consents, did not opt out, is not snoozed, can be
   reached in a direct chat and has never been in an introduction with the asker (in any status: nobody is
   proposed twice to the same person) becomes an :class:`~bot.models.Introduction` (``proposed``, pair
   stored with ``member_a_id < member_b_id``), and both are asked, each in their language, with buttons
   and the typed form (:mod:`bot.commands.intro` reads the answers).

Pace: a member takes part in at most :data:`PROPOSALS_PER_WEEK` introduction proposed in the last 7 days,
and never in a second one while one is open, as asker or as the suggested member.

Privacy: a proposal says why (the need and the offer, quoted from the two profiles) but names nobody;
names are exchanged only once both said yes (:mod:`bot.commands.intro`).

Exactly once: a proposal and its two asks are written in one transaction; the pair is unique in the
database and every message has a key that names it (``intro-ask:{id}:{member}``), so a second run, a run
in another process, or a run after a restart in the middle queues nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from bot.commands.intro import KIND, SNOOZE_DAYS, ask_buttons, check_buttons, one_liner
from bot.community import community_settings
from bot.db import session_scope
from bot.i18n import tr
from bot.language import language_codes
from bot.members import member_language
from bot.messages import Match, Reply
from bot.models import Community, Introduction, Member
from bot.notifications import direct_address, queue_direct
from bot.ports import Matcher
from jobs.context import JobContext

log = logging.getLogger(__name__)

#: How long a proposal waits for both answers.
PROPOSAL_TTL = timedelta(days=7)
#: When the check-back is due after an introduction.
CHECK_BACK_AFTER = timedelta(days=7)
#: Introductions proposed to one member per 7 days (as asker or as the suggested member).
PROPOSALS_PER_WEEK = 1
#: How many ranked members are considered per asker.
CANDIDATES = 10
_WEEK = timedelta(days=7)
_QUOTE_CHARS = 140


@dataclass(frozen=True, slots=True)
class _Asker:
    """A member whose needs are searched this run, with what the search needs."""

    community_id: int
    member_id: int
    needs: str
    languages: tuple[str, ...]
    threshold: float | None


def run_introductions(ctx: JobContext, now: datetime) -> str:
    """The ``introductions`` job (see the module): expire, check back, propose.

    Returns ``"proposed N, expired N, checked back N"``. The matcher is loaded only when some member is
    waiting for a proposal.
    """
    expired = _expire(ctx, now)
    checked = _check_back(ctx, now)
    askers = _askers(ctx, now)
    proposed = 0
    if askers:
        matcher = ctx.get_matcher()
        proposed = sum(_propose(ctx, matcher, asker, now) for asker in askers)
    return f"proposed {proposed}, expired {expired}, checked back {checked}"


def _expire(ctx: JobContext, now: datetime) -> int:
    """Mark proposals older than :data:`PROPOSAL_TTL` ``expired``; returns how many."""
    with session_scope(ctx.engine) as session:
        result = session.exec(
            sa.update(Introduction)
            .where(col(Introduction.status) == "proposed", col(Introduction.created_at) <= now - PROPOSAL_TTL)
            .values(status="expired")
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)


def _check_back(ctx: JobContext, now: datetime) -> int:
    """Queue the check-back of every introduction due for one; returns how many introductions."""
    with session_scope(ctx.engine) as session:
        due = session.exec(select(Introduction).where(
            Introduction.status == "introduced",
            col(Introduction.checked_back_at).is_(None),
            col(Introduction.introduced_at) <= now - CHECK_BACK_AFTER,
        ).order_by(col(Introduction.id))).all()
        for intro in due:
            a, b = session.get(Member, intro.member_a_id), session.get(Member, intro.member_b_id)
            for member, other in ((a, b), (b, a)):
                if member is not None and other is not None and not member.intro_opt_out:
                    _queue_check(session, ctx, intro, member, other, now)
            intro.checked_back_at = now
            session.add(intro)
        return len(due)


def _queue_check(session: Session, ctx: JobContext, intro: Introduction, member: Member, other: Member,
                 now: datetime) -> None:
    assert intro.id is not None
    lang = member_language(member, _community_language(session, ctx, member.community_id), session=session)
    text = tr(lang,
              f"👋 A week ago I introduced you to {other.display_name} (introduction #{intro.id}). "
              "Did it help?\n"
              f"Reply /intro helped {intro.id} yes or /intro helped {intro.id} no.",
              f"👋 一周前我为你引荐了 {other.display_name}（引荐 #{intro.id}）。有帮助吗？\n"
              f"回复 /引荐 有帮助 {intro.id} 是 或 /引荐 有帮助 {intro.id} 否。")
    queue_direct(session, key=f"intro-check:{intro.id}:{member.id}", member=member, kind=KIND,
                 reply=Reply(text=text, language=lang, buttons=check_buttons(intro.id, lang)), due_at=now)


def _community_language(session: Session, ctx: JobContext, community_id: int) -> str:
    community = session.get(Community, community_id)
    if community is None:
        return "en"
    return community_settings(community, settings=ctx.settings).language


def _eligible(member: Member, now: datetime) -> bool:
    """Consents to be suggested, did not opt out of introductions, is not snoozed at ``now``."""
    snoozed = member.intro_snooze_until is not None and member.intro_snooze_until > now
    return member.consent_suggest and not member.intro_opt_out and not snoozed


def _busy_ids(session: Session, now: datetime) -> set[int]:
    """Members at their cap: in an open proposal, or in :data:`PROPOSALS_PER_WEEK` proposed this week."""
    rows = session.exec(select(Introduction.member_a_id, Introduction.member_b_id, Introduction.status,
                               Introduction.created_at).where(
        or_(col(Introduction.status) == "proposed", col(Introduction.created_at) > now - _WEEK))).all()
    counts: dict[int, int] = {}
    open_ids: set[int] = set()
    for a, b, status, _created in rows:
        for member_id in (a, b):
            counts[member_id] = counts.get(member_id, 0) + 1
            if status == "proposed":
                open_ids.add(member_id)
    return open_ids | {m for m, n in counts.items() if n >= PROPOSALS_PER_WEEK}


def _askers(ctx: JobContext, now: datetime) -> list[_Asker]:
    """Members waiting for a proposal, by id: needs stated, eligible, not at their cap."""
    with session_scope(ctx.engine) as session:
        busy = _busy_ids(session, now)
        thresholds = {c.id: community_settings(c, settings=ctx.settings).match_threshold
                      for c in session.exec(select(Community)).all()}
        members = session.exec(select(Member).where(Member.needs != "").order_by(col(Member.id))).all()
        return [_Asker(m.community_id, m.id, m.needs.strip(), tuple(sorted(language_codes(m.languages))),
                       thresholds.get(m.community_id))
                for m in members
                if m.id is not None and m.id not in busy and m.needs.strip() and _eligible(m, now)]


def _propose(ctx: JobContext, matcher: Matcher, asker: _Asker, now: datetime) -> int:
    """Propose the best introduction for ``asker``; returns 1 if one was made, else 0."""
    found = matcher.search(community_id=asker.community_id, query=asker.needs, kinds=["member"],
                           top_k=CANDIDATES, threshold=asker.threshold, languages=asker.languages or None)
    good = [m for m in found if not m.below_threshold and m.id != asker.member_id]
    if not good:
        return 0
    with session_scope(ctx.engine) as session:  # re-checked here: the world may have moved on
        member = session.get(Member, asker.member_id)
        if member is None or not _can_take_part(session, member, now):
            return 0
        met = _partners(session, asker.member_id)
        for match in good:
            other = session.get(Member, match.id)
            if (other is None or other.id in met or other.community_id != member.community_id
                    or not _can_take_part(session, other, now)):
                continue
            intro = _create(session, member, other, match, now)
            if intro is not None:
                _ask_both(session, ctx, intro, member, other, now)
                return 1
    return 0


def _can_take_part(session: Session, member: Member, now: datetime) -> bool:
    """Eligible, not at the cap (as of this transaction), and reachable in a direct chat."""
    return (_eligible(member, now) and member.id not in _busy_ids(session, now)
            and direct_address(session, member) is not None)


def _partners(session: Session, member_id: int) -> set[int]:
    """Everyone ``member_id`` was ever in an introduction with, whatever its status."""
    rows = session.exec(select(Introduction.member_a_id, Introduction.member_b_id).where(
        or_(col(Introduction.member_a_id) == member_id, col(Introduction.member_b_id) == member_id))).all()
    return {a if b == member_id else b for a, b in rows}


def _create(session: Session, asker: Member, other: Member, match: Match,
            now: datetime) -> Introduction | None:
    """Insert the proposal (``None`` when the pair exists already, e.g. made by another process)."""
    assert asker.id is not None and other.id is not None
    reason = (f'member {asker.id} needs "{one_liner(asker.needs, 200)}"; '
              f'member {other.id} offers "{one_liner(_offer_of(other), 200)}"')
    if match.why:
        reason += f" ({match.why})"
    intro = Introduction(community_id=asker.community_id, member_a_id=min(asker.id, other.id),
                         member_b_id=max(asker.id, other.id), reason=reason[:1000], status="proposed",
                         created_at=now)
    try:
        with session.begin_nested():
            session.add(intro)
    except IntegrityError:
        log.info("introduction of members %s and %s exists already", asker.id, other.id)
        return None
    return intro


def _offer_of(member: Member) -> str:
    return member.offers.strip() or member.skills.strip() or member.bio.strip()


def _ask_both(session: Session, ctx: JobContext, intro: Introduction, asker: Member, other: Member,
              now: datetime) -> None:
    """Queue the two asks: to ``asker`` (someone offers what you need) and to ``other`` (someone needs what
    you offer), each in their own language, naming nobody."""
    assert intro.id is not None
    default = _community_language(session, ctx, asker.community_id)
    need, offer = one_liner(asker.needs, _QUOTE_CHARS), one_liner(_offer_of(other), _QUOTE_CHARS)
    for member, side in ((asker, "asker"), (other, "helper")):
        lang = member_language(member, default, session=session)
        text = _ask_text(intro.id, side, need=need, offer=offer, language=lang)
        queue_direct(session, key=f"intro-ask:{intro.id}:{member.id}", member=member, kind=KIND,
                     reply=Reply(text=text, language=lang, buttons=ask_buttons(intro.id, lang)), due_at=now)


def _ask_text(intro_id: int, side: str, *, need: str, offer: str, language: str) -> str:
    """The proposal's text for the member who needs (``side="asker"``) or the one who offers."""
    if side == "asker":
        head = tr(language,
                  f'🤝 Introduction #{intro_id}: a member may help with what you need ("{need}"): they offer '
                  f'"{offer}". Would you like an introduction?',
                  f"🤝 引荐 #{intro_id}：有一位成员也许能帮上你的需要（「{need}」）：TA 能提供「{offer}」。"
                  "想认识一下吗？")
    else:
        head = tr(language,
                  f'🤝 Introduction #{intro_id}: a member needs "{need}", which matches what you offer '
                  f'("{offer}"). Would you like to be introduced?',
                  f"🤝 引荐 #{intro_id}：有一位成员需要「{need}」，与你能提供的（「{offer}」）相符。"
                  "愿意认识一下吗？")
    days = PROPOSAL_TTL.days
    how = tr(language,
             "Names are shared only if you both say yes.\n"
             f"Reply /intro yes {intro_id}, /intro no {intro_id}, or /intro snooze {intro_id} (no "
             f"introductions for {SNOOZE_DAYS} days). Without both answers it lapses in {days} days.",
             "只有你们双方都同意，才会互相告知姓名。\n"
             f"回复 /引荐 接受 {intro_id}、/引荐 拒绝 {intro_id}，或 /引荐 暂停 {intro_id}"
             f"（{SNOOZE_DAYS} 天内不再引荐）。{days} 天内未获双方同意将自动取消。")
    return f"{head}\n{how}"
