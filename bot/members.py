"""Members as seen from a platform: finding or creating the member behind a platform user id."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.db import get_or_insert
from bot.models import Community, Member, PlatformIdentity

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
