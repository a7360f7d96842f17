"""Members as seen from a platform: finding or creating the member behind a platform user id, and joining
two members that turn out to be one person (:func:`merge_members`)."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, select

from bot.db import get_or_insert
from bot.language import SUPPORTED_LANGUAGES, language_code
from bot.models import (
    Community,
    Event,
    Introduction,
    LinkCode,
    Member,
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


#: Profile text fields that :func:`merge_members` fills on the kept member when they are empty there.
MERGED_PROFILE_FIELDS = ("bio", "skills", "offers", "needs", "location", "languages", "timezone", "url")


def merge_members(session: Session, *, keep: Member, gone: Member, now: datetime | None = None) -> None:
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
    * profile text (:data:`MERGED_PROFILE_FIELDS`): each field that is empty on ``keep`` is filled from
      ``gone``; a field ``keep`` has filled is never overwritten. ``keep``'s ``display_name`` stands;
      ``gone``'s ``external_key`` (an import's key) is carried over when ``keep`` has none, so a re-import
      updates ``keep`` instead of re-creating ``gone``.

    Consent rule: ``keep``'s ``consent_suggest``, ``consent_digest`` and ``consent_quote`` stand unchanged
    and ``gone``'s are dropped: ``keep`` is the account the person chose to link *to*, so its choices are
    the ones that hold, and a merge never turns on a consent that ``keep`` had off.

    ``gone``'s own link codes are deleted with it. ``keep.updated_at`` is set to ``now`` (default: the
    current time) so the search index re-embeds the merged profile.

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

    for field in MERGED_PROFILE_FIELDS:
        if not getattr(keep, field).strip() and getattr(gone, field).strip():
            setattr(keep, field, getattr(gone, field))
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


_LANGUAGE_SPLIT = re.compile(r"[,，、;；/|]+")


def member_language(member: Member, default: str) -> str:
    """The language to write to ``member`` in: the first language of their profile when the bot writes it
    (``中文, English`` -> ``zh``), else ``default`` (the community's)."""
    first = _LANGUAGE_SPLIT.split(member.languages.strip(), maxsplit=1)[0]
    code = language_code(first)
    return code if code in SUPPORTED_LANGUAGES else default


def member_zone(member: Member, default: ZoneInfo) -> ZoneInfo:
    """The time zone to show times to ``member`` in: their profile's, when it is an IANA name, else
    ``default`` (the community's)."""
    if member.timezone.strip():
        try:
            return ZoneInfo(member.timezone.strip())
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return default
