"""Members as seen from a platform: finding or creating the member behind a platform user id."""

from __future__ import annotations

from sqlmodel import Session, select

from bot.models import Community, Member, PlatformIdentity

#: The console / CLI user: the local admin and organiser of every community.
CONSOLE_USER = "local"


def member_for_sender(
    session: Session, *, community: Community, platform: str, user_id: str, display_name: str = ""
) -> Member:
    """The member behind ``(platform, user_id)`` in ``community``, created on first contact.

    A member created this way is not suggested to others (``consent_suggest=False``) until they tell the
    bot what they offer or need with ``/profile set``.
    """
    assert community.id is not None
    identity = session.exec(
        select(PlatformIdentity).where(
            PlatformIdentity.community_id == community.id,
            PlatformIdentity.platform == platform,
            PlatformIdentity.platform_user_id == user_id,
        )
    ).first()
    if identity is not None:
        member = session.get(Member, identity.member_id)
        if member is not None:
            return member
    member = Member(
        community_id=community.id,
        display_name=display_name or user_id,
        consent_suggest=False,
        source=f"{platform}:{user_id}",
    )
    session.add(member)
    session.flush()
    assert member.id is not None
    session.add(
        PlatformIdentity(
            community_id=community.id,
            member_id=member.id,
            platform=platform,
            platform_user_id=user_id,
            display_name=display_name,
        )
    )
    session.flush()
    return member
