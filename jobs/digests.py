"""The ``digests`` job: the weekly digest of each announcement channel, and opt-in personal digests.

The scheduler runs the job every minute; the job itself reads each community's ``digest_cron`` (in its
time zone, :class:`jobs.triggers.CronSchedule`) and works for the latest fire time ``p`` at or before
``now`` while ``now - p`` is within the digest grace window (:data:`DIGEST_GRACE`, 6 h, the dispatcher's
grace for ``digest``). Every message is queued under a key naming its period, so the many runs inside one
window, a restart in the middle, or two processes queue each digest once; a run more than 6 h after ``p``
(the bot was down) queues nothing for that period. All messages are due at ``p``.

Channel digest (kind ``digest``, key ``digest:<community id>:<platform>:<conversation>:<p ISO>``), one per
``announce_channels`` entry on any platform, in the community's language:

* new members: joined (``Member.created_at``) in the 7 days before ``p``, with an account on a platform
  (imported directory rows are not "joining") and ``consent_suggest`` on (a member who has not said what
  they offer or need is not announced to the channel);
* upcoming events: scheduled, not over at ``now`` and starting before ``p`` + 14 days;
* new resources: added in the 7 days before ``p``.
An empty week is said in one short line (with how to share something) rather than skipped, so every
period is decided once and the channel sees the bot is alive.

Personal digest (kind ``personal_digest``, key ``pdigest:<member id>:<p ISO>``) for each member with
``consent_digest``, by direct message, in the member's language and time zone
(:func:`bot.members.member_language`, :func:`bot.members.member_zone`):

* events (starting in the same 14 days) and resources (added in the same 7 days) that the matcher ranks
  above the community's threshold against the member's needs, skills and bio;
* one or two members to meet (matched against the member's needs, else their interests; never
  themselves; only members with ``consent_suggest``);
* open questions they could answer (:func:`jobs.questions.open_questions` of the 7 days before ``p``,
  older than the route-after delay) where the member is among the question's consenting best answerers;
  only for members with ``consent_questions``, each with its ``/answer`` id (the route is created if the
  ``questions`` job had not routed it to them).
A personal digest with nothing in it is not sent: its row is stored as ``skipped``, so the period is
decided once and the matcher is not asked again every minute.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.community import CommunitySettings, community_settings
from bot.db import session_scope
from bot.events import event_line, upcoming_events
from bot.i18n import tr
from bot.language import language_codes
from bot.members import member_language, member_zone
from bot.messages import Button, Match, MatchKind, Reply
from bot.models import (
    Community,
    Event,
    EventStatus,
    Member,
    MessageLog,
    Notification,
    NotificationStatus,
    PlatformIdentity,
    Resource,
)
from bot.notifications import direct_address, queue_direct, queue_notification, split_target
from bot.ports import Matcher
from bot.timefmt import format_day
from jobs.context import JobContext
from jobs.dispatch import GRACE
from jobs.questions import (
    ANSWER_ACTION,
    best_answerers,
    ensure_route,
    open_questions,
    quote_text,
    route_after,
)
from jobs.triggers import CronSchedule

log = logging.getLogger(__name__)
_Row = TypeVar("_Row", Event, Resource, Member)

#: How late after its cron time a digest is still queued.
DIGEST_GRACE = GRACE["digest"]
#: "New" means added in this span before the fire time.
LOOKBACK = timedelta(days=7)
#: "Upcoming" means starting within this span after the fire time.
LOOKAHEAD = timedelta(days=14)
#: At most this many items per section of a channel digest.
SECTION_LIMIT = 8
#: At most this many events / resources / questions in a personal digest, and members to meet.
PERSONAL_LIMIT, PEOPLE_LIMIT = 3, 2
#: Matches asked of the matcher per personal section (before the date and consent filters).
SEARCH_TOP_K = 20
#: RSVP buttons on a digest.
BUTTON_LIMIT = 5
#: Longest profile snippet next to a member's name, in characters.
SNIPPET_CHARS = 80


@dataclass(frozen=True, slots=True)
class Period:
    """The digest period a run works for: its time ``at`` (aware; the windows and the due time) and the
    scheduled fire time ``key_at`` that names it in keys (the same, except for a forced run: the next fire
    time, so the scheduled run finds the digest already sent)."""

    at: datetime
    key_at: datetime | None = None

    @property
    def since(self) -> datetime:
        """Start of the "new this week" window."""
        return self.at - LOOKBACK

    @property
    def until(self) -> datetime:
        """End of the "upcoming" window."""
        return self.at + LOOKAHEAD

    @property
    def tag(self) -> str:
        """The period's part of a notification key (the fire time, ISO, with its offset)."""
        return (self.key_at or self.at).isoformat()


