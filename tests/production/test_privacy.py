"""``/privacy show|export|forget``: what a member sees, the exported file, and forgetting them for good,
searched with the real IndexedMatcher (HashingEmbedder) before and after an index rebuild."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.commands import run_command
from bot.commands.context import CommandContext
from bot.community import CommunitySettings
from bot.db import session_scope
from bot.language import choose_language
from bot.members import member_for_sender
from bot.messages import IncomingMessage, Reply
from bot.models import (
    Community,
    Event,
    Introduction,
    Member,
    MessageLog,
    Notification,
    PlatformIdentity,
    QuestionRoute,
    Resource,
    Rsvp,
)
from bot.settings import Settings
from matching.embedder import HashingEmbedder
from matching.search import IndexedMatcher

NOW = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)


@dataclass
class Bot:
    """Runs commands as the router does (one committed transaction per message) on platform ``slack``."""

    engine: Engine
    community_id: int
    data_dir: Path

    def run(self, text: str, *, user: str = "alice", platform: str = "slack") -> list[Reply]:
        with session_scope(self.engine) as session:
            community = session.get(Community, self.community_id)
            assert community is not None
            settings = CommunitySettings.model_validate(community.settings)
            member = member_for_sender(session, community=community, platform=platform, user_id=user,
                                       display_name=user.title())
            message = IncomingMessage(platform=platform, community=community.name, conversation="D1",
                                      sender=user, text=text, received_at=NOW)
            ctx = CommandContext(session=session, community=community, settings=settings, member=member,
                                 message=message, language=choose_language(text, settings.language),
                                 is_admin=False, now=NOW)
            return run_command(ctx, text)

    def say(self, text: str, *, user: str = "alice", platform: str = "slack") -> str:
        return "\n".join(r.text for r in self.run(text, user=user, platform=platform))

    def member_id(self, user: str) -> int:
        with session_scope(self.engine) as session:
            community = session.get(Community, self.community_id)
            assert community is not None
            member = member_for_sender(session, community=community, platform="slack", user_id=user)
            assert member.id is not None
            return member.id

    def log(self, user: str, text: str, *, intent: str | None = "find_member", days_ago: int = 1) -> int:
        with session_scope(self.engine) as session:
            row = MessageLog(community_id=self.community_id, platform="slack", conversation="C1",
                             sender=user, text=text, intent=intent, language="en",
                             created_at=NOW - timedelta(days=days_ago))
            session.add(row)
            session.flush()
            assert row.id is not None
            return row.id

    def add(self, *rows: object) -> None:
        with session_scope(self.engine) as session:
            for row in rows:
                session.add(row)

    def matcher(self) -> IndexedMatcher:
        return IndexedMatcher(engine=self.engine, data_dir=self.data_dir, embedder=HashingEmbedder(dim=256),
                              clock=lambda: NOW)

    def count(self, model: type, *where: Any) -> int:
        with session_scope(self.engine) as session:
            return len(session.exec(select(model).where(*where)).all())


@pytest.fixture
def bot(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bot:
    """The community ``founders`` on the test's migrated database (SQLite or PostgreSQL)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with session_scope(engine) as session:
        community = Community(name="founders", settings={"timezone": "Asia/Shanghai"})
        session.add(community)
        session.flush()
        assert community.id is not None
        community_id = community.id
    return Bot(engine, community_id, tmp_path / "data")


def _meetup(bot: Bot, organiser: int | None = None) -> int:
    with session_scope(bot.engine) as session:
        event = Event(community_id=bot.community_id, title="Cloud Native Night",
                      starts_at=NOW + timedelta(days=10), organiser_member_id=organiser)
        session.add(event)
        session.flush()
        assert event.id is not None
        return event.id


def _alice_with_data(bot: Bot) -> int:
    """Alice offers kubernetes consulting, answered an event and asked the bot something."""
    bot.run("/profile set offers: kubernetes consulting; location: Shanghai")
    event_id = _meetup(bot)
    assert "Cloud Native Night" in bot.say(f"/rsvp {event_id}")
    bot.log("alice", "who can review my pitch deck?")
    return bot.member_id("alice")


# --- show and export -------------------------------------------------------------------------------------

