"""The command layer end to end on SQLite and PostgreSQL: case S5, its cousins, and every command family."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.commands import button_command, is_command, run_command
from bot.commands.context import CommandContext
from bot.community import CommunitySettings
from bot.language import choose_language
from bot.members import member_for_sender
from bot.messages import IncomingMessage, Match, Reply
from bot.models import Community, Event, EventStatus, Member, Resource, Rsvp
from bot.ports import Matcher
from tests.core.fakes import FakeMatcher

NOW = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)  # Friday; 17:00 in Shanghai
SHANGHAI = ZoneInfo("Asia/Shanghai")
CURLY = "“”‘’«»「」『』„‹›"


class Chat:
    """Runs commands as members of one community, the way the router builds the context."""

    def __init__(self, session: Session, community: Community) -> None:
        self.session = session
        self.community = community

    def member(self, user: str) -> Member:
        return member_for_sender(self.session, community=self.community, platform="test", user_id=user,
                                 display_name=user.title())

    def run(self, text: str, *, user: str = "alice", admin: bool = False, matcher: Matcher | None = None,
            now: datetime = NOW) -> list[Reply]:
        settings = CommunitySettings.model_validate(self.community.settings)
        message = IncomingMessage(platform="test", community=self.community.name, conversation="C1",
                                  sender=user, text=text, received_at=now)
        ctx = CommandContext(session=self.session, community=self.community, settings=settings,
                             member=self.member(user), message=message,
                             language=choose_language(text, settings.language), is_admin=admin, now=now,
                             matcher=matcher)
        return run_command(ctx, text)

    def say(self, text: str, *, user: str = "alice", admin: bool = False, now: datetime = NOW) -> str:
        return "\n".join(r.text for r in self.run(text, user=user, admin=admin, now=now))

    def events(self) -> list[Event]:
        self.session.expire_all()
        return list(self.session.exec(select(Event).order_by(col(Event.id))).all())

    def rsvps(self) -> list[Rsvp]:
        self.session.expire_all()
        return list(self.session.exec(select(Rsvp)).all())


@pytest.fixture
def chat(engine: Engine) -> Iterator[Chat]:
    """A session on the test's migrated database (SQLite or PostgreSQL) with the community ``default``."""
    with Session(engine, expire_on_commit=False) as session:
        community = Community(name="default", settings={"timezone": "Asia/Shanghai"})
        session.add(community)
        session.flush()
        yield Chat(session, community)


def shanghai(*args: int) -> datetime:
    year, month, day, hour, minute = args
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def no_curly_quotes_stored(chat: Chat) -> None:
    chat.session.expire_all()
    for model in (Event, Resource, Member):
        for row in chat.session.exec(select(model)).all():
            for value in row.model_dump().values():
                if isinstance(value, str):
                    assert not any(q in value for q in CURLY), (model.__name__, value)


# --- S5 ----------------------------------------------------------------------------------------------------

def test_s5_curly_quotes(chat: Chat) -> None:
    replies = chat.run("/event create “Spring Meetup” 2027-05-10 18:00 --where ‘Room 3’")
    [event] = chat.events()
    assert (event.title, event.place) == ("Spring Meetup", "Room 3")
    assert event.starts_at == shanghai(2027, 5, 10, 18, 0)
    assert event.timezone == "Asia/Shanghai"
    assert "Event created" in replies[0].text and "Spring Meetup" in replies[0].text
    value = str(event.id)
    assert [(b.action, b.value) for b in replies[0].buttons] == [("rsvp", value), ("rsvp_no", value)]
    no_curly_quotes_stored(chat)


def test_s5_apostrophe(chat: Chat) -> None:
    chat.run("/event create \"Bob's Q&A night\" 2027-05-10")
    chat.run("/event create Bob's Q&A night 2027-05-11")  # unquoted: the title ends where the date begins
    titles = [(e.title, e.starts_at) for e in chat.events()]
    assert titles == [("Bob's Q&A night", shanghai(2027, 5, 10, 18, 0)),
                      ("Bob's Q&A night", shanghai(2027, 5, 11, 18, 0))]


