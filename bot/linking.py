"""Linking identities: one person's accounts on two platforms joined into one member (``/profile link``).

On one account ``/profile link`` issues a one-time code (:func:`issue_link_code`); sent from the other
account as ``/profile link CODE`` it is redeemed (:func:`redeem_link_code`) and the sender's member is merged
into the issuer's (:func:`bot.members.merge_members`): profile, RSVPs and consent are then shared (where the
two profiles differ, the more recently updated account's values and choices hold).

A code is 8 characters from :data:`CODE_ALPHABET` (no 0/O/1/I/L to misread), shown grouped as
``K7MX-P4QD``; it is read back case-insensitively, without spaces or dashes, full-width characters folded
(NFKC). Only its SHA-256 is stored (:class:`bot.models.LinkCode`): the code is a credential.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bot.errors import UsageError
from bot.i18n import tr
from bot.members import MergedProfile, merge_members
from bot.models import LinkCode, Member

#: The characters of a code: digits and capitals without the look-alikes 0, O, 1, I and L.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
#: Characters in a code (shown as two groups of four).
CODE_LENGTH = 8
#: How long an issued code can be redeemed.
LINK_CODE_TTL = timedelta(minutes=15)


def normalise_code(code: str) -> str:
    """``"k7mx p4qd"``, ``"K7MX—P4QD"``, ``"Ｋ７ＭＸ－Ｐ４ＱＤ"`` -> ``"K7MXP4QD"``: NFKC, upper case, without
    white space and dashes (any Unicode dash). Other characters are kept (such a code matches nothing)."""
    folded = unicodedata.normalize("NFKC", code).upper()
    return "".join(ch for ch in folded if not ch.isspace() and unicodedata.category(ch) != "Pd")


def format_code(code: str) -> str:
    """A normalised code as shown to people: ``"K7MXP4QD"`` -> ``"K7MX-P4QD"``."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def hash_code(code: str) -> str:
    """The stored form of a code: the SHA-256 hex digest of :func:`normalise_code` of it."""
    return hashlib.sha256(normalise_code(code).encode("utf-8")).hexdigest()


def is_code_shaped(code: str) -> bool:
    """Whether ``code`` normalises to :data:`CODE_LENGTH` characters of :data:`CODE_ALPHABET`."""
    normal = normalise_code(code)
    return len(normal) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in normal)


def issue_link_code(
    session: Session, *, member: Member, platform: str, now: datetime, ttl: timedelta = LINK_CODE_TTL
) -> str:
    """A new one-time code for ``member`` (asked for on ``platform``), valid from ``now`` for ``ttl``.

    Returns the code grouped for display (``"K7MX-P4QD"``); only its hash is stored. The member's earlier
    unused codes are deleted (issuing again replaces them), and so are the community's expired codes.
    Flushes, never commits.
    """
    assert member.id is not None and now.tzinfo is not None
    session.exec(sa.delete(LinkCode).where(col(LinkCode.member_id) == member.id,
                                           col(LinkCode.used_at).is_(None)))
    session.exec(sa.delete(LinkCode).where(col(LinkCode.community_id) == member.community_id,
                                           col(LinkCode.expires_at) <= now))
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        digest = hash_code(code)
        if session.exec(select(LinkCode.id).where(LinkCode.code_hash == digest)).first() is None:
            break
    session.add(LinkCode(community_id=member.community_id, member_id=member.id, platform=platform,
                         code_hash=digest, created_at=now, expires_at=now + ttl))
    session.flush()
    return format_code(code)


class Redeemed(NamedTuple):
    """The outcome of :func:`redeem_link_code`: the kept member, and which of the fields the two accounts
    differed on came from which (:class:`bot.members.MergedProfile`)."""

    member: Member
    merged: MergedProfile


def redeem_link_code(
    session: Session, *, member: Member, platform: str, code: str, now: datetime, language: str = "en"
) -> Redeemed:
    """Redeem ``code`` sent by ``member`` from ``platform``: merge ``member`` into the member the code was
    issued to, mark the code used, and return that (kept) member with what the merge took from each side.
    ``member``'s row is deleted.

    The merge is :func:`bot.members.merge_members`: the issuer's row and display name stand; empty profile
    fields are filled from the other account; a field both filled differently, and the consents and
    opt-ins, take the values of the account updated more recently. Marking the code used is a conditional
    update, so of two accounts redeeming one code at once only one succeeds. Flushes, never commits.

    Raises:
        UsageError (message in ``language``): the code is not code-shaped, unknown, expired or already
            used ("ask for a new one"); it was issued in another community; or it was issued to ``member``
            itself ("send it from your other account").
    """
    assert member.id is not None and now.tzinfo is not None
    if not is_code_shaped(code):
        raise UsageError(tr(language, "That is not a link code; codes look like K7MX-P4QD. ",
                            "这不是绑定验证码，验证码的格式类似 K7MX-P4QD。") + _ask_again(language))
    link = session.exec(select(LinkCode).where(LinkCode.code_hash == hash_code(code))).first()
    if link is None:
        raise UsageError(_unknown(language))
    if link.community_id != member.community_id:
        raise UsageError(tr(language, "That code was issued in another community; only accounts in the same "
                                      "community can be linked.",
                            "这个验证码来自另一个社区，只能绑定同一社区里的账号。"))
    if link.used_at is not None or link.expires_at <= now:
        raise UsageError(_unknown(language))
    if link.member_id == member.id:
        raise UsageError(tr(language, "That code belongs to this account. Send it from your OTHER account "
                                      "(the one you want to link to this one).",
                            "这个验证码是本账号生成的，请从你的另一个账号发送它。"))
    claimed = session.exec(
        sa.update(LinkCode)
        .where(col(LinkCode.id) == link.id, col(LinkCode.used_at).is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # redeemed by another account meanwhile
        raise UsageError(_unknown(language))
    session.refresh(link)
    keep = session.get(Member, link.member_id)
    assert keep is not None  # the foreign key, and merge_members deletes a merged member's codes
    merged = merge_members(session, keep=keep, gone=member, now=now)
    return Redeemed(keep, merged)


def _ask_again(language: str) -> str:
    return tr(language, "Ask for a new one with /profile link on your other account.",
              "请在另一个账号上发送 /资料 绑定 获取新的验证码。")


def _unknown(language: str) -> str:
    return tr(language, "That link code is unknown, expired or already used. ",
              "这个验证码无效、已过期或已被使用。") + _ask_again(language)
