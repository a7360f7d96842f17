"""Linking two accounts (``/profile link``) carries the scheduled work of the merged one along."""

from __future__ import annotations

from sqlmodel import select

from bot.members import merge_members
from bot.models import Introduction, Member, MessageLog, Notification, QuestionRoute
from tests.jobs.conftest import Jobs


def test_notifications_questions_and_introductions_follow_the_person(jobs: Jobs) -> None:
    keep_id = jobs.member("ann-slack", platform="slack", user="U_ANN")
    gone_id = jobs.member("ann-wechat", platform="wechat", user="wxid_ann")
    other_id = jobs.member("bo", platform="slack", user="U_BO")
    with jobs.session() as session:
        question = MessageLog(community_id=jobs.community_id, platform="slack", sender="U_BO", text="who?")
        session.add(question)
        session.flush()
        assert question.id is not None
        session.add(QuestionRoute(community_id=jobs.community_id, message_log_id=question.id,
                                  member_id=gone_id))
        session.add(Notification(key="question:1:x", community_id=jobs.community_id, kind="question",
                                 platform="wechat", conversation="wxid_ann", member_id=gone_id))
        a, b = min(gone_id, other_id), max(gone_id, other_id)
        session.add(Introduction(community_id=jobs.community_id, member_a_id=a, member_b_id=b,
                                 answer_a="yes" if a == gone_id else "",
                                 answer_b="yes" if b == gone_id else ""))
        session.add(Introduction(community_id=jobs.community_id, member_a_id=min(keep_id, gone_id),
                                 member_b_id=max(keep_id, gone_id)))
    with jobs.session() as session:
        keep, gone = session.get(Member, keep_id), session.get(Member, gone_id)
        assert keep is not None and gone is not None
        merge_members(session, keep=keep, gone=gone, now=jobs.clock())
    with jobs.session() as session:
        assert [r.member_id for r in session.exec(select(QuestionRoute)).all()] == [keep_id]
        assert [n.member_id for n in session.exec(select(Notification)).all()] == [keep_id]
        [intro] = session.exec(select(Introduction)).all()
        assert {intro.member_a_id, intro.member_b_id} == {keep_id, other_id}
        answers = {intro.member_a_id: intro.answer_a, intro.member_b_id: intro.answer_b}
        assert answers == {keep_id: "yes", other_id: ""}
        assert session.get(Member, gone_id) is None