def test_s5_em_dash_flag(chat: Chat) -> None:
    chat.run('/event create "Picnic" 2027-05-10 18:00')
    reply = chat.say("/event edit 1 —where Picnic-Lawn")
    assert chat.events()[0].place == "Picnic-Lawn"
    assert "Event updated" in reply


def test_s5_unclosed_quote_gets_usage_not_traceback(chat: Chat) -> None:
    reply = chat.say('/event create "Unclosed 2027-06-01')
    assert "not closed" in reply
    assert '/event create "TITLE" DATE [TIME]' in reply
    assert chat.events() == []


@pytest.mark.parametrize("command", [
    "/event create «Spring Meetup» 2027-05-10 18:00 –where «Room 3»",
    "/event create 「Spring Meetup」 2027-05-10 18:00 ——where 「Room 3」",
    "/event create 『Spring Meetup』2027-05-10 18:00 --where=“Room 3”",
    "/event create Spring Meetup 2027-05-10 18:00 --where Room 3",
    "／Event   Create “Spring Meetup” 2027-05-10 18:00 —WHERE Room 3",
])
def test_s5_cousins(chat: Chat, command: str) -> None:
    chat.run(command)
    [event] = chat.events()
    assert (event.title, event.place) == ("Spring Meetup", "Room 3")
    assert event.starts_at == shanghai(2027, 5, 10, 18, 0)
    no_curly_quotes_stored(chat)


@pytest.mark.parametrize(("command", "message"), [
    ('/event create "Party" 2027-05-10 --colour red', "Unknown option --colour"),
    ("/event create", "needs a title"),
    ('/event create "" 2027-05-10', "needs a title"),
    ('/event create "Party"', "needs a date"),
    ('/event create "Party" 2027-05-10 --capacity lots', "Capacity must be a whole number"),
    ('/event create "Party" 2027-05-10 --capacity', "--capacity needs a value"),
    ('/event create "Party" 2026-12-01 18:00', "That date is in the past"),
    ('/event create "Party" someday', "I can't read the date 'someday'"),
    ('/event create "Party" 2027-05-10 20:00 --end 2027-05-10 19:00', "The end must be after the start"),
])
def test_create_errors_reply_with_usage(chat: Chat, command: str, message: str) -> None:
    reply = chat.say(command)
    assert message in reply
    assert "Usage: /event create" in reply
    assert chat.events() == []


def test_chinese_alias_and_reply(chat: Chat) -> None:
    reply = chat.say('/活动 创建 "周五聚会" 下周五晚上7点 --where 深圳')
    [event] = chat.events()
    assert (event.title, event.place, event.starts_at) == ("周五聚会", "深圳", shanghai(2027, 1, 8, 19, 0))
    assert reply.startswith("活动已创建")
    assert "2027年1月8日（周五）19:00" in reply
    chat.say("/活动创建 「读书会」下周六下午3点 --地点 图书馆")  # Chinese words run together
    assert [(e.title, e.place) for e in chat.events()][1] == ("读书会", "图书馆")


def test_chinese_usage_error(chat: Chat) -> None:
    reply = chat.say("/活动 创建 “周五聚会 下周五")
    assert "引号没有闭合" in reply and "用法：/活动 创建" in reply


def test_end_time_falls_on_the_event_day(chat: Chat) -> None:
    chat.run('/event create "Demo" 2027-05-10 18:00 --end 21:00 --capacity 30 --desc Bring a laptop')
    [event] = chat.events()
    assert event.ends_at == shanghai(2027, 5, 10, 21, 0)
    assert (event.capacity, event.description) == (30, "Bring a laptop")


# --- edit / cancel / show / list ---------------------------------------------------------------------------

