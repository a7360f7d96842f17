"""Members as seen from a platform: finding or creating the member behind a platform user id, and joining
two members that turn out to be one person (:func:`merge_members`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, col, select

from bot.db import get_or_insert
from bot.language import SUPPORTED_LANGUAGES, language_code
from bot.models import (
    Community,
    Event,
    Introduction,
    LinkCode,
    Member,
    MessageLog,
    Notification,
    PlatformIdentity,
    QuestionRoute,
    Resource,
    Rsvp,
    utcnow,
)

#: The console / CLI user: the local admin and organiser of every community.
CONSOLE_USER = "local"


def member_for_sender(
    session: Session, *, community: Community, platform: str, user_id: str, display_name: str = ""
) -> Member:
    """The member behind ``(platform, user_id)`` in ``community``, created on first contact.

    A member created this way is not suggested to others (``consent_suggest=False``) until they tell the
    bot what they offer or need with ``/profile set``. Two first messages of one person at once make one
    member (:func:`bot.db.get_or_insert`).
    """
    assert community.id is not None
    community_id = community.id

    def find() -> Member | None:
        identity = session.exec(
            select(PlatformIdentity).where(
                PlatformIdentity.community_id == community_id,
                PlatformIdentity.platform == platform,
                PlatformIdentity.platform_user_id == user_id,
            )
        ).first()
        return session.get(Member, identity.member_id) if identity is not None else None

    def insert() -> Member:
        member = Member(
            community_id=community_id,
            display_name=display_name or user_id,
            consent_suggest=False,
            source=f"{platform}:{user_id}",
        )
        session.add(member)
        session.flush()
        assert member.id is not None
        session.add(
            PlatformIdentity(
                community_id=community_id,
                member_id=member.id,
                platform=platform,
                platform_user_id=user_id,
                display_name=display_name,
            )
        )
        session.flush()
        return member

    return get_or_insert(session, find, insert)


#: Profile text fields that :func:`merge_members` joins: an empty one is filled from the other member; where
#: both differ, the more recently updated member's value is kept.
MERGED_PROFILE_FIELDS = ("bio", "skills", "offers", "needs", "location", "languages", "timezone", "url")
#: The consents and opt-ins :func:`merge_members` takes from the more recently updated member.
MERGED_CHOICES = ("consent_suggest", "consent_digest", "consent_quote", "consent_event_alerts",
                  "consent_questions", "intro_opt_out", "intro_snooze_until")


@dataclass(frozen=True)
class MergedProfile:
    """What :func:`merge_members` did with the fields (:data:`MERGED_PROFILE_FIELDS`, then
    :data:`MERGED_CHOICES`, in that order) on which the two members differed.

    Attributes:
        from_gone: fields that now hold ``gone``'s value (empty on ``keep``, or ``gone`` was updated later).
        from_keep: fields where ``keep``'s value stood over a different one of ``gone``'s (``gone``'s was
            empty, or ``keep`` was updated later or at the same time).
    """

    from_gone: tuple[str, ...] = ()
    from_keep: tuple[str, ...] = ()


def merge_members(
    session: Session, *, keep: Member, gone: Member, now: datetime | None = None
) -> MergedProfile:
    """Join ``gone`` into ``keep`` (two accounts of one person) and delete ``gone``; flushes, never commits.

    What moves to ``keep``:

    * every :class:`~bot.models.PlatformIdentity` of ``gone`` (messages from either account then reach
      ``keep``);
    * RSVPs: ``gone``'s answers become ``keep``'s; where both answered the same event, the answer with the
      later ``updated_at`` wins (on a tie ``keep``'s stands) and the other row is deleted;
    * the events ``gone`` organises (``Event.organiser_member_id``) and the resources it added
      (``Resource.added_by_member_id``);
    * scheduled work: its queued notifications, the questions routed to it (where ``keep`` was not asked
      the same one) and its introductions (an introduction between the two accounts, or one ``keep``
      already has with the same person, is dropped);
    * profile text (:data:`MERGED_PROFILE_FIELDS`): a field empty on ``keep`` is filled from ``gone``; a
      field both filled with different values takes the value of the member whose ``updated_at`` is later
      (the person's most recent word; on a tie ``keep``'s stands). ``keep``'s ``display_name`` stands;
      ``gone``'s ``external_key`` (an import's key) is carried over when ``keep`` has none, so a re-import
      updates ``keep`` instead of re-creating ``gone``.

    Consent rule: the consents and opt-ins (:data:`MERGED_CHOICES`: ``consent_suggest``,
    ``consent_digest``, ``consent_quote``, ``consent_event_alerts``, ``consent_questions``,
    ``intro_opt_out``, ``intro_snooze_until``) are all taken from the member whose ``updated_at`` is later
    (on a tie, ``keep``'s), as one set: the person's most recent choices hold, so an explicit
    ``digest: no`` made last is never turned back on by the other account's older yes, and a yes made last
    is not lost.

    ``gone``'s own link codes are deleted with it. ``keep.updated_at`` is set to ``now`` (default: the
    current time) so the search index re-embeds the merged profile.

    Returns:
        Which differing fields came from which member (:class:`MergedProfile`), for telling the person.

    Raises:
        ValueError: ``keep`` and ``gone`` are the same member, are not both stored, or belong to different
            communities.
    """
    if keep.id is None or gone.id is None:
        raise ValueError("merge_members needs two stored members")
    if keep.id == gone.id:
        raise ValueError(f"cannot merge member {keep.id} into itself")
    if keep.community_id != gone.community_id:
        raise ValueError(f"members {keep.id} and {gone.id} belong to different communities "
                         f"({keep.community_id}, {gone.community_id})")
    keep_id, gone_id = keep.id, gone.id

    identities = session.exec(select(PlatformIdentity).where(PlatformIdentity.member_id == gone_id)).all()
    for identity in identities:
        identity.member_id = keep_id
        session.add(identity)

    kept_rsvps = {r.event_id: r for r in session.exec(select(Rsvp).where(Rsvp.member_id == keep_id)).all()}
    for rsvp in session.exec(select(Rsvp).where(Rsvp.member_id == gone_id)).all():
        other = kept_rsvps.get(rsvp.event_id)
        if other is None:
            rsvp.member_id = keep_id
            session.add(rsvp)
            continue
        if rsvp.updated_at > other.updated_at:
            other.status, other.updated_at = rsvp.status, rsvp.updated_at
            session.add(other)
        session.delete(rsvp)

    for event in session.exec(select(Event).where(Event.organiser_member_id == gone_id)).all():
        event.organiser_member_id = keep_id
        session.add(event)
    for resource in session.exec(select(Resource).where(Resource.added_by_member_id == gone_id)).all():
        resource.added_by_member_id = keep_id
        session.add(resource)
    for code in session.exec(select(LinkCode).where(LinkCode.member_id == gone_id)).all():
        session.delete(code)
    _move_scheduled_work(session, keep_id=keep_id, gone_id=gone_id)

    merged = _merge_profile(keep, gone)
    external_key = gone.external_key if keep.external_key is None else None
    keep.updated_at = now or utcnow()
    session.add(keep)
    session.flush()  # everything points at keep before gone is deleted (foreign keys)

    session.delete(gone)
    session.flush()
    if external_key is not None:  # unique per community: only once gone's row is deleted
        keep.external_key = external_key
        session.add(keep)
        session.flush()
    return merged


def _merge_profile(keep: Member, gone: Member) -> MergedProfile:
    """Set ``keep``'s profile fields and choices by the rules of :func:`merge_members`."""
    gone_later = gone.updated_at > keep.updated_at
    from_gone: list[str] = []
    from_keep: list[str] = []
    for field in MERGED_PROFILE_FIELDS:
        mine, theirs = getattr(keep, field), getattr(gone, field)
        if mine.strip() == theirs.strip():
            continue
        if theirs.strip() and (gone_later or not mine.strip()):
            setattr(keep, field, theirs)
            from_gone.append(field)
        else:
            from_keep.append(field)
    for field in MERGED_CHOICES:
        mine, theirs = getattr(keep, field), getattr(gone, field)
        if mine == theirs:
            continue
        if gone_later:
            setattr(keep, field, theirs)
            from_gone.append(field)
        else:
            from_keep.append(field)
    return MergedProfile(from_gone=tuple(from_gone), from_keep=tuple(from_keep))


