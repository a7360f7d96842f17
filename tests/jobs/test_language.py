"""The language of a member's notices: their profile's languages, else the language they last wrote to the
bot in (from any of their accounts in the community), else the community's, for waitlist promotions,
cancellations, event alerts, reminders, introductions and answers to their questions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.commands import intro as intro_command
from bot.members import member_language, recent_language
from bot.messages import IncomingMessage, Match
from bot.models import Community, Member, MessageLog, PlatformIdentity, QuestionRoute
from bot.router import Router
from jobs.introductions import run_introductions
from jobs.reminders import run_reminders
from tests.core.fakes import FakeClassifier, FakeMatcher
from tests.jobs.conftest import START, Jobs
from tests.jobs.test_event_lifecycle import Chat, to


def log(jobs: Jobs, sender: str, language: str, *, platform: str = "slack", minutes: int = 0,
        community_id: int | None = None, text: str = "hi") -> None:
    """A logged message of ``sender`` at START + ``minutes``."""
    with jobs.session() as session:
        session.add(MessageLog(community_id=community_id or jobs.community_id, platform=platform,
                               sender=sender, conversation=f"D-{sender}", text=text, language=language,
                               created_at=START + timedelta(minutes=minutes)))


def language_of(jobs: Jobs, member_id: int, default: str = "en") -> tuple[str, str, str]:
    """``(bot.members.member_language without and with the session, bot.commands.intro's with it)``."""
    with jobs.session() as session:
        member = session.get(Member, member_id)
        assert member is not None
        return (member_language(member, default), member_language(member, default, session=session),
                intro_command.member_language(member, default, session=session))


# --- member_language ---------------------------------------------------------------------------------------

def test_profile_languages_come_first_then_the_latest_message_then_the_default(jobs: Jobs) -> None:
    li = jobs.member("li", platform="wechat", user="wxid_li")
    assert language_of(jobs, li) == ("en", "en", "en")                  # no message yet: the default
    assert language_of(jobs, li, default="zh") == ("zh", "zh", "zh")
    log(jobs, "wxid_li", "zh", platform="wechat", minutes=1)
    assert language_of(jobs, li) == ("en", "zh", "zh")                  # only with a session
    with jobs.session() as session:                                     # a second account, on Slack
        session.add(PlatformIdentity(community_id=jobs.community_id, member_id=li, platform="slack",
                                     platform_user_id="U_LI"))
    log(jobs, "U_LI", "en", minutes=2)
    assert language_of(jobs, li, default="zh") == ("zh", "en", "en")    # the latest, from either account
    log(jobs, "wxid_li", "zh", platform="wechat", minutes=3)
    assert language_of(jobs, li) == ("en", "zh", "zh")
    with jobs.session() as session:
        member = session.get(Member, li)
        assert member is not None
        member.languages = "English, 中文"
        session.add(member)
    assert language_of(jobs, li, default="zh") == ("en", "en", "en")    # the profile beats the messages


def test_only_the_members_own_set_messages_in_this_community_count(jobs: Jobs) -> None:
    ana = jobs.member("ana", user="U_ANA")
    with jobs.session() as session:
        other = Community(name="elsewhere")
        session.add(other)
        session.flush()
        other_id = other.id
    log(jobs, "U_ANA", "zh", minutes=5, community_id=other_id)  # the same user id in another community
    log(jobs, "U_ANA", "zh", platform="wechat", minutes=5)      # the same user id on another platform
    log(jobs, "U_BOB", "zh", minutes=5)                           # someone else
    log(jobs, "U_ANA", "", minutes=6)                             # no language (e.g. only an emoji)
    log(jobs, "U_ANA", "fr", minutes=7)                           # not a language the bot writes
    assert language_of(jobs, ana) == ("en", "en", "en")
    log(jobs, "U_ANA", "zh", minutes=1)
    assert language_of(jobs, ana) == ("en", "zh", "zh")
    with jobs.session() as session:
        member = session.get(Member, ana)
        assert member is not None and recent_language(session, member) == "zh"


# --- notices -----------------------------------------------------------------------------------------------

@pytest.fixture
def chat(jobs: Jobs) -> Chat:
    """Alice (the organiser, Slack), bob (Slack) and li (WeChat, no profile languages) in ``founders``
    (English); li writes to the bot in Chinese."""
    jobs.member("alice")
    jobs.member("bob")
    jobs.member("li", platform="wechat", user="wxid_li")
    return Chat(jobs)


def test_a_waitlist_promotion_reaches_a_chinese_writer_in_chinese(jobs: Jobs, chat: Chat) -> None:
    chat.say('/event create "Demo night" 2027-03-10 18:00 --capacity 1')
    chat.say("/rsvp 1", user="bob")
    assert "排第 1 位" in chat.say("/报名 1", user="wxid_li", platform="wechat")
    chat.say("/rsvp 1 no", user="bob")
    jobs.dispatch()
    [promoted] = jobs.wechat.log
    assert promoted.reply.language == "zh"
    assert promoted.reply.text.startswith(
        "🎉 有空位了：你已从候补转为正式报名 #1 Demo night（2027年3月10日（周三）18:00）。")
    assert [b.label for b in promoted.reply.buttons] == ["不去了"]


def test_a_cancellation_reaches_a_chinese_writer_in_chinese(jobs: Jobs, chat: Chat) -> None:
    chat.say('/event create "Demo night" 2027-03-10 18:00')
    chat.say("/报名 1", user="wxid_li", platform="wechat")
    chat.say("/rsvp 1", user="bob")
    chat.say("/event cancel 1")
    jobs.dispatch()
    assert to(jobs.wechat.log, "wxid_li") == [
        "❌ 很抱歉，#1 Demo night（2027年3月10日（周三）18:00）已被组织者取消。"]
    assert to(jobs.slack.log, "bob") == [
        "❌ #1 Demo night (Wed 10 Mar 2027, 18:00) was cancelled by the organiser. Sorry!"]


def test_an_event_alert_reaches_a_chinese_writer_in_chinese(jobs: Jobs, chat: Chat) -> None:
    chat.say("/资料 设置 活动提醒：是", user="wxid_li", platform="wechat")
    with jobs.session() as session:
        li_id = session.exec(select(PlatformIdentity.member_id)
                             .where(PlatformIdentity.platform_user_id == "wxid_li")).one()
    chat.matcher.matches = [Match(kind="member", id=li_id, title="li", score=0.9)]
    chat.say('/event create "Robotics night" 2027-03-10 18:00')
    jobs.dispatch()
    [alert] = jobs.wechat.log
    assert alert.reply.language == "zh"
    assert alert.reply.text.startswith("📅 有一个和你兴趣相符的新活动：\n#1 Robotics night\n")


def test_a_reminder_reaches_a_chinese_writer_in_chinese(jobs: Jobs, chat: Chat) -> None:
    chat.say('/event create "Demo night" 2027-03-03 18:00 --remind 2h')
    chat.say("/报名 1", user="wxid_li", platform="wechat")
    jobs.clock.advance(hours=6)
    run_reminders(jobs.ctx, jobs.clock())
    jobs.dispatch()
    assert to(jobs.wechat.log, "wxid_li") == [
        "⏰ 提醒：#1 Demo night 将在 2小时后开始。\n时间：2027年3月3日（周三）18:00（UTC）"]


def test_an_introduction_reaches_a_chinese_writer_in_chinese(jobs: Jobs) -> None:
    router = Router(engine=jobs.engine, settings=jobs.ctx.settings, classifier=lambda: FakeClassifier([]),
                    matcher=jobs.ctx.get_matcher, clock=jobs.clock)

    def say(user: str, text: str, platform: str) -> str:
        return router.handle(IncomingMessage(platform=platform, community="founders", conversation=user,
                                             sender=user, text=text, received_at=jobs.clock(),
                                             is_direct=True)).text

    jobs.member("Ana", platform="wechat", user="wx_ana", needs="找一位硬件设计师")
    bob = jobs.member("Bob", offers="hardware design")
    say("wx_ana", "你好", "wechat")
    matcher = jobs.ctx.get_matcher()
    assert isinstance(matcher, FakeMatcher)
    matcher.matches = [Match(kind="member", id=bob, title="Bob", score=0.8)]
    run_introductions(jobs.ctx, jobs.clock())
    jobs.dispatch()
    [ask] = jobs.wechat.log
    assert ask.reply.language == "zh" and "引荐 #1" in ask.reply.text
    assert "Introduction #1" in to(jobs.slack.log, "Bob")[0]
    say("Bob", "/intro yes 1", "slack")
    say("wx_ana", "/引荐 接受 1", "wechat")
    jobs.dispatch()
    made = jobs.wechat.log[-1].reply
    assert made.language == "zh" and made.text.startswith("🤝 引荐 #1：你们双方都同意了，认识一下 Bob！")
    jobs.clock.advance(days=8)
    run_introductions(jobs.ctx, jobs.clock())
    jobs.dispatch()
    assert jobs.wechat.log[-1].reply.language == "zh"  # the check-back a week on


def test_an_introduction_declined_is_told_in_the_writers_language(jobs: Jobs) -> None:
    router = Router(engine=jobs.engine, settings=jobs.ctx.settings, classifier=lambda: FakeClassifier([]),
                    matcher=jobs.ctx.get_matcher, clock=jobs.clock)

    def say(user: str, text: str, platform: str) -> str:
        return router.handle(IncomingMessage(platform=platform, community="founders", conversation=user,
                                             sender=user, text=text, received_at=jobs.clock(),
                                             is_direct=True)).text

    jobs.member("Ana", platform="wechat", user="wx_ana", needs="找一位硬件设计师")
    bob = jobs.member("Bob", offers="hardware design")
    matcher = jobs.ctx.get_matcher()
    assert isinstance(matcher, FakeMatcher)
    matcher.matches = [Match(kind="member", id=bob, title="Bob", score=0.8)]
    run_introductions(jobs.ctx, jobs.clock())
    say("wx_ana", "/引荐 接受 1", "wechat")
    say("Bob", "/intro no 1", "slack")
    jobs.dispatch()
    assert jobs.wechat.log[-1].reply.text == "引荐 #1 这次没有成功。我会继续为你寻找值得认识的人。"


def test_an_answer_reaches_the_asker_in_the_language_they_last_wrote_in(jobs: Jobs) -> None:
    asker = jobs.member("carol", platform="wechat", user="wx_carol")
    bob = jobs.member("bob")
    with jobs.session() as session:  # an imported question: no language recorded
        question = MessageLog(community_id=jobs.community_id, platform="wechat", sender="wx_carol",
                              conversation="G1", text="Anyone know a seed fund for hardware?",
                              created_at=START)
        session.add(question)
        session.flush()
        assert question.id is not None
        session.add(QuestionRoute(community_id=jobs.community_id, message_log_id=question.id, member_id=bob))
    log(jobs, "wx_carol", "zh", platform="wechat", minutes=1)
    router = Router(engine=jobs.engine, settings=jobs.ctx.settings, classifier=lambda: FakeClassifier([]),
                    matcher=jobs.ctx.get_matcher, clock=jobs.clock)
    router.handle(IncomingMessage(platform="slack", community="founders", conversation="D-bob", sender="bob",
                                  text="/answer 1 Try HAX", received_at=jobs.clock(), is_direct=True))
    jobs.dispatch()
    [sent] = jobs.wechat.log
    assert (sent.conversation, sent.reply.language) == ("wx_carol", "zh")
    assert sent.reply.text == "你的问题“Anyone know a seed fund for hardware?”有回答了：\nTry HAX\n——bob"
    assert asker != bob