def test_edit_keeps_duration_and_checks_permission(chat: Chat) -> None:
    chat.run('/event create "Demo" 2027-05-10 18:00 --end 20:00')
    assert "Only the organiser or an admin" in chat.say("/event edit 1 --title Hacked", user="mallory")
    chat.run("/event edit 1 --when 2027-05-12 19:00 --title  Demo Night ")
    [event] = chat.events()
    assert (event.title, event.starts_at, event.ends_at) == (
        "Demo Night", shanghai(2027, 5, 12, 19, 0), shanghai(2027, 5, 12, 21, 0))
    chat.run("/event edit 1 --capacity 5", user="admin", admin=True)
    assert chat.events()[0].capacity == 5
    assert "Nothing to change" in chat.say("/event edit 1")
    assert "There is no event #9" in chat.say("/event edit 9 --title X")
    assert "That date is in the past" in chat.say("/event edit 1 --when 2026-01-01")


def test_cancel(chat: Chat) -> None:
    chat.run('/event create "Demo" 2027-05-10')
    assert "Only the organiser" in chat.say("/event cancel 1", user="bob")
    assert "Cancelled event #1 Demo" in chat.say("/event cancel 1")
    assert chat.events()[0].status == EventStatus.CANCELLED
    assert "already cancelled" in chat.say("/event cancel 1")
    assert "was cancelled" in chat.say("/rsvp 1", user="bob")
    assert "No upcoming events" in chat.say("/event list")
    assert chat.run("/event show 1")[0].buttons == ()


def test_list_upcoming_and_past(chat: Chat) -> None:
    chat.run('/event create "Later" 2027-06-01 18:00 --where Hall')
    chat.run('/event create "Sooner" 2027-05-01 18:00')
    community_id = chat.community.id or 0
    chat.session.add(Event(community_id=community_id, title="Old", starts_at=NOW - timedelta(days=3)))
    chat.session.add(Event(community_id=community_id, title="Ongoing", starts_at=NOW - timedelta(hours=1),
                           ends_at=NOW + timedelta(hours=1)))
    chat.run("/rsvp 1", user="bob")
    chat.run("/rsvp 1 maybe", user="carol")
    listing = chat.say("/event list")
    lines = listing.splitlines()
    assert lines[0] == "Upcoming events:"
    assert [line.split(" — ")[0] for line in lines[1:]] == ["#4 Ongoing", "#2 Sooner", "#1 Later"]
    assert "#1 Later — Tue 1 Jun 2027, 18:00 · Hall · 1 going, 1 maybe" in listing
    assert chat.say("/event") == listing
    assert chat.say("/events") == listing
    past = chat.say("/event list --past")
    assert "#3 Old" in past and "Later" not in past
    zh = chat.say("/活动")
    assert zh.startswith("近期活动") and "2027年6月1日（周二）18:00 · Hall · 1 人报名，1 人待定" in zh


def test_show_lists_attendees(chat: Chat) -> None:
    chat.run('/event create "Demo" 2027-05-10 --where Room 3 --capacity 10')
    chat.run("/rsvp 1", user="bob")
    chat.run("/rsvp 1 maybe", user="carol")
    chat.run("/rsvp 1 no", user="dave")
    [reply] = chat.run("/event show 1")
    assert "When: Mon 10 May 2027, 18:00 (Asia/Shanghai)" in reply.text
    assert "Organiser: Alice" in reply.text
    assert "RSVPs: 1 going, 1 maybe, 1 not going" in reply.text
    assert "Going: Bob" in reply.text and "Maybe: Carol" in reply.text
    assert [b.action for b in reply.buttons] == ["rsvp", "rsvp_no"]
    assert "没有编号为 #7 的活动" in chat.say("/活动 详情 7")
    assert "The event ID must be a whole number" in chat.say("/event show abc")


def test_implied_command_usage_shows_the_group(chat: Chat) -> None:
    reply = chat.say("/event frobnicate")
    assert "/event create" in reply and "/event cancel ID" in reply


# --- RSVP --------------------------------------------------------------------------------------------------

