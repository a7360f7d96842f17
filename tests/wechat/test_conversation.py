"""Talking in rooms and direct chats: commands in text form, RSVP reply codes, Chinese dates, private
replies, long replies split in order, pacing and the daily cap."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import select

from adapters.outbox import Outbox
from adapters.wechat_markup import render_text, split_text
from bot.commands.event import rsvp_buttons
from bot.db import session_scope
from bot.messages import Reply
from bot.models import Community, Event, Member, PlatformIdentity, Rsvp
from tests.wechat.conftest import ADMIN, MEMBER, ROOM, WeChatBot, wait_for

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_text_commands_in_a_room_create_an_event_with_a_chinese_date_and_members_rsvp_by_reply_code(
    make_bot: Callable[..., WeChatBot],
) -> None:
    bot = make_bot()
    bot.fake.say('/活动 创建 "周五聚会" 下周五晚上7点 --where 深圳', room_id=ROOM, from_id=ADMIN)
    bot.settle()
    with session_scope(bot.core.engine) as session:
        event = session.exec(select(Event)).one()
        event_id, starts = event.id, event.starts_at.astimezone(SHANGHAI)
    today = datetime.now(SHANGHAI).date()
    next_friday = today + timedelta(days=(4 - today.weekday()) + 7)
    assert (starts.date(), starts.hour, starts.minute) == (next_friday, 19, 0)
    announcement = bot.fake.sent[0]
    assert announcement.conversation == ROOM
    assert f"回复「报名 {event_id}」或「不去 {event_id}」即可。" in announcement.text
    # a member answers with the reply code, no slash and no mention
    bot.fake.say(f"报名 {event_id}", room_id=ROOM, from_id=MEMBER)
    bot.fake.say("+1", room_id=ROOM, from_id=MEMBER)  # chat, not an RSVP
    bot.settle()
    with session_scope(bot.core.engine) as session:
        identity = session.exec(
            select(PlatformIdentity).where(PlatformIdentity.platform_user_id == MEMBER)
        ).one()
        answers = [(a.event_id, a.member_id, a.status) for a in session.exec(select(Rsvp)).all()]
        assert answers == [(event_id, identity.member_id, "yes")]
        assert session.get(Member, identity.member_id).display_name == "Ann"  # type: ignore[union-attr]
    assert len(bot.fake.sent) == 2
    assert bot.fake.sent[1].conversation == ROOM and "已报名" in bot.fake.sent[1].text


def test_private_replies_asked_in_a_room_go_to_the_askers_direct_chat(
    make_bot: Callable[..., WeChatBot],
) -> None:
    bot = make_bot()
    bot.fake.say("/资料 设置 能提供：天使投资；城市：上海", room_id=ROOM, from_id=MEMBER)
    bot.settle()
    sent = bot.fake.sent
    assert [s.conversation for s in sent] == [MEMBER]
    assert "资料已更新" in sent[0].text and "天使投资" in sent[0].text
    assert not sent[0].text.startswith("@")


def test_long_replies_are_split_at_lines_under_the_byte_limit_in_order(
    make_bot: Callable[..., WeChatBot],
) -> None:
    bot = make_bot(max_message_bytes=200)
    for i in range(12):
        command = f'/资源 添加 "第{i}号资源：创业融资指南合集" https://example.org/{i} --desc 一段中文说明'
        bot.fake.say(command, from_id=ADMIN)
    bot.settle()
    count = len(bot.fake.sent)
    bot.fake.say("/资源", from_id=MEMBER)
    bot.settle()
    parts = [s.text for s in bot.fake.sent[count:]]
    assert len(parts) >= 3
    assert all(len(p.encode("utf-8")) <= 200 for p in parts)
    assert all(s.conversation == MEMBER for s in bot.fake.sent[count:])
    lines = [line for p in parts for line in p.splitlines() if "号资源" in line]
    numbers = [int(line.split("第")[1].split("号")[0]) for line in lines]
    assert sorted(numbers, reverse=True) == numbers and len(numbers) == len(set(numbers))


def test_split_text_never_cuts_inside_a_character_and_keeps_every_line() -> None:
    text = "\n".join(["短行", "中" * 100, "English words " * 20, "", "end"])
    parts = split_text(text, max_bytes=64)
    assert all(len(p.encode("utf-8")) <= 64 for p in parts)
    assert "".join(parts).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")
    assert parts[0].startswith("短行") and parts[-1].endswith("end")
    assert split_text("  \n ", max_bytes=64) == []


def test_rsvp_buttons_render_as_reply_codes_in_the_replys_language() -> None:
    event = Event(id=7, community_id=1, title="t", starts_at=datetime(2027, 1, 1, tzinfo=SHANGHAI))
    zh = Reply(text="周五聚会", language="zh", buttons=rsvp_buttons(event, "zh"))
    en = Reply(text="Friday drinks", language="en", buttons=rsvp_buttons(event, "en"))
    assert render_text(zh) == "周五聚会\n回复「报名 7」或「不去 7」即可。"
    assert render_text(en) == "Friday drinks\nReply “rsvp 7” or “rsvp 7 no” to answer."
    assert render_text(Reply(text="plain")) == "plain"


def test_the_daily_cap_drops_replies_past_it_and_tells_the_admins_once(
    make_bot: Callable[..., WeChatBot],
) -> None:
    bot = make_bot(daily_cap=2, admin_ids=lambda: [ADMIN])
    for i in range(4):
        bot.fake.say(f"hello {i}", from_id=MEMBER)
    bot.settle()
    to_member = [s for s in bot.fake.sent if s.conversation == MEMBER]
    to_admin = [s for s in bot.fake.sent if s.conversation == ADMIN]
    assert len(to_member) == 2
    assert len(to_admin) == 1 and "发送上限" in to_admin[0].text
    assert bot.adapter.health().sent_last_day == 2
    assert len(bot.classifier.calls) == 4  # every message was read and handled; only sending stopped


def test_the_outbox_spaces_sends_of_one_account_across_conversations() -> None:
    times: list[float] = []
    box = Outbox(lambda target, payload: times.append(time.monotonic()), interval=0.0, spacing=0.15)
    try:
        for target in ("room-a", "room-b", "room-c"):
            box.submit(target, "x")
        assert box.drain(5)
    finally:
        box.close()
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 3 and all(gap >= 0.14 for gap in gaps)


def test_the_outbox_counts_sends_in_a_rolling_day() -> None:
    clock = [1000.0]
    box = Outbox(lambda target, payload: None, interval=0.0, daily_cap=2, clock=lambda: clock[0])
    try:
        results = [box.submit("r", i) for i in range(3)]
        wait_for(lambda: all(r.done() for r in results))
        assert [r.exception() is None for r in results] == [True, True, False]
        clock[0] += 24 * 3600 + 1
        again = box.submit("r", 3)
        assert again.result(timeout=5) is None
    finally:
        box.close()


def test_an_admin_sets_a_room_to_listen_from_inside_it_and_back(make_bot: Callable[..., WeChatBot]) -> None:
    bot = make_bot()
    with session_scope(bot.core.engine) as session:
        session.add(Community(name="default", settings={"admins": [f"wechat:{ADMIN}"]}))
    bot.fake.say("/机器人 配置 监听群 +本群", room_id=ROOM, from_id=MEMBER)  # not an admin: refused
    bot.fake.say("/机器人 配置 监听群 +本群", room_id=ROOM, from_id=ADMIN)
    bot.settle()
    assert "只有社区管理员" in bot.fake.sent[0].text
    assert f"listen_channels = {ROOM}" in bot.fake.sent[1].text
    bot.fake.say("有什么活动", room_id=ROOM, from_id=MEMBER)
    bot.fake.say("/bot config listen_channels -here", room_id=ROOM, from_id=ADMIN)
    bot.fake.say("还有什么活动", room_id=ROOM, from_id=MEMBER)
    bot.settle()
    assert bot.classifier.calls == ["有什么活动"]
    assert "listen_channels = -" in bot.fake.sent[-1].text


def test_send_posts_a_notification_as_text_with_reply_codes(make_bot: Callable[..., WeChatBot]) -> None:
    bot = make_bot()
    event = Event(id=4, community_id=1, title="t", starts_at=datetime(2027, 1, 1, tzinfo=SHANGHAI))
    reply = Reply(text="明天：周五聚会", language="zh", buttons=rsvp_buttons(event, "zh"))
    bot.adapter.send(community="default", conversation=ROOM, reply=reply)
    assert [(s.conversation, s.text) for s in bot.fake.sent] == [
        (ROOM, "明天：周五聚会\n回复「报名 4」或「不去 4」即可。")
    ]


def test_a_room_join_reaches_the_core_as_member_joined(make_bot: Callable[..., WeChatBot]) -> None:
    from wechaty_grpc.wechaty import puppet as pb

    seen: list[str] = []
    bot = make_bot()
    handle = bot.adapter._handle  # noqa: SLF001 - observe what the core receives

    def record(message: Any) -> Any:
        if message.intent == "member_joined":
            seen.append(f"{message.sender}@{message.conversation}:{message.sender_name}")
        return handle(message)

    bot.adapter._handle = record  # noqa: SLF001
    bot.fake.emit(pb.EventType.EVENT_TYPE_ROOM_JOIN, {"roomId": ROOM, "inviteeIdList": [MEMBER, "wxid_bot"],
                                                       "inviterId": ADMIN, "timestamp": int(time.time())})
    bot.fake.emit(pb.EventType.EVENT_TYPE_ROOM_JOIN, {"roomId": ROOM, "inviteeIdList": [ADMIN],
                                                       "timestamp": int(time.time()) - 3600})  # a replay
    bot.settle()
    assert seen == [f"{MEMBER}@{ROOM}:Ann"]


def test_announcement_groups_are_stored_with_their_platform_and_a_repeat_changes_nothing(
    make_bot: Callable[..., WeChatBot],
) -> None:
    bot = make_bot()
    with session_scope(bot.core.engine) as session:
        session.add(Community(name="default", settings={"admins": [f"wechat:{ADMIN}"]}))
    bot.fake.say("/机器人 配置 公告群 +本群", room_id=ROOM, from_id=ADMIN)
    bot.fake.say("/机器人 配置 公告群 +本群", room_id=ROOM, from_id=ADMIN)
    bot.fake.say("/bot config announce_channels +me", room_id=ROOM, from_id=ADMIN)  # `me` is for admins only
    bot.settle()
    texts = [s.text for s in bot.fake.sent]
    assert f"announce_channels = wechat:{ROOM}" in texts[0] and "设置已更新" in texts[0]
    assert "没有变化" in texts[1]
    assert "cannot tell which platform 'me' is on" in texts[2]