def run_digests(ctx: JobContext, now: datetime) -> str:
    """The ``digests`` job for ``now`` (aware UTC): queue each community's due digests.

    With ``ctx.force`` (``communitybot jobs run digests --now``) the digest of the coming period is sent now
    (:func:`due_period`): once, however often it is forced, and not again at its scheduled time. Returns a
    one-line summary; a failure in one community is logged with its traceback and does not stop the others.
    """
    with session_scope(ctx.engine) as session:
        community_ids = list(session.exec(select(Community.id).order_by(col(Community.id))).all())
    channel = personal = 0
    for community_id in community_ids:
        try:
            c, p = _community_digests(ctx, community_id, now)
        except Exception:
            log.exception("digests: community %s failed", community_id)
            continue
        channel, personal = channel + c, personal + p
    return f"queued {channel} channel digests and {personal} personal digests"


def _community_digests(ctx: JobContext, community_id: int | None, now: datetime) -> tuple[int, int]:
    with session_scope(ctx.engine) as session:
        community = session.get(Community, community_id)
        assert community is not None
        settings = community_settings(community, settings=ctx.settings)
        period = due_period(settings, now, force=bool(getattr(ctx, "force", False)))
        if period is None:
            return 0, 0
        channel = queue_channel_digests(session, community=community, settings=settings, period=period,
                                        now=now)
    with session_scope(ctx.engine) as session:  # apart: a matcher failure keeps the channel digests
        community = session.get(Community, community_id)
        assert community is not None
        personal = queue_personal_digests(session, ctx, community=community, settings=settings,
                                          period=period, now=now)
    return channel, personal


def due_period(settings: CommunitySettings, now: datetime, *, force: bool = False) -> Period | None:
    """The digest period due at ``now``: the latest ``digest_cron`` time in the community's zone at or
    before ``now``, if ``now`` is at most :data:`DIGEST_GRACE` after it; ``None`` otherwise. ``force``
    gives the coming period early: its contents as of ``now``, named by the next fire time."""
    schedule = CronSchedule(settings.digest_cron, settings.zone)
    if force:
        upcoming = schedule.get_next_fire_time(None, now)
        return Period(now.replace(second=0, microsecond=0), key_at=upcoming)
    fired = schedule.last_fire_time(now)
    return Period(fired) if now - fired <= DIGEST_GRACE else None


def _queued(session: Session, key: str) -> bool:
    return session.exec(select(Notification.id).where(Notification.key == key)).first() is not None


# --- channel digests ----------------------------------------------------------------------------------


def queue_channel_digests(
    session: Session, *, community: Community, settings: CommunitySettings, period: Period, now: datetime,
) -> int:
    """Queue the digest of ``period`` to each announcement channel that has not had it; returns how many
    were queued. Entries of ``announce_channels`` whose platform cannot be told are logged and skipped."""
    targets: list[tuple[str, str, str]] = []
    for raw in settings.announce_channels:
        target = split_target(raw)
        if target is None:
            log.warning("community %r: announce channel %r names no platform (slack:ID or wechat:ID)",
                        community.name, raw)
            continue
        key = f"digest:{community.id}:{target[0]}:{target[1]}:{period.tag}"
        if not _queued(session, key):
            targets.append((key, *target))
    if not targets:
        return 0
    assert community.id is not None
    reply = channel_digest(session, community_id=community.id, settings=settings, period=period, now=now)
    return sum(queue_notification(session, key=key, community_id=community.id, kind="digest",
                                  platform=platform, conversation=conversation, reply=reply,
                                  due_at=period.at)
               for key, platform, conversation in targets)