def test_rsvp_aliases_update_one_row(chat: Chat) -> None:
    chat.run('/event create "Demo" 2027-05-10')
    assert "已报名 #1 Demo" in chat.say("/报名 1", user="bob")
    chat.run("/rsvp 1 yes", user="bob")
    assert [(r.status, r.member_id) for r in chat.rsvps()] == [("yes", chat.member("bob").id)]
    assert "已取消 #1 Demo 的报名" in chat.say("/取消报名 1", user="bob")
    assert [r.status for r in chat.rsvps()] == ["no"]
    chat.run("/rsvp #1 maybe", user="bob")
    assert [r.status for r in chat.rsvps()] == ["maybe"]
    assert "Answer yes, no or maybe" in chat.say("/rsvp 1 perhaps", user="bob")
    assert "Usage: /rsvp ID" in chat.say("/rsvp", user="bob")


def test_rsvp_respects_capacity_and_past(chat: Chat) -> None:
    chat.run('/event create "Tiny" 2027-05-10 --capacity 1')
    chat.run("/rsvp 1", user="bob")
    waiting = "Tiny is full (1/1), so you're on the waitlist: number 1 in line."  # was refused before
    assert waiting in chat.say("/rsvp 1", user="carol")
    assert "You're going" in chat.say("/rsvp 1", user="bob")  # already going: not refused
    chat.run("/rsvp 1 maybe", user="carol")
    assert sorted(r.status for r in chat.rsvps()) == ["maybe", "yes"]
    later = datetime(2027, 6, 1, tzinfo=UTC)
    assert "already taken place" in chat.say("/rsvp 1", user="dave", now=later)


def test_button_command() -> None:
    assert button_command("rsvp", "3") == "/rsvp 3 yes"
    assert button_command("rsvp_no", " 3 ") == "/rsvp 3 no"
    assert button_command("helpful", "3") is None
    assert button_command("rsvp", "x") is None


# --- profile -----------------------------------------------------------------------------------------------

def test_profile_set_english(chat: Chat) -> None:
    assert chat.member("alice").consent_suggest is False
    [reply] = chat.run("/profile set offers: angel investing; needs: a designer; bio: see https://x.dev")
    member = chat.member("alice")
    assert (member.offers, member.needs, member.bio) == ("angel investing", "a designer", "see https://x.dev")
    assert member.consent_suggest is True and member.updated_at == NOW
    assert reply.private and "Profile updated (offers, needs, bio)" in reply.text


def test_profile_set_chinese_full_width(chat: Chat) -> None:
    reply = chat.say("/资料 设置 能提供：天使投资；需要：设计师；城市：深圳；时区：Asia/Shanghai", user="li")
    member = chat.member("li")
    assert (member.offers, member.needs, member.location, member.timezone) == (
        "天使投资", "设计师", "深圳", "Asia/Shanghai")
    assert member.consent_suggest is True
    assert reply.startswith("资料已更新（能提供、需要、地点、时区）")
    assert "能提供：天使投资" in chat.say("/资料", user="li")


def test_profile_set_location_only_keeps_consent_off(chat: Chat) -> None:
    chat.run("/profile set location: Berlin", user="bob")
    assert chat.member("bob").consent_suggest is False


@pytest.mark.parametrize(("command", "message"), [
    ("/profile set favourite: pizza", "Unknown profile key 'favourite'. Keys: bio, skills"),
    ("/profile set angel investing", "Write it as KEY: VALUE, e.g. offers: angel investing. Keys: bio"),
    ("/profile set", "Say what to set"),
    ("/profile set timezone: Mars/Base", "Unknown time zone 'Mars/Base'"),
])
def test_profile_set_errors(chat: Chat, command: str, message: str) -> None:
    reply = chat.say(command)
    assert message in reply and "Usage: /profile set KEY: VALUE" in reply


def test_profile_show(chat: Chat) -> None:
    chat.run("/profile set skills: hardware, supply chain")
    reply = chat.run("/profile show")[0]
    assert reply.private
    assert "Skills: hardware, supply chain" in reply.text and "Needs: (not set)" in reply.text
    assert chat.say("/profile") == reply.text