def test_show_lists_profile_consents_rsvps_and_messages(bot: Bot) -> None:
    _alice_with_data(bot)
    [reply] = bot.run("/privacy show")
    assert reply.private
    text = reply.text
    for expected in ("Offers: kubernetes consulting", "Location: Shanghai", "Suggested to other members: yes",
                     "Personal digest: no", "May be quoted: no", "RSVPs: 1", "Cloud Native Night",
                     "who can review my pitch deck?", "slack:alice", "Linked accounts: 1"):
        assert expected in text, expected
    assert "so members who need what you offer can find you" in text  # why it is kept
    chinese = bot.say("/隐私 查看")
    for expected in ("能提供：kubernetes consulting", "报名：1", "被推荐给其他成员：是"):
        assert expected in chinese, expected
    assert "takes no arguments" in bot.say("/privacy show everything")


def test_export_writes_a_json_file_with_every_section(bot: Bot) -> None:
    alice = _alice_with_data(bot)
    [reply] = bot.run("/privacy export")
    assert reply.private and reply.attachment
    path = Path(reply.attachment)
    assert path.is_file() and path.parent.name == "privacy-exports"
    assert path.parent.parent == Path(tempfile.gettempdir())
    assert path.stat().st_mode & 0o077 == 0  # the owner's only
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["member_id"] == alice
    assert data["profile"]["offers"] == "kubernetes consulting"
    assert data["consents"]["consent_suggest"] is True and data["consents"]["consent_digest"] is False
    assert data["accounts"] == [{"platform": "slack", "user_id": "alice", "display_name": "Alice",
                                 "linked_at": data["accounts"][0]["linked_at"]}]
    assert [(r["event"], r["status"]) for r in data["rsvps"]] == [("Cloud Native Night", "yes")]
    assert [(m["text"], m["intent"]) for m in data["messages"]] == [("who can review my pitch deck?",
                                                                     "find_member")]
    for section in ("notifications", "introductions", "questions", "resources", "events_organised"):
        assert data[section] == [] and data["why"][section]["en"]
    assert "JSON" in reply.text and "1 rsvps" in reply.text
    # the console names the file; WeChat, which cannot send files, gets the summary too
    assert "written to" in bot.say("/privacy export", platform="console", user="local")
    wechat = bot.say("/隐私 导出", platform="wechat", user="wxid_alice")
    assert "此平台无法发送文件" in wechat and "报名：0" in wechat


# --- forget ----------------------------------------------------------------------------------------------

def test_forget_asks_for_confirmation_first(bot: Bot) -> None:
    alice = _alice_with_data(bot)
    first = bot.run("/privacy forget")
    assert first[0].private and "/privacy forget confirm" in first[0].text
    assert "/隐私 删除 确认" in bot.say("/隐私 删除")
    assert "send /privacy forget confirm" in bot.say("/privacy forget now")
    assert bot.count(Member, col(Member.id) == alice) == 1
    assert bot.count(Rsvp) == 1


def _kubernetes_hits(matcher: IndexedMatcher, community_id: int, alice: int) -> list[str]:
    found = matcher.search(community_id=community_id, query="kubernetes", kinds=["member"], top_k=10)
    return [m.title for m in found if m.id == alice or m.title == "Alice"]