def _move_scheduled_work(session: Session, *, keep_id: int, gone_id: int) -> None:
    """Point ``gone_id``'s notifications, routed questions and introductions at ``keep_id`` (see
    :func:`merge_members`)."""
    for note in session.exec(select(Notification).where(Notification.member_id == gone_id)).all():
        note.member_id = keep_id
        session.add(note)
    asked = set(session.exec(
        select(QuestionRoute.message_log_id).where(QuestionRoute.member_id == keep_id)).all())
    for route in session.exec(select(QuestionRoute).where(QuestionRoute.member_id == gone_id)).all():
        if route.message_log_id in asked:
            session.delete(route)
            continue
        route.member_id = keep_id
        session.add(route)
    pairs = {frozenset((i.member_a_id, i.member_b_id)) for i in session.exec(select(Introduction).where(
        (Introduction.member_a_id == keep_id) | (Introduction.member_b_id == keep_id))).all()}
    for intro in session.exec(select(Introduction).where(
            (Introduction.member_a_id == gone_id) | (Introduction.member_b_id == gone_id))).all():
        other = intro.member_b_id if intro.member_a_id == gone_id else intro.member_a_id
        if other == keep_id or frozenset((keep_id, other)) in pairs:
            session.delete(intro)
            continue
        mine = intro.answer_a if intro.member_a_id == gone_id else intro.answer_b
        theirs = intro.answer_b if intro.member_a_id == gone_id else intro.answer_a
        intro.member_a_id, intro.member_b_id = min(keep_id, other), max(keep_id, other)
        intro.answer_a, intro.answer_b = (mine, theirs) if keep_id < other else (theirs, mine)
        session.add(intro)


