"""A member's own data: what is stored about them (:func:`member_data`) and forgetting them
(:func:`forget_member`), for ``/privacy show|export|forget`` (:mod:`bot.commands.privacy`).

What :func:`forget_member` removes: the member row (profile, consents and opt-ins), their linked accounts
(:class:`~bot.models.PlatformIdentity`), RSVPs, link codes, notifications queued or sent to them,
introductions they are part of (both sides' rows: an introduction is about the pair), questions routed
to them (with their answers), and their logged messages (:class:`~bot.models.MessageLog` rows sent from
one of their accounts in their community) together with the routes of those messages to other members.
The search indexes follow the database through triggers, so the member's vectors leave the index at the
next search and a rebuild never brings them back.

What is kept, without the link to them: events they organised (``organiser_member_id`` set to ``NULL``)
and resources they shared (``added_by_member_id`` set to ``NULL``; an answer of theirs shared as a resource
with their consent stays too): both are community content others rely on. Training utterances
(:class:`~bot.models.LabelledUtterance`) are admin data holding a text and a label, never a sender; the
audit log (:class:`~bot.models.AdminAction`) keeps the actor of admin actions. The log row of the
``/privacy forget confirm`` message itself is written by the router after the command ran, so it stays
until the message-log retention (``message_log_days``, :mod:`jobs.retention`) removes it.

A later message from the same account creates a fresh member (:func:`bot.members.member_for_sender`) who
is not suggested to anyone (``consent_suggest=False``) until they fill their profile again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from bot.models import (
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
)

#: Profile fields listed by :func:`member_data`, in order.
PROFILE_FIELDS = ("display_name", "bio", "skills", "offers", "needs", "location", "languages", "timezone",
                  "url", "source", "created_at", "updated_at")
#: Consents and opt-ins listed by :func:`member_data`, in order.
CONSENT_FIELDS = ("consent_suggest", "consent_digest", "consent_quote", "consent_event_alerts",
                  "consent_questions", "intro_opt_out", "intro_snooze_until", "onboarding", "welcomed_at")

#: Why each section of :func:`member_data` is kept: ``section -> (English, Chinese)``.
WHY: dict[str, tuple[str, str]] = {
    "profile": ("so members who need what you offer can find you, and the bot can talk to you by name",
                "让需要你所提供的成员能找到你，并让机器人以名字称呼你"),
    "consents": ("to do only what you agreed to (being suggested, digests, being quoted, alerts, questions, "
                 "introductions)",
                 "只做你同意的事（被推荐、周报、被引用、活动提醒、转交问题、引荐）"),
    "accounts": ("to recognise you on each platform and reach you by direct message",
                 "在各平台上认出你，并通过私信联系你"),
    "rsvps": ("to count attendees and remind you before events you answered",
              "统计报名人数，并在你报名的活动开始前提醒你"),
    "messages": ("to answer you, route questions nobody answered, and improve the bot; deleted after the "
                 "community's retention period",
                 "用于回答你、转交无人回答的问题和改进机器人；超过社区的保留期限后删除"),
    "notifications": ("the outbox of messages the bot sends you on its own (reminders, digests, intros)",
                      "机器人主动发给你的消息（提醒、周报、引荐）的发件队列"),
    "introductions": ("to ask both people before an introduction and not to propose the same pair twice",
                      "引荐前征得双方同意，并避免重复引荐同一对成员"),
    "questions": ("questions the bot passed to you and your answers, so it does not ask you twice",
                  "机器人转给你的问题和你的回答，避免重复询问"),
    "resources": ("resources you shared with the community (kept, without your name, if you are forgotten)",
                  "你分享给社区的资源（删除你的数据后保留，但不再关联到你）"),
    "events_organised": ("events you organise (kept, without your name, if you are forgotten)",
                         "你组织的活动（删除你的数据后保留，但不再关联到你）"),
}


def _value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _identities(session: Session, member: Member) -> list[PlatformIdentity]:
    return list(session.exec(select(PlatformIdentity).where(PlatformIdentity.member_id == member.id)
                             .order_by(col(PlatformIdentity.id))).all())


def _messages(session: Session, member: Member, identities: list[PlatformIdentity]) -> list[MessageLog]:
    """The member's logged messages: sent from one of their accounts (platform and user id) in their
    community, oldest first."""
    if not identities:
        return []
    accounts = or_(*[(col(MessageLog.platform) == i.platform)
                     & (col(MessageLog.sender) == i.platform_user_id) for i in identities])
    rows = session.exec(select(MessageLog).where(MessageLog.community_id == member.community_id, accounts)
                        .order_by(col(MessageLog.created_at), col(MessageLog.id)))
    return list(rows.all())


def _notifications(session: Session, member: Member,
                   identities: list[PlatformIdentity]) -> list[Notification]:
    """Notifications queued for the member: by ``member_id``, or addressed to one of their accounts."""
    direct = [(col(Notification.platform) == i.platform)
              & (col(Notification.conversation) == i.platform_user_id) for i in identities]
    return list(session.exec(select(Notification).where(
        Notification.community_id == member.community_id,
        or_(col(Notification.member_id) == member.id, *direct),
    ).order_by(col(Notification.id))).all())


def _introductions(session: Session, member: Member) -> list[Introduction]:
    return list(session.exec(select(Introduction).where(
        or_(col(Introduction.member_a_id) == member.id, col(Introduction.member_b_id) == member.id)
    ).order_by(col(Introduction.id))).all())


def member_data(session: Session, member: Member) -> dict[str, Any]:
    """Everything stored about ``member``, as a JSON-ready dict (datetimes as ISO strings).

    Keys: ``member_id``, ``community_id``, ``why`` (``section -> {"en", "zh"}``: one line on why each
    section is kept) and the sections ``profile``, ``consents``, ``accounts``, ``rsvps`` (with event titles),
    ``messages`` (text, when, intent), ``notifications``, ``introductions`` (the other member by name),
    ``questions`` (routed to them, with their answers), ``resources`` (they shared) and
    ``events_organised``. Admin data (training labels, the audit log) is not included.
    """
    identities = _identities(session, member)
    rsvps = session.exec(select(Rsvp, Event).join(Event, col(Event.id) == col(Rsvp.event_id))
                         .where(Rsvp.member_id == member.id).order_by(col(Event.starts_at))).all()
    intros = []
    for intro in _introductions(session, member):
        other_id = intro.member_b_id if intro.member_a_id == member.id else intro.member_a_id
        other = session.get(Member, other_id)
        intros.append({"id": intro.id, "with": other.display_name if other else None, "reason": intro.reason,
                       "status": intro.status,
                       "your_answer": intro.answer_a if intro.member_a_id == member.id else intro.answer_b,
                       "created_at": _value(intro.created_at), "introduced_at": _value(intro.introduced_at)})
    routes = session.exec(select(QuestionRoute, MessageLog)
                          .join(MessageLog, col(MessageLog.id) == col(QuestionRoute.message_log_id))
                          .where(QuestionRoute.member_id == member.id).order_by(col(QuestionRoute.id))).all()
    resources = session.exec(select(Resource).where(Resource.added_by_member_id == member.id)
                             .order_by(col(Resource.id))).all()
    events = session.exec(select(Event).where(Event.organiser_member_id == member.id)
                          .order_by(col(Event.starts_at))).all()
    return {
        "member_id": member.id,
        "community_id": member.community_id,
        "why": {section: {"en": en, "zh": zh} for section, (en, zh) in WHY.items()},
        "profile": {field: _value(getattr(member, field)) for field in PROFILE_FIELDS},
        "consents": {field: _value(getattr(member, field)) for field in CONSENT_FIELDS},
        "accounts": [{"platform": i.platform, "user_id": i.platform_user_id, "display_name": i.display_name,
                      "linked_at": _value(i.created_at)} for i in identities],
        "rsvps": [{"event_id": e.id, "event": e.title, "starts_at": _value(e.starts_at), "status": r.status,
                   "answered_at": _value(r.updated_at)} for r, e in rsvps],
        "messages": [{"id": m.id, "platform": m.platform, "conversation": m.conversation, "text": m.text,
                      "at": _value(m.created_at), "intent": m.intent, "language": m.language}
                     for m in _messages(session, member, identities)],
        "notifications": [{"kind": n.kind, "platform": n.platform, "text": n.text, "status": n.status,
                           "due_at": _value(n.due_at), "sent_at": _value(n.sent_at)}
                          for n in _notifications(session, member, identities)],
        "introductions": intros,
        "questions": [{"route_id": r.id, "question": m.text, "status": r.status, "answer": r.answer,
                       "asked_at": _value(r.asked_at), "answered_at": _value(r.answered_at)}
                      for r, m in routes],
        "resources": [{"id": r.id, "title": r.title, "url": r.url, "added_at": _value(r.created_at)}
                      for r in resources],
        "events_organised": [{"id": e.id, "title": e.title, "starts_at": _value(e.starts_at)}
                             for e in events],
    }


def forget_member(session: Session, member: Member, now: datetime) -> dict[str, int]:
    """Delete ``member`` and what is theirs (see the module docstring for what is removed and what is kept,
    unlinked); flushes, never commits.

    ``now`` is the time of the request (kept for the caller's audit and symmetry with the other
    operations; nothing stored is stamped with it, since the rows are gone).

    Returns:
        rows removed or unlinked per kind: ``accounts``, ``rsvps``, ``link_codes``, ``notifications``,
        ``introductions``, ``questions`` (routes to them), ``messages``, ``message_routes`` (routes of their
        messages to others), ``resources_unlinked``, ``events_unlinked``, ``member`` (1).

    Raises:
        ValueError: the member is not stored.
    """
    del now
    if member.id is None:
        raise ValueError("forget_member needs a stored member")
    member_id = member.id
    identities = _identities(session, member)
    messages = _messages(session, member, identities)
    message_ids = [m.id for m in messages]
    counts: dict[str, int] = {}

    def delete_all(name: str, rows: list[Any]) -> None:
        for row in rows:
            session.delete(row)
        counts[name] = len(rows)

    delete_all("rsvps", list(session.exec(select(Rsvp).where(Rsvp.member_id == member_id)).all()))
    delete_all("link_codes", list(session.exec(
        select(LinkCode).where(LinkCode.member_id == member_id)).all()))
    delete_all("notifications", _notifications(session, member, identities))
    delete_all("introductions", _introductions(session, member))
    delete_all("questions", list(session.exec(
        select(QuestionRoute).where(QuestionRoute.member_id == member_id)).all()))
    session.flush()
    delete_all("message_routes", list(session.exec(
        select(QuestionRoute).where(col(QuestionRoute.message_log_id).in_(message_ids))).all())
        if message_ids else [])
    session.flush()  # routes go before the messages they point at (foreign keys)
    delete_all("messages", messages)
    resources = list(session.exec(select(Resource).where(Resource.added_by_member_id == member_id)).all())
    for resource in resources:
        resource.added_by_member_id = None
        session.add(resource)
    counts["resources_unlinked"] = len(resources)
    events = list(session.exec(select(Event).where(Event.organiser_member_id == member_id)).all())
    for event in events:
        event.organiser_member_id = None
        session.add(event)
    counts["events_unlinked"] = len(events)
    delete_all("accounts", identities)
    session.flush()
    session.delete(member)
    session.flush()
    counts["member"] = 1
    return counts