# --- resources ---------------------------------------------------------------------------------------------

def test_resource_add_and_list(chat: Chat) -> None:
    reply = chat.say("/resource add “Mixpanel for Startups” https://mixpanel.com/startups "
                     "--tags analytics, credits --desc Free credits for a year")
    assert reply == "Resource added: #1 Mixpanel for Startups — https://mixpanel.com/startups"
    chat.run("/资源 添加 YC 创业学校 www.startupschool.org --标签 课程，创业", user="li")
    rows = list(chat.session.exec(select(Resource).order_by(col(Resource.id))).all())
    assert [(r.title, r.tags, r.language, r.added_by_member_id) for r in rows] == [
        ("Mixpanel for Startups", "analytics,credits", "en", chat.member("alice").id),
        ("YC 创业学校", "课程,创业", "zh", chat.member("li").id),
    ]
    assert rows[1].url == "https://www.startupschool.org"
    assert "already shared as #1" in chat.say("/resource add Again https://mixpanel.com/startups")
    latest = chat.say("/resource list")
    assert latest.splitlines()[1:] == ["#2 YC 创业学校 — https://www.startupschool.org",
                                       "#1 Mixpanel for Startups — https://mixpanel.com/startups"]
    found = chat.say("/resource list CREDITS")
    assert "#1 Mixpanel" in found and "YC" not in found
    assert "没有找到与「融资」相关的资源" in chat.say("/资源 融资")
    no_curly_quotes_stored(chat)


def test_resource_list_uses_the_matcher(chat: Chat) -> None:
    matcher = FakeMatcher([Match(kind="resource", id=3, title="Mixpanel", score=0.7, url="https://m.com"),
                           Match(kind="resource", id=4, title="Weak", score=0.1, url="https://w.com")])
    [reply] = chat.run("/resource list analytics credits", matcher=matcher)
    assert matcher.queries == [("analytics credits", ("resource",))]
    assert [m.id for m in reply.matches] == [3]
    assert "#3 Mixpanel — https://m.com" in reply.text and "Weak" not in reply.text


@pytest.mark.parametrize(("command", "message"), [
    ('/resource add "Guide"', "needs a link"),
    ("/resource add https://x.com", "needs a title"),
    ('/resource add "Guide" https://x.com extra words', "Unexpected 'extra words' after the link"),
])
def test_resource_add_errors(chat: Chat, command: str, message: str) -> None:
    reply = chat.say(command)
    assert message in reply and "Usage: /resource add" in reply


# --- /bot config -------------------------------------------------------------------------------------------

def test_bot_config_is_for_admins(chat: Chat) -> None:
    assert "Only community admins" in chat.say("/bot config timezone UTC")
    assert "Only community admins" in chat.say("/bot config")
    assert chat.community.settings == {"timezone": "Asia/Shanghai"}


def test_bot_config_sets_and_shows(chat: Chat) -> None:
    chat.community.settings = {}
    reply = chat.say("/bot config timezone Asia/Shanghai", admin=True)
    assert "Setting changed: timezone = Asia/Shanghai" in reply
    assert chat.community.settings["timezone"] == "Asia/Shanghai"
    chat.run("/bot config digest_cron 0 9 * * 1", admin=True)
    chat.run("/机器人 配置 管理员 U1, U2", admin=True)
    assert chat.community.settings["digest_cron"] == "0 9 * * 1"
    assert chat.community.settings["admins"] == ["U1", "U2"]
    shown = chat.run("/bot config", admin=True)[0]
    assert shown.private and "timezone = Asia/Shanghai" in shown.text and "admins = U1, U2" in shown.text
    assert chat.say("/bot config timezone", admin=True) == "timezone = Asia/Shanghai"
    chat.run("/event create Party 2027-05-10 18:00")  # read in the new time zone
    assert chat.events()[0].starts_at == shanghai(2027, 5, 10, 18, 0)