def test_forget_removes_the_member_everywhere_and_search_never_returns_them(bot: Bot) -> None:
    alice = _alice_with_data(bot)
    bot.run("/profile set offers: design", user="bob")
    bob = bot.member_id("bob")
    cid = bot.community_id
    organised = _meetup(bot, organiser=alice)
    question = bot.log("carol", "anyone run kubernetes in production?")
    own_question = bot.log("alice", "where do I find a designer?", days_ago=2)
    bot.add(Resource(community_id=cid, title="K8s cheat sheet", added_by_member_id=alice),
            Introduction(community_id=cid, member_a_id=min(alice, bob), member_b_id=max(alice, bob),
                         reason="design <-> kubernetes"),
            Notification(key=f"digest:{alice}", community_id=cid, kind="digest", platform="slack",
                         conversation="alice", member_id=alice, text="Your week"),
            Notification(key=f"digest:{bob}", community_id=cid, kind="digest", platform="slack",
                         conversation="bob", member_id=bob, text="Bob's week"),
            QuestionRoute(community_id=cid, message_log_id=question, member_id=alice),
            QuestionRoute(community_id=cid, message_log_id=own_question, member_id=bob))
    matcher = bot.matcher()
    assert _kubernetes_hits(matcher, cid, alice) == ["Alice"]  # found before

    reply = bot.say("/privacy forget confirm")
    assert "1 linked accounts" in reply and "1 RSVPs" in reply and "2 logged messages" in reply
    assert "1 notifications" in reply and "1 introductions" in reply and "1 questions passed to you" in reply
    assert "1 events, 1 resources" in reply

    assert bot.count(Member, col(Member.id) == alice) == 0
    assert bot.count(PlatformIdentity, PlatformIdentity.platform_user_id == "alice") == 0
    assert bot.count(Rsvp) == 0
    assert bot.count(MessageLog, MessageLog.sender == "alice") == 0
    assert bot.count(MessageLog, MessageLog.sender == "carol") == 1  # other people's messages stay
    assert bot.count(Introduction) == 0 and bot.count(QuestionRoute) == 0
    assert bot.count(Notification) == 1  # bob's
    with session_scope(bot.engine) as session:
        event = session.get(Event, organised)
        assert event is not None and event.organiser_member_id is None  # kept, unlinked
        [resource] = session.exec(select(Resource)).all()
        assert resource.title == "K8s cheat sheet" and resource.added_by_member_id is None

    assert _kubernetes_hits(matcher, cid, alice) == []
    assert [m.id for m in matcher.search(community_id=cid, query="design", kinds=["member"])] == [bob]
    matcher.rebuild(community_id=cid)
    assert _kubernetes_hits(matcher, cid, alice) == []
    assert _kubernetes_hits(bot.matcher(), cid, alice) == []  # a fresh process on the same data dir

    # the same account writes again: a fresh, empty member who is not suggested
    assert "Alice" in bot.say("/profile show")
    with session_scope(bot.engine) as session:
        identity = session.exec(
            select(PlatformIdentity).where(PlatformIdentity.platform_user_id == "alice")).one()
        again = session.get(Member, identity.member_id)
        assert again is not None
        assert (again.consent_suggest, again.offers, again.location) == (False, "", "")
    assert bot.count(Rsvp) == 0
    assert _kubernetes_hits(bot.matcher(), cid, alice) == []
    found = bot.matcher().search(community_id=cid, query="kubernetes", kinds=["member"])
    assert [m.id for m in found] == [bob]


def test_forget_in_chinese(bot: Bot) -> None:
    alice = _alice_with_data(bot)
    reply = bot.say("/隐私 删除 确认")
    assert "已删除你的资料和授权" in reply and "报名 1 条" in reply
    assert bot.count(Member, col(Member.id) == alice) == 0


def test_through_the_router_the_forget_command_leaves_no_trace_of_its_sender(engine: Engine,
                                                                             settings: Settings) -> None:
    from datetime import UTC, datetime

    from sqlmodel import Session, select

    from bot.messages import IncomingMessage
    from bot.models import Member, MessageLog
    from bot.router import Router
    from tests.core.fakes import FakeClassifier, FakeMatcher

    router = Router(engine=engine, settings=settings, classifier=lambda: FakeClassifier([]),
                    matcher=lambda: FakeMatcher())

    def say(text: str, n: int) -> None:
        router.handle(IncomingMessage(platform="slack", community="c", conversation="D1", sender="U_ZED",
                                      text=text, received_at=datetime.now(UTC), is_direct=True,
                                      platform_key=f"slack:T:D1:{n}"))

    say("/profile set offers: kubernetes consulting", 1)
    say("who can help with taxes", 2)
    say("/privacy forget confirm", 3)
    with Session(engine) as s:
        assert s.exec(select(Member)).all() == []
        rows = s.exec(select(MessageLog)).all()
    assert [r.sender for r in rows] == [""]  # the forget command's own row: only its key, for de-duplication
    assert rows[0].text == "" and rows[0].platform_key == "slack:T:D1:3"
    engine.dispose()