def channel_digest(
    session: Session, *, community_id: int, settings: CommunitySettings, period: Period, now: datetime,
) -> Reply:
    """The channel digest of ``period``, in the community's language, with RSVP buttons."""
    lang = settings.language
    members = new_members(session, community_id=community_id, period=period)
    events = upcoming_events(session, community_id=community_id, now=now, end=period.until,
                             limit=SECTION_LIMIT)
    resources = new_resources(session, community_id=community_id, period=period)
    day = format_day(period.at.astimezone(settings.zone), language=lang)
    lines = [tr(lang, f"📬 Weekly digest · {day}", f"📬 社区周报 · {day}")]
    if not (members or events or resources):
        lines.append(tr(lang, "A quiet week: no new members, events or resources. Share something with "
                              "/resource add \"Title\" https://... or plan an event with /event create.",
                        "本周很安静：没有新成员、活动或资源。可以用 /资源 添加 \"标题\" https://... "
                        "分享资源，或用 /活动 创建 发起活动。"))
        return Reply(text="\n".join(lines), language=lang)
    lines += _section(lang, ("New members:", "新成员："), [_member_line(m, lang) for m in members])
    lines += _section(lang, ("Upcoming events (next 14 days):", "近期活动（未来 14 天）："),
                      [event_line(e, tz=settings.zone, language=lang) for e in events])
    lines += _section(lang, ("New resources:", "新资源："), [_resource_line(r) for r in resources])
    lines.append(tr(lang, "RSVP with /rsvp ID. Want your own digest? /profile set digest: yes",
                    "报名请发送 /报名 活动编号。想收到个人周报？发送 /资料 设置 周报：是"))
    return Reply(text="\n".join(lines), language=lang, buttons=_rsvp_buttons(events, lang))


def new_members(session: Session, *, community_id: int, period: Period) -> list[Member]:
    """Members created in ``[period.since, period.at)`` who have a platform account and
    ``consent_suggest``, oldest first, at most :data:`SECTION_LIMIT`."""
    has_account = sa.exists(select(PlatformIdentity.id).where(
        col(PlatformIdentity.member_id) == col(Member.id)))
    return list(session.exec(select(Member).where(
        Member.community_id == community_id, col(Member.consent_suggest).is_(True), has_account,
        col(Member.created_at) >= period.since, col(Member.created_at) < period.at,
    ).order_by(col(Member.created_at), col(Member.id)).limit(SECTION_LIMIT)).all())


def new_resources(session: Session, *, community_id: int, period: Period) -> list[Resource]:
    """Resources added in ``[period.since, period.at)``, newest first, at most :data:`SECTION_LIMIT`."""
    return list(session.exec(select(Resource).where(
        Resource.community_id == community_id,
        col(Resource.created_at) >= period.since, col(Resource.created_at) < period.at,
    ).order_by(col(Resource.created_at).desc(), col(Resource.id).desc()).limit(SECTION_LIMIT)).all())


def _section(lang: str, header: tuple[str, str], lines: list[str]) -> list[str]:
    return [tr(lang, *header), *(f"• {line}" for line in lines)] if lines else []


def _member_line(member: Member, lang: str) -> str:
    for field_name, en, zh in (("offers", "offers", "能提供"), ("skills", "skills", "技能"),
                               ("bio", "", "")):
        value = quote_text(getattr(member, field_name), SNIPPET_CHARS)
        if value:
            label = tr(lang, f"{en}: ", f"{zh}：") if en else ""
            return f"{member.display_name} — {label}{value}"
    return member.display_name