@pytest.mark.parametrize(("command", "message"), [
    ("/bot config timezone Mars/Base", "Bad value for timezone"),
    ("/bot config colour blue", "Unknown setting 'colour'"),
    ("/bot config match_threshold 7", "Bad value for match_threshold"),
    ("/bot config digest_cron every monday", "Bad value for digest_cron: a cron expression has 5 fields"),
    ("/bot config digest_cron 99 99 * * *", "Bad value for digest_cron: minute 99 is out of range 0-59"),
    ("/bot config timezone asia/shanghai", "unknown time zone 'asia/shanghai'; did you mean Asia/Shanghai?"),
    ("/机器人 配置 时区 Mars/Base", "设置失败"),
])
def test_bot_config_rejects_bad_values(chat: Chat, command: str, message: str) -> None:
    reply = chat.say(command, admin=True)
    assert message in reply
    assert chat.community.settings == {"timezone": "Asia/Shanghai"}


# --- help, unknown and later commands ----------------------------------------------------------------------

def test_help_in_both_languages(chat: Chat) -> None:
    english = chat.say("/help")
    for usage in ('/event create "TITLE" DATE', "/rsvp ID [yes|no|maybe]", "/profile set KEY: VALUE",
                  "/resource add", "/bot config", "/help [COMMAND]"):
        assert usage in english
    chinese = chat.say("/帮助")
    for usage in ('/活动 创建 "标题" 日期', "/报名 编号", "/取消报名 编号", "/资料 设置", "/资源 添加",
                  "/机器人 配置", "/帮助 [命令]"):
        assert usage in chinese


def test_help_for_one_command_or_group(chat: Chat) -> None:
    event_help = chat.say("/help event")
    assert '/event create "TITLE"' in event_help and "/event list [--past]" in event_help
    assert "/rsvp" not in event_help
    assert chat.say("/help /event create").startswith('/event create "TITLE"')
    assert "/rsvp cancel ID" in chat.say("/help rsvp")
    assert "/活动 取消 编号" in chat.say("/帮助 活动")
    assert "There is no command 'dance'" in chat.say("/help dance")


def test_group_without_default_shows_usage(chat: Chat) -> None:
    reply = chat.say("/bot")
    assert "Usage:" in reply and "/bot config" in reply


def test_unknown_command(chat: Chat) -> None:
    assert chat.say("/foo bar") == "Unknown command /foo. Send /help to see the commands."
    assert "未知命令 /哈哈" in chat.say("/哈哈")


@pytest.mark.parametrize(("text", "expected"), [
    ("/event create x", True), ("／活动", True), ("/foo", True), ("  /help", True), ("/报名1", True),
    ("/usr/bin/python crashed", False), ("/:)", False), ("/ hello", False), ("/2024", False),
    ("hello /event", False), ("", False), ("/", False),
])
def test_is_command(text: str, expected: bool) -> None:
    assert is_command(text) is expected


# --- numbers beyond the database range, capacities ------------------------------------------------------

HUGE = "99999999999999999999"


@pytest.mark.parametrize(("command", "message"), [
    (f"/rsvp {HUGE}999", f"There is no event #{HUGE}999. See /event list."),
    (f"/rsvp #{HUGE} maybe", f"There is no event #{HUGE}. See /event list."),
    (f"/报名 {HUGE}", f"没有编号为 #{HUGE} 的活动。"),
    (f"/取消报名 {HUGE}", f"没有编号为 #{HUGE} 的活动。"),
    (f"/rsvp cancel {HUGE}", f"There is no event #{HUGE}."),
    (f"/event show {HUGE}", f"There is no event #{HUGE}."),
    (f"/event cancel {HUGE}", f"There is no event #{HUGE}."),
    (f"/event edit {HUGE} --title x", f"There is no event #{HUGE}."),
    ("/event show 2147483647", "There is no event #2147483647."),  # the largest id (PostgreSQL's INTEGER)
    ("/event show 2147483648", "There is no event #2147483648."),  # one more
    ("/rsvp 2147483648", "There is no event #2147483648. See /event list."),
    ("/event show 9223372036854775807", "There is no event #9223372036854775807."),  # SQLite's largest
    ("/event show 9223372036854775808", "There is no event #9223372036854775808."),  # one more
    ("/event show " + "9" * 5000, "There is no event #" + "9" * 30 + "…. See /event list."),
])
def test_ids_beyond_the_database_range_are_not_found(chat: Chat, command: str, message: str) -> None:
    chat.run('/event create "Real" 2027-05-10 18:00')
    reply = chat.say(command)
    assert message in reply
    assert "Usage" not in reply  # a missing event, not a malformed command
    assert chat.rsvps() == []


