"""Feedback into the review queue: short negative reactions after an answer, and "not helpful" buttons."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot.feedback import is_negative_reaction
from bot.messages import IncomingMessage
from bot.models import MessageLog
from bot.settings import Settings
from tests.retrain.chatbot import NOW, ChatBot, with_community


@pytest.fixture
def bot(engine: Engine, settings: Settings) -> ChatBot:
    return ChatBot(with_community(engine), settings)


@pytest.mark.parametrize(("text", "negative"), [
    ("wrong", True), ("Wrong!!", True), ("That's wrong 🙄", True), ("that’s wrong.", True),
    ("no, that's not it", True), ("Not helpful", True), ("不对", True), ("不对！", True), ("错了。", True),
    ("不是这个", True), ("👎", True), (" 👎👎 ", True),
    ("wrong person to ask?", False), ("that's not wrong", False), ("不对称加密是什么", False), ("", False),
    ("🎉", False), ("helpful", False),
])
def test_negative_reactions_are_whole_short_messages(text: str, negative: bool) -> None:
    assert is_negative_reaction(text) is negative


def test_a_reaction_right_after_an_answer_flags_that_answer(bot: ChatBot) -> None:
    bot.send("anyone know about angel rounds?")
    bot.send("thanks, and any credits for analytics?", at=NOW + timedelta(minutes=1))
    reply = bot.send("That's wrong!", at=NOW + timedelta(minutes=9))
    assert reply.text == "Thanks — an admin will look at it."
    assert reply.intent == "feedback" and reply.confidence is None
    assert bot.flagged() == ["thanks, and any credits for analytics?"]  # the previous one only
    assert "That's wrong!" not in bot.classifier.calls  # not classified
    [question] = bot.rows(MessageLog, MessageLog.text == "thanks, and any credits for analytics?")
    assert (question.intent, question.confidence) == ("find_resource", pytest.approx(0.9))  # kept
    [reaction] = bot.rows(MessageLog, MessageLog.text == "That's wrong!")
    assert (reaction.intent, reaction.needs_review) == ("feedback", False)


def test_a_chinese_reaction_gets_a_chinese_thanks(bot: ChatBot) -> None:
    bot.send("有人懂天使轮融资吗 angel")
    reply = bot.send("不对！", at=NOW + timedelta(minutes=2))
    assert reply.text == "谢谢，管理员会看一下。"
    assert bot.flagged() == ["有人懂天使轮融资吗 angel"]


def test_a_reaction_without_an_addressed_mention_still_counts_in_a_group(bot: ChatBot) -> None:
    bot.send("anyone know about angel rounds?", conversation="G1", direct=False)  # not addressed: no answer
    assert bot.flagged() == []
    assert bot.send("wrong", conversation="G1", direct=False, at=NOW + timedelta(minutes=1)).replies == ()
    assert bot.flagged() == []


def test_a_reaction_in_a_group_after_the_bot_answered_flags_it(bot: ChatBot) -> None:
    bot.router.handle(_mention("anyone know about angel rounds?"))
    reply = bot.send("不对", conversation="G1", direct=False, at=NOW + timedelta(minutes=3))
    assert reply.text == "谢谢，管理员会看一下。"
    assert bot.flagged() == ["anyone know about angel rounds?"]


def test_not_after_ten_minutes(bot: ChatBot) -> None:
    bot.send("anyone know about angel rounds?")
    reply = bot.send("wrong", at=NOW + timedelta(minutes=10, seconds=1))
    assert bot.rows(MessageLog, MessageLog.text == "anyone know about angel rounds?")[0].needs_review is False
    assert "wrong" in bot.classifier.calls  # an ordinary message then
    assert reply.text != "Thanks — an admin will look at it."


def test_not_another_members_answer_nor_another_conversation(bot: ChatBot) -> None:
    bot.send("anyone know about angel rounds?")
    bot.send("wrong", sender="U_OTHER", at=NOW + timedelta(minutes=1))
    bot.send("wrong", conversation="D2", at=NOW + timedelta(minutes=1))
    assert bot.flagged() == []


def test_only_right_after_the_answer(bot: ChatBot) -> None:
    bot.send("anyone know about angel rounds?")
    bot.send("/event list", at=NOW + timedelta(minutes=1))  # a command came in between
    bot.send("wrong", at=NOW + timedelta(minutes=2))
    assert bot.flagged() == []


def test_a_not_helpful_button_flags_the_answer_it_is_about(bot: ChatBot) -> None:
    bot.send("anyone know about angel rounds?")
    bot.send("/event list", at=NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=30)  # buttons stay on screen: later, after other messages, still counts
    reply = bot.send("not helpful", intent="feedback", keyed=False, at=later)
    assert reply.text == "Thanks for the feedback — an admin will review it."
    assert bot.flagged() == ["anyone know about angel rounds?", "not helpful"]


def test_a_helpful_button_flags_nothing(bot: ChatBot) -> None:
    bot.send("anyone know about angel rounds?")
    reply = bot.send("helpful", intent="feedback", keyed=False, at=NOW + timedelta(minutes=1))
    assert reply.text == "Thanks — glad it helped!"
    assert bot.flagged() == []


def test_longer_feedback_is_queued_itself(bot: ChatBot) -> None:
    bot.send("anyone know about angel rounds?")
    reply = bot.send("what a useless answer, he is no investor", at=NOW + timedelta(minutes=2))
    assert reply.intent == "feedback"  # classified: it may as well praise, so the answer is not flagged
    assert bot.flagged() == ["what a useless answer, he is no investor"]


def test_review_lists_what_feedback_flagged(bot: ChatBot) -> None:
    bot.send("anyone know about angel rounds?")
    bot.send("wrong", at=NOW + timedelta(minutes=1))
    [row] = bot.rows(MessageLog, col(MessageLog.needs_review).is_(True))
    listing = bot.admin("/bot review", at=NOW + timedelta(minutes=2))
    assert f"#{row.id} · " in listing and "find_member 0.93 · “anyone know about angel rounds?”" in listing
    assert "1 flagged" in listing


def _mention(text: str) -> IncomingMessage:
    return IncomingMessage(platform="test", community="default", conversation="G1", sender="U_MEMBER",
                           text=text, received_at=NOW, mentions_bot=True, platform_key="mention-1")