def _resource_line(resource: Resource) -> str:
    line = f"#{resource.id} {quote_text(resource.title, 120)}"
    return f"{line} — {resource.url}" if resource.url else line


def _rsvp_buttons(events: list[Event], lang: str) -> tuple[Button, ...]:
    return tuple(Button(label=tr(lang, f"RSVP #{e.id}", f"报名 #{e.id}"), action="rsvp", value=str(e.id))
                 for e in events[:BUTTON_LIMIT])


# --- personal digests ---------------------------------------------------------------------------------


@dataclass
class _Answerers:
    """Each open question's consenting best answerers, found once per run (the matcher is asked once)."""

    session: Session
    matcher: Matcher
    threshold: float | None
    found: dict[int, list[int]] = field(default_factory=dict)

    def of(self, question: MessageLog) -> list[int]:
        assert question.id is not None
        if question.id not in self.found:
            members = best_answerers(self.session, self.matcher, question=question, threshold=self.threshold,
                                     limit=SEARCH_TOP_K)
            self.found[question.id] = [m.id for m in members if m.id is not None]
        return self.found[question.id]


@dataclass
class _Personal:
    """What one run needs to write personal digests for one community."""

    session: Session
    community: Community
    settings: CommunitySettings
    period: Period
    now: datetime
    matcher: Matcher
    questions: list[MessageLog]
    answerers: _Answerers


def queue_personal_digests(
    session: Session, ctx: JobContext, *, community: Community, settings: CommunitySettings, period: Period,
    now: datetime,
) -> int:
    """Queue the personal digest of ``period`` for each member with ``consent_digest`` who can be reached
    and has not had it; returns how many were queued to be sent (empty ones are stored as skipped)."""
    members = session.exec(select(Member).where(
        Member.community_id == community.id, col(Member.consent_digest).is_(True)
    ).order_by(col(Member.id))).all()
    due = [m for m in members
           if not _queued(session, f"pdigest:{m.id}:{period.tag}") and direct_address(session, m) is not None]
    if not due:
        return 0
    assert community.id is not None
    matcher = ctx.get_matcher()
    run = _Personal(session, community, settings, period, now, matcher,
                    open_questions(session, community_id=community.id, since=period.since,
                                   until=period.at - route_after(community)),
                    _Answerers(session, matcher, settings.match_threshold))
    return sum(_queue_personal(run, member) for member in due)


def _queue_personal(run: _Personal, member: Member) -> bool:
    key = f"pdigest:{member.id}:{run.period.tag}"
    reply = personal_digest(run, member)
    if reply is None:
        empty = Reply(text="(nothing for this member this week)", language="en")
        if queue_direct(run.session, key=key, member=member, kind="personal_digest", reply=empty,
                        due_at=run.period.at):
            run.session.exec(sa.update(Notification).where(col(Notification.key) == key)
                             .values(status=NotificationStatus.SKIPPED)
                             .execution_options(synchronize_session=False))
        return False
    return queue_direct(run.session, key=key, member=member, kind="personal_digest", reply=reply,
                        due_at=run.period.at)