@pytest.mark.parametrize("command", [
    f"/event edit 1 --capacity {HUGE}",
    "/event edit 1 --capacity 100001",
    f'/event create "Huge" 2027-05-10 18:00 --capacity {HUGE}',
    "/event create \"Huge\" 2027-05-10 18:00 --capacity " + "9" * 5000,
])
def test_capacity_beyond_its_range_is_a_usage_error(chat: Chat, command: str) -> None:
    chat.run('/event create "Real" 2027-05-10 18:00 --capacity 10')
    reply = chat.say(command)
    assert "Capacity must be between 1 and 100000" in reply
    assert "Usage: /event" in reply
    assert [(e.title, e.capacity) for e in chat.events()] == [("Real", 10)]
    assert "人数上限必须在 1 到 100000 之间" in chat.say(f"/活动 修改 1 --人数 {HUGE}")


def test_capacity_at_its_limit_is_stored(chat: Chat) -> None:
    chat.run('/event create "Big" 2027-05-10 18:00 --capacity 100000')
    assert chat.events()[0].capacity == 100_000


# --- time zone and all-day of events made by commands ----------------------------------------------------

def test_command_dates_are_never_all_day_and_keep_the_zone_they_were_read_in(chat: Chat) -> None:
    chat.run('/event create "X" 2027-05-10')  # a date without a time: 18:00, not an all-day event
    [event] = chat.events()
    assert (event.starts_at, event.all_day, event.timezone) == (shanghai(2027, 5, 10, 18, 0), False,
                                                               "Asia/Shanghai")
    event.all_day, event.timezone = True, "Europe/Paris"  # as if imported from a feed
    chat.session.add(event)
    chat.session.flush()
    chat.community.settings = {"timezone": "Asia/Tokyo"}
    chat.run("/event edit 1 --when 2027-05-11")
    [event] = chat.events()
    assert (event.starts_at, event.all_day, event.timezone) == (
        datetime(2027, 5, 11, 18, 0, tzinfo=ZoneInfo("Asia/Tokyo")), False, "Asia/Tokyo")


# --- plurals and long lists ----------------------------------------------------------------------------

@pytest.mark.parametrize(("going", "english", "chinese"), [
    (0, "Nobody had said they were going.", "之前没有人报名。"),
    (1, "1 person had said they were going.", "之前有 1 人报名。"),
    (2, "2 people had said they were going.", "之前有 2 人报名。"),
])
def test_cancel_counts_who_was_going_in_both_languages(
    chat: Chat, going: int, english: str, chinese: str
) -> None:
    chat.run('/event create "One" 2027-05-10 18:00')
    chat.run('/event create "Two" 2027-05-11 18:00')
    for user in ("bob", "carol")[:going]:
        chat.run("/rsvp 1", user=user)
        chat.run("/rsvp 2", user=user)
    assert chat.say("/event cancel 1") == f"Cancelled event #1 One. {english}"
    assert chat.say("/活动 取消 2") == f"已取消活动 #2 Two。{chinese}"


def add_events(chat: Chat, count: int, *, start: datetime, step: timedelta) -> None:
    community_id = chat.community.id or 0
    for i in range(count):
        chat.session.add(Event(community_id=community_id, title=f"E{i}", starts_at=start + i * step))
    chat.session.flush()


