"""Onboarding through the router: the welcome once per member in their language, the three questions that
fill the profile (and feed matching at once), skip, commands meanwhile, and a lapsed conversation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.messages import HandledMessage, IncomingMessage, Match
from bot.models import Member, PlatformIdentity
from bot.router import Router
from jobs.introductions import run_introductions
from tests.core.fakes import FakeClassifier, FakeMatcher
from tests.jobs.conftest import START, Jobs


class Chat:
    """Join events and direct messages of members of ``founders``, through a router on the jobs database."""

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs
        self.classifier = FakeClassifier([("hello", "greeting", 0.95), ("你好", "greeting", 0.95)])
        self.router = Router(engine=jobs.engine, settings=jobs.ctx.settings,
                             classifier=lambda: self.classifier, matcher=jobs.ctx.get_matcher,
                             clock=jobs.clock)

    def join(self, user: str, *, conversation: str = "C-general", platform: str = "slack") -> HandledMessage:
        return self.router.handle(IncomingMessage(
            platform=platform, community="founders", conversation=conversation, sender=user, text="",
            received_at=self.jobs.clock(), sender_name=user.title(), intent="member_joined"))

    def dm(self, user: str, text: str, *, direct: bool = True, platform: str = "slack") -> HandledMessage:
        return self.router.handle(IncomingMessage(
            platform=platform, community="founders", conversation=f"D-{user}" if direct else "C-general",
            sender=user, text=text, received_at=self.jobs.clock(), is_direct=direct, mentions_bot=not direct))

    def member(self, user: str) -> Member:
        with self.jobs.session() as session:
            identity = session.exec(
                select(PlatformIdentity).where(PlatformIdentity.platform_user_id == user)).one()
            member = session.get(Member, identity.member_id)
            assert member is not None
            return member


@pytest.fixture
def chat(jobs: Jobs) -> Chat:
    return Chat(jobs)


def test_a_new_member_is_welcomed_once_privately_in_the_community_language(chat: Chat, jobs: Jobs) -> None:
    first = chat.join("ana")
    [reply] = first.replies
    assert reply.private and reply.language == "en" and first.intent == "member_joined"
    assert reply.text.startswith("👋 Welcome to founders, Ana!")
    assert 'Say "skip" to stop.' in reply.text and reply.text.endswith("(1/3) What do you work on?")
    ana = chat.member("ana")
    assert (ana.welcomed_at, ana.onboarding) == (START, "bio")

    jobs.clock.advance(hours=1)
    assert chat.join("ana", conversation="C-hardware").replies == ()  # another channel: never twice
    assert chat.join("ana").replies == ()
    assert chat.member("ana").welcomed_at == START
    assert chat.classifier.calls == []


def test_the_welcome_is_in_the_members_language(chat: Chat, jobs: Jobs) -> None:
    jobs.member("Li", user="li", languages="中文, English")
    [reply] = chat.join("li").replies
    assert reply.language == "zh" and reply.text.startswith("👋 欢迎加入 founders，Li！")
    assert reply.text.endswith("(1/3) 你在做什么（工作或项目）？")
    jobs.configure(language="zh")
    [reply] = chat.join("wang", platform="wechat", conversation="123@chatroom").replies
    assert reply.language == "zh" and "回复「跳过」即可结束" in reply.text


def test_three_answers_fill_the_profile_and_feed_matching_at_once(chat: Chat, jobs: Jobs) -> None:
    bob_id = jobs.member("Bob", offers="seed investing in robotics")
    chat.join("ana")
    jobs.clock.advance(minutes=5)
    second = chat.dm("ana", "I build delivery robots")
    assert second.intent == "onboarding" and second.replies[0].private
    assert second.text == "Thanks! (2/3) What can you offer other members (skills, advice, contacts)?"
    ana = chat.member("ana")
    assert (ana.bio, ana.onboarding, ana.consent_suggest, ana.updated_at) == (
        "I build delivery robots", "offers", True, jobs.clock())
    assert "(3/3) What do you need right now" in chat.dm("ana", "motor control, ROS").text
    done = chat.dm("ana", "a seed investor")
    ana = chat.member("ana")
    assert (ana.bio, ana.offers, ana.needs, ana.onboarding) == (
        "I build delivery robots", "motor control, ROS", "a seed investor", "done")
    assert "Needs: a seed investor" in done.text and "Offers: motor control, ROS" in done.text
    assert chat.classifier.calls == []  # answers never reach the classifier

    matcher = jobs.ctx.get_matcher()
    assert isinstance(matcher, FakeMatcher)
    matcher.matches = [Match(kind="member", id=bob_id, title="Bob", score=0.8)]
    assert run_introductions(jobs.ctx, jobs.clock()).startswith("proposed 1")
    assert matcher.queries[-1] == ("a seed investor", ("member",))

    assert chat.dm("ana", "hello").intent == "greeting"  # done: messages are handled as usual again


def test_chinese_answers_and_a_passed_question(chat: Chat, jobs: Jobs) -> None:
    chat.join("li")
    assert "(2/3) 你能为其他成员提供什么" in chat.dm("li", "做跨境电商").text
    assert "(3/3)" in chat.dm("li", "无").text  # passes this one question
    chat.dm("li", "找物流伙伴")
    li = chat.member("li")
    assert (li.bio, li.offers, li.needs, li.onboarding) == ("做跨境电商", "", "找物流伙伴", "done")


def test_skip_ends_the_conversation(chat: Chat, jobs: Jobs) -> None:
    chat.join("ana")
    reply = chat.dm("ana", "Skip!").text
    assert reply.startswith("OK, no more questions.") and "/profile set" in reply
    ana = chat.member("ana")
    assert (ana.onboarding, ana.bio, ana.consent_suggest) == ("skipped", "", False)
    assert chat.dm("ana", "hello").intent == "greeting"
    assert chat.classifier.calls == ["hello"]
    chat.join("li")
    assert chat.dm("li", "跳过").text.startswith("好的，不再提问。")


def test_commands_work_during_onboarding_and_it_goes_on_after(chat: Chat) -> None:
    chat.join("ana")
    shown = chat.dm("ana", "/profile show")
    assert shown.intent == "command" and "Profile of Ana" in shown.text
    assert chat.member("ana").onboarding == "bio"
    chat.dm("ana", "/profile set offers: design reviews")
    assert "(3/3)" in chat.dm("ana", "I design robots").text  # offers was filled by the command: not asked
    chat.dm("ana", "a CTO")
    ana = chat.member("ana")
    assert (ana.bio, ana.offers, ana.needs) == ("I design robots", "design reviews", "a CTO")
    assert ana.onboarding == "done"


def test_only_direct_messages_are_answers(chat: Chat) -> None:
    chat.join("ana")
    assert chat.dm("ana", "hello everyone", direct=False).intent == "greeting"
    assert chat.member("ana").bio == ""


def test_questions_already_answered_are_left_out(chat: Chat, jobs: Jobs) -> None:
    jobs.member("Full", user="full", bio="robots", offers="design", needs="a CTO")
    [reply] = chat.join("full").replies
    assert "Your profile already says what you do" in reply.text
    assert chat.member("full").onboarding == "done"
    jobs.member("Half", user="half", bio="robots")
    assert chat.join("half").text.endswith("(2/3) What can you offer other members (skills, advice, "
                                           "contacts)?")


def test_a_conversation_left_for_days_lapses(chat: Chat, jobs: Jobs) -> None:
    chat.join("ana")
    jobs.clock.advance(days=3, minutes=1)
    assert chat.dm("ana", "hello").intent == "greeting"
    ana = chat.member("ana")
    assert (ana.onboarding, ana.bio) == ("skipped", "")
    jobs.clock.advance(days=1)
    assert chat.dm("ana", "hello again").intent == "greeting"


def test_an_empty_direct_message_repeats_the_question(chat: Chat, jobs: Jobs) -> None:
    chat.join("ana")
    jobs.clock.advance(minutes=1)
    assert chat.dm("ana", "  ").text == "(1/3) What do you work on?"
    assert chat.member("ana").onboarding == "bio"


def test_a_join_after_talking_to_the_bot_still_welcomes_once(chat: Chat, jobs: Jobs) -> None:
    chat.dm("ana", "hello")
    jobs.clock.advance(days=1)
    assert len(chat.join("ana").replies) == 1
    assert chat.member("ana").welcomed_at == START + timedelta(days=1)
    assert chat.join("ana").replies == ()


@pytest.mark.parametrize("question", [
    "有人懂天使轮融资吗？", "有人懂天使轮融资吗", "请问下周有活动吗", "有没有做硬件的朋友", "怎么修改资料",
    "谁在做跨境电商", "哪里能找到设计师", "什么时候有活动", "能不能介绍一位律师",
    "Anyone know a good patent lawyer", "any investors here?", "Who works on robotics",
    "What events are on this week", "where is the demo night", "When is the next meetup",
    "How do I change my profile", "is there a hardware channel", "Does anyone know React?",
    "I build robots, do you know anyone in Shenzhen?",
])
def test_a_question_during_onboarding_is_handled_as_a_question(chat: Chat, jobs: Jobs, question: str) -> None:
    chat.join("li")
    joined = chat.member("li").updated_at
    jobs.clock.advance(minutes=2)
    handled = chat.dm("li", question)
    assert handled.intent == "out_of_scope" and chat.classifier.calls == [question]  # the router handled it
    li = chat.member("li")
    assert (li.bio, li.consent_suggest, li.onboarding, li.updated_at) == ("", False, "bio", joined)
    # the question still waits: a later answer is stored
    jobs.clock.advance(minutes=2)
    assert chat.dm("li", "做跨境电商").text == "谢谢！ (2/3) 你能为其他成员提供什么（技能、建议、人脉）？"
    li = chat.member("li")
    assert (li.bio, li.consent_suggest, li.onboarding) == ("做跨境电商", True, "offers")


@pytest.mark.parametrize("answer", [
    "I build delivery robots", "Hardware founder (robots, why not?) in Shenzhen", "做跨境电商，主要是东南亚",
    "Whoever needs robots: we build them", "Anything hardware", "Howard's robot studio", "哪吒科技创始人",
])
def test_statements_are_still_answers(chat: Chat, answer: str) -> None:
    chat.join("ana")
    assert chat.dm("ana", answer).intent == "onboarding"
    ana = chat.member("ana")
    assert (ana.bio, ana.onboarding) == (answer, "offers")


def test_the_welcome_is_in_the_language_the_member_wrote_in_before_joining(chat: Chat, jobs: Jobs) -> None:
    chat.dm("wx_li", "你好", platform="wechat")  # an English community; li talked to the bot in Chinese first
    jobs.clock.advance(hours=1)
    [reply] = chat.join("wx_li", platform="wechat", conversation="123@chatroom").replies
    assert reply.language == "zh" and reply.text.startswith("👋 欢迎加入 founders，wx_li！")
    assert reply.text.endswith("(1/3) 你在做什么（工作或项目）？")
    # a member the bot never heard from gets the community's language
    [reply] = chat.join("ana").replies
    assert reply.language == "en" and reply.text.startswith("👋 Welcome to founders, Ana!")