def personal_digest(run: _Personal, member: Member) -> Reply | None:
    """``member``'s digest for the run's period in their language; ``None`` when it has nothing."""
    lang = member_language(member, run.settings.language, session=run.session)
    zone = member_zone(member, run.settings.zone)
    events = _matching_events(run, member)
    resources = _matching_resources(run, member)
    people = _people_to_meet(run, member)
    questions = _open_questions_for(run, member)
    if not (events or resources or people or questions):
        return None
    lines = [tr(lang, f"📬 Your weekly digest, {member.display_name}",
                f"📬 {member.display_name}，你的个人周报")]
    lines += _section(lang, ("Events for you:", "你可能感兴趣的活动："),
                      [event_line(e, tz=zone, language=lang) for e in events])
    lines += _section(lang, ("Resources for you:", "你可能用得上的资源："),
                      [_resource_line(r) for r in resources])
    lines += _section(lang, ("People you could meet:", "值得认识的人："),
                      [_member_line(p, lang) for p in people])
    lines += _section(lang, ("Open questions you could answer:", "你也许能回答的问题："),
                      [_question_line(rid, q, lang) for rid, q in questions])
    lines.append(tr(lang, "Turn this digest off with /profile set digest: no",
                    "关闭个人周报：/资料 设置 周报：否"))
    buttons = _rsvp_buttons(events, lang) + tuple(
        Button(label=tr(lang, f"Answer #{rid}", f"回答 #{rid}"), action=ANSWER_ACTION, value=str(rid))
        for rid, _ in questions)
    return Reply(text="\n".join(lines), language=lang, buttons=buttons)


def _interests(member: Member) -> str:
    return "; ".join(v.strip() for v in (member.needs, member.skills, member.bio) if v.strip())


def _search(run: _Personal, member: Member, query: str, kind: MatchKind) -> list[Match]:
    """Above-threshold matches of ``kind`` for ``query``, in languages the member reads."""
    if not query:
        return []
    assert run.community.id is not None
    found = run.matcher.search(community_id=run.community.id, query=query, kinds=[kind], top_k=SEARCH_TOP_K,
                               threshold=run.settings.match_threshold,
                               languages=sorted(language_codes(member.languages)) or None)
    return [m for m in found if not m.below_threshold and m.kind == kind]


def _matching_events(run: _Personal, member: Member) -> list[Event]:
    ids = [m.id for m in _search(run, member, _interests(member), "event")]
    rows = _by_id(run.session, Event, ids)
    return [e for e in rows if e.community_id == run.community.id and e.status == EventStatus.SCHEDULED
            and (e.ends_at or e.starts_at) >= run.now and e.starts_at < run.period.until][:PERSONAL_LIMIT]


def _matching_resources(run: _Personal, member: Member) -> list[Resource]:
    ids = [m.id for m in _search(run, member, _interests(member), "resource")]
    rows = _by_id(run.session, Resource, ids)
    return [r for r in rows if r.community_id == run.community.id and r.added_by_member_id != member.id
            and run.period.since <= r.created_at < run.period.at][:PERSONAL_LIMIT]


def _people_to_meet(run: _Personal, member: Member) -> list[Member]:
    ids = [m.id for m in _search(run, member, member.needs.strip() or _interests(member), "member")]
    rows = _by_id(run.session, Member, [i for i in ids if i != member.id])
    return [p for p in rows if p.community_id == run.community.id and p.consent_suggest][:PEOPLE_LIMIT]


def _open_questions_for(run: _Personal, member: Member) -> list[tuple[int, MessageLog]]:
    """``(route id, question)`` of open questions ``member`` may answer and has not answered or passed."""
    if not member.consent_questions:
        return []
    picked: list[tuple[int, MessageLog]] = []
    for question in run.questions:
        if len(picked) >= PERSONAL_LIMIT:
            break
        if member.id not in run.answerers.of(question):
            continue
        route = ensure_route(run.session, question=question, member=member, now=run.now)
        if route.status == "asked" and route.id is not None:
            picked.append((route.id, question))
    return picked


def _question_line(route_id: int, question: MessageLog, lang: str) -> str:
    quote = quote_text(question.text, 200)
    return tr(lang, f"“{quote}” — /answer {route_id} your answer",
              f"“{quote}” —— /回答 {route_id} 你的回答")


def _by_id(session: Session, model: type[_Row], ids: list[int]) -> list[_Row]:
    """The rows of ``model`` with ``ids``, in the order of ``ids`` (missing ones left out)."""
    if not ids:
        return []
    rows = {row.id: row for row in session.exec(select(model).where(col(model.id).in_(ids))).all()}
    return [rows[i] for i in dict.fromkeys(ids) if i in rows]