def test_past_list_says_how_many_more_there_are(chat: Chat) -> None:
    add_events(chat, 210, start=NOW - timedelta(days=1), step=-timedelta(days=1))
    add_events(chat, 2, start=NOW + timedelta(days=1), step=timedelta(days=1))  # upcoming: not counted
    community_id = chat.community.id or 0
    chat.session.add(Event(community_id=community_id, title="Cancelled", starts_at=NOW - timedelta(hours=5),
                           status=EventStatus.CANCELLED))  # never listed: not counted either
    lines = chat.say("/event list --past").splitlines()
    assert lines[0] == "Past events:"
    assert len(lines) == 1 + 10 + 1
    assert lines[1].startswith("#1 E0 — ")  # the most recent first
    assert lines[-1] == "… and 200 more."
    zh = chat.say("/活动 --past").splitlines()
    assert zh[-1] == "……另有 200 个活动未列出。"


def test_upcoming_list_says_how_many_more_there_are_and_not_when_all_fit(chat: Chat) -> None:
    add_events(chat, 20, start=NOW + timedelta(days=1), step=timedelta(days=1))
    listing = chat.say("/event list").splitlines()
    assert len(listing) == 21 and "more" not in listing[-1]  # exactly the limit: nothing hidden
    add_events(chat, 3, start=NOW + timedelta(days=40), step=timedelta(days=1))
    assert chat.say("/event list").splitlines()[-1] == "… and 3 more."
    add_events(chat, 1, start=NOW - timedelta(days=2), step=timedelta(days=1))
    assert "more" not in chat.say("/event list --past")


# --- profile messages --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("command", "message"), [
    ("/profile set offers", "Write it as KEY: VALUE, e.g. offers: angel investing"),
    ("/profile set offers angel investing", "Write it as KEY: VALUE, e.g. offers: angel investing"),
    ("/profile set Skills python", "Write it as KEY: VALUE, e.g. Skills: python"),
    ("/profile set bio: hi; needs a designer", "Write it as KEY: VALUE, e.g. needs: a designer"),
    ("/资料 设置 能提供天使投资", "请写成「键：值」，例如 能提供：天使投资"),
    ("/资料 设置 需要", "请写成「键：值」，例如 需要：设计师"),
    ("/profile set timezone: asia/shanghai",
     "Unknown time zone 'asia/shanghai'; did you mean Asia/Shanghai?"),
    ("/profile set tz: Shanghai", "did you mean Asia/Shanghai?"),
    ("/资料 设置 时区：europe/paris", "未知时区「europe/paris」，你是想写 Europe/Paris 吗？"),
])
def test_profile_set_says_how_to_write_it(chat: Chat, command: str, message: str) -> None:
    reply = chat.say(command)
    assert message in reply
    assert "Unknown profile key" not in reply
    assert chat.member("alice").offers == "" and chat.member("alice").timezone == ""


@pytest.mark.parametrize(("command", "message"), [
    ('/event create "X" 9999-12-31 23:59', "The date '9999-12-31 23:59' is too far away"),
    ('/event create "X" 2027-05-10 18:00 --end 9999-12-31 23:00',
     "The date '9999-12-31 23:00' is too far away"),
    ('/活动 创建 "X" 9999-12-31 23:59', "日期「9999-12-31 23:59」太远了"),
    ("/event edit 1 --when 9999-12-31 20:00", "The date '9999-12-31 20:00' is too far away"),
    ("/event edit 1 --when 9999-12-31 18:00", "With its duration the event would end after the year 9999"),
])
def test_dates_beyond_what_utc_can_store_are_usage_errors(chat: Chat, command: str, message: str) -> None:
    chat.community.settings = {"timezone": "America/New_York"}  # 9999-12-31 19:00 here is year 10000 in UTC
    chat.run('/event create "Real" 2027-05-10 18:00 --end 2027-05-10 23:30')
    reply = chat.say(command)
    assert message in reply
    assert "Usage" in reply or "用法" in reply
    assert [e.title for e in chat.events()] == ["Real"]
    assert chat.events()[0].starts_at == datetime(2027, 5, 10, 22, 0, tzinfo=UTC)