_LANGUAGE_SPLIT = re.compile(r"[,，、/;；|\s]+")


def member_language(member: Member, default: str, *, session: Session | None = None) -> str:
    """The language to write to ``member`` in: the first one of their profile's ``languages`` the bot
    writes (``中文, English`` -> ``zh``; ``Svenska, English`` -> ``en``); else, when ``session`` is given,
    the language of their most recent message to the bot (:func:`recent_language`); else ``default`` (the
    community's) when the bot writes it, else ``en``."""
    for part in _LANGUAGE_SPLIT.split(member.languages):
        code = language_code(part)
        if code in SUPPORTED_LANGUAGES:
            assert code is not None
            return code
    recent = recent_language(session, member) if session is not None else None
    if recent:
        return recent
    return default if default in SUPPORTED_LANGUAGES else "en"


def recent_language(session: Session, member: Member) -> str | None:
    """The language of ``member``'s most recent logged message (:class:`~bot.models.MessageLog`) from any
    of their accounts (:class:`~bot.models.PlatformIdentity`) in their community, among those whose
    language is set to one the bot writes; ``None`` when there is none."""
    row = session.exec(
        select(MessageLog.language)
        .join(PlatformIdentity, (col(PlatformIdentity.community_id) == col(MessageLog.community_id))
              & (col(PlatformIdentity.platform) == col(MessageLog.platform))
              & (col(PlatformIdentity.platform_user_id) == col(MessageLog.sender)))
        .where(PlatformIdentity.member_id == member.id, MessageLog.community_id == member.community_id,
               col(MessageLog.language).in_(SUPPORTED_LANGUAGES))
        .order_by(col(MessageLog.created_at).desc(), col(MessageLog.id).desc())
        .limit(1)
    ).first()
    return row or None


def member_zone(member: Member, default: ZoneInfo) -> ZoneInfo:
    """The time zone to show times to ``member`` in: their profile's, when it is an IANA name, else
    ``default`` (the community's)."""
    if member.timezone.strip():
        try:
            return ZoneInfo(member.timezone.strip())
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return default
