"""``/profile link``: one person's Slack and WeChat accounts joined into one member, through the router."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.db import alembic_config, create_db_engine, session_scope, upgrade_database
from bot.linking import CODE_ALPHABET, normalise_code
from bot.members import MergedProfile, merge_members
from bot.messages import HandledMessage, IncomingMessage
from bot.models import Community, Event, LinkCode, Member, PlatformIdentity, Resource, Rsvp
from bot.router import Router
from bot.settings import Settings
from tests.core.fakes import FakeClassifier, FakeMatcher

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
CODE = re.compile(r"\b([A-Z2-9]{4}-[A-Z2-9]{4})\b")


class Clock:
    """The router's clock; tests move it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class People:
    """Sends messages as Ann on Slack (``U1``) and on WeChat (``wxid_a``), or as anyone else."""

    def __init__(self, router: Router, clock: Clock, engine: Engine) -> None:
        self.router, self.clock, self.engine = router, clock, engine

    def send(self, platform: str, sender: str, text: str, *, community: str = "default",
             name: str = "") -> HandledMessage:
        return self.router.handle(IncomingMessage(
            platform=platform, community=community, conversation=f"D-{sender}", sender=sender, text=text,
            received_at=self.clock.now, sender_name=name, is_direct=True))

    def slack(self, text: str, *, sender: str = "U1", community: str = "default") -> HandledMessage:
        return self.send("slack", sender, text, community=community, name="Ann Lee")

    def wechat(self, text: str, *, sender: str = "wxid_a", community: str = "default") -> HandledMessage:
        return self.send("wechat", sender, text, community=community, name="安")

    def issue(self, platform: str = "slack", sender: str = "U1", command: str = "/profile link") -> str:
        result = self.send(platform, sender, command)
        found = CODE.search(result.text)
        assert found, result.text
        return found.group(1)

    def members(self) -> list[Member]:
        with Session(self.engine) as s:
            return list(s.exec(select(Member).order_by(col(Member.id))).all())

    def identities(self) -> dict[tuple[str, str], int]:
        with Session(self.engine) as s:
            return {(i.platform, i.platform_user_id): i.member_id for i in s.exec(select(PlatformIdentity))}

    def rsvps(self) -> dict[int, tuple[int, str, datetime]]:
        """event id -> (member id, status, updated_at)."""
        with Session(self.engine) as s:
            rows = s.exec(select(Rsvp).order_by(col(Rsvp.event_id))).all()
            assert len({r.event_id for r in rows}) == len(rows)
            return {r.event_id: (r.member_id, r.status, r.updated_at) for r in rows}

    def set_consent(self, platform: str, sender: str, **flags: bool) -> None:
        with session_scope(self.engine) as s:
            identity = s.exec(select(PlatformIdentity).where(
                PlatformIdentity.platform == platform, PlatformIdentity.platform_user_id == sender)).one()
            member = s.get(Member, identity.member_id)
            assert member is not None
            for flag, value in flags.items():
                setattr(member, flag, value)
            s.add(member)


def _people(engine: Engine, settings: Settings) -> People:
    clock = Clock(NOW)
    router = Router(engine=engine, settings=settings, classifier=lambda: FakeClassifier([]),
                    matcher=lambda: FakeMatcher(), clock=clock)
    return People(router, clock, engine)


@pytest.fixture
def people(engine: Engine, settings: Settings) -> People:
    """People on the test's migrated database (SQLite or PostgreSQL)."""
    return _people(engine, settings)


def fullwidth(text: str) -> str:
    return "".join("－" if ch == "-" else chr(ord(ch) + 0xFEE0) if ch.isalnum() else ch for ch in text)


# --- issuing -----------------------------------------------------------------------------------------------

def test_issue_replies_privately_with_the_code_and_stores_only_its_hash(people: People) -> None:
    result = people.slack("/profile link")
    [reply] = result.replies
    code = CODE.search(reply.text)
    assert code is not None
    code_text = code.group(1)
    assert reply.private and reply.language == "en"
    assert reply.text == (
        f"Your link code: {code_text} (one use, valid for 15 minutes).\n"
        f"From your other account (on the other platform), send:\n/profile link {code_text}\n"
        f"(or /资料 绑定 {code_text}). That account's RSVPs and events then move to this one, and the two "
        "profiles are joined: empty fields are filled from either, and where both differ (opt-ins too), the "
        "account updated more recently wins.")
    plain = code_text.replace("-", "")
    assert len(plain) == 8 and set(plain) <= set(CODE_ALPHABET)
    assert not set(plain) & set("0O1IL")
    [member] = people.members()
    with Session(people.engine) as s:
        [row] = s.exec(select(LinkCode)).all()
        assert (row.member_id, row.platform, row.community_id) == (member.id, "slack", member.community_id)
        assert row.code_hash == hashlib.sha256(plain.encode()).hexdigest()
        assert (row.created_at, row.expires_at, row.used_at) == (NOW, NOW + timedelta(minutes=15), None)
        stored = " ".join(str(v) for v in row.model_dump().values())
        assert plain not in stored and code_text not in stored


def test_issue_in_chinese(people: People) -> None:
    [reply] = people.wechat("/资料 绑定").replies
    code = CODE.search(reply.text)
    assert code is not None and reply.private and reply.language == "zh"
    assert reply.text.startswith(f"你的绑定验证码：{code.group(1)}（只能用一次，15 分钟内有效）。")
    assert reply.text.endswith(
        f"\n/资料 绑定 {code.group(1)}\n（或 /profile link {code.group(1)}）。"
        "那个账号的报名和活动随后会转到本账号，两边的资料也会合并："
        "空着的项用另一边的补上，两边不同的项（包括各项开关）以最近更新的账号为准。")


def test_issuing_again_replaces_the_earlier_code(people: People) -> None:
    first = people.issue()
    second = people.issue()
    assert first != second
    with Session(people.engine) as s:
        assert len(s.exec(select(LinkCode)).all()) == 1
    assert "unknown, expired or already used" in people.wechat(f"/profile link {first}").text
    assert people.wechat(f"/profile link {second}").text.startswith("Linked:")


def test_issuing_clears_the_communitys_expired_codes(people: People) -> None:
    people.issue("slack", "U1")
    people.clock.now = NOW + timedelta(hours=1)
    people.issue("slack", "U2")
    with Session(people.engine) as s:
        [row] = s.exec(select(LinkCode)).all()
        assert row.created_at == NOW + timedelta(hours=1)


# --- redeeming ---------------------------------------------------------------------------------------------

def test_link_joins_profile_rsvps_events_resources_and_identities(people: People) -> None:
    # Ann on WeChat (the account she links TO): a location only, so not suggested to others.
    people.wechat("/资料 设置 城市：上海")
    # Ann on Slack: a full profile, suggested to others, quotes allowed; she organises an event, shares a
    # resource and answers events.
    people.slack("/profile set offers: angel investing; bio: hardware founder; location: Berlin; "
                 "timezone: Europe/Berlin")
    people.set_consent("slack", "U1", consent_quote=True, consent_digest=True)
    people.slack('/event create "Demo Day" 2027-05-10 18:00')
    people.slack('/event create "Picnic" 2027-05-11 12:00')
    people.slack('/event create "Hack Night" 2027-05-12 19:00')
    people.slack('/resource add "Fundraising guide" https://example.org/guide')
    people.wechat("/报名 1 不去")                                    # t0: WeChat says no to #1
    people.clock.now = t1 = NOW + timedelta(hours=1)
    people.slack("/rsvp 1 yes")                                       # t1: later, wins
    people.slack("/rsvp 2 maybe")                                     # t1: earlier, loses
    people.slack("/rsvp 3 yes")                                       # only Slack answered #3
    people.clock.now = t2 = NOW + timedelta(hours=2)
    people.wechat("/报名 2 不去")                                     # t2: later, wins
    wechat_member, slack_member = sorted(people.members(), key=lambda m: m.source)[::-1]
    assert (wechat_member.source, slack_member.source) == ("wechat:wxid_a", "slack:U1")

    people.clock.now = t3 = NOW + timedelta(hours=3)
    code = people.issue("wechat", "wxid_a")
    [reply] = people.slack(f"/profile link {code}").replies

    assert reply.private
    assert reply.text == (
        "Linked: your accounts are now one member, 安 (slack, wechat).\n"
        "RSVPs moved from this account: 3.\n"
        "From this account: bio, offers, timezone\n"
        "From your other account: location, suggest, digest, quote\n"
        "Suggested to members who need what you offer: no (tell members what you offer with "
        "/profile set offers: ... to turn it on)\n"
        "Send /profile show to see the joined profile.")
    [member] = people.members()
    assert member.id == wechat_member.id
    assert (member.display_name, member.location, member.offers, member.bio, member.timezone) == (
        "安", "上海", "angel investing", "hardware founder", "Europe/Berlin")
    # both profiles were last set at NOW: on that tie the kept (WeChat) member's location and choices stand
    assert (member.consent_suggest, member.consent_digest, member.consent_quote) == (False, False, False)
    assert member.updated_at == t3
    assert people.identities() == {("slack", "U1"): member.id, ("wechat", "wxid_a"): member.id}
    assert people.rsvps() == {1: (member.id, "yes", t1), 2: (member.id, "no", t2), 3: (member.id, "yes", t1)}
    with Session(people.engine) as s:
        assert [e.organiser_member_id for e in s.exec(select(Event))] == [member.id] * 3
        assert [r.added_by_member_id for r in s.exec(select(Resource))] == [member.id]
        [used] = s.exec(select(LinkCode)).all()
        assert used.used_at == t3

    # either account now sees the one joined profile
    from_slack, from_wechat = people.slack("/profile show"), people.wechat("/profile show")
    assert from_slack.text == from_wechat.text
    assert "Profile of 安" in from_slack.text and "Offers: angel investing" in from_slack.text
    assert "Location: 上海" in from_slack.text
    assert "Organiser: 安" in people.slack("/event show 1").text
    assert len(people.members()) == 1  # no new member from either account afterwards


def test_on_a_tie_the_kept_members_values_and_choices_stand(people: People) -> None:
    people.slack("/profile set offers: design reviews")  # Slack (kept): suggested to others
    people.wechat("/profile set location: Shenzhen")     # WeChat: not suggested; same time as Slack's
    people.set_consent("slack", "U1", consent_digest=True)
    code = people.issue("slack", "U1")
    result = people.wechat(f"/资料 绑定 {code}")
    assert result.language == "zh"
    assert result.text == (
        "绑定成功：你的账号现在是同一位成员 Ann Lee（slack、wechat）。\n"
        "从本账号转移的报名：0 条。\n"
        "来自本账号：地点\n"
        "来自另一个账号：能提供、推荐、周报\n"
        "会被推荐给有需要的成员：是\n"
        "发送 /资料 查看合并后的资料。")
    [member] = people.members()
    assert (member.offers, member.location) == ("design reviews", "Shenzhen")
    assert (member.consent_suggest, member.consent_digest, member.consent_quote) == (True, True, False)


def test_the_more_recent_accounts_values_and_choices_win(people: People) -> None:
    # Slack (the account linked TO) first: offers, a digest and a city.
    people.slack("/profile set offers: design reviews; digest: yes; location: Berlin")
    # An hour later on WeChat: needs, another city, no digest after all, alerts and questions on.
    people.clock.now = NOW + timedelta(hours=1)
    people.wechat("/资料 设置 需要：设计师；城市：深圳；周报：否；活动提醒：是；答疑：是")
    people.clock.now = NOW + timedelta(hours=2)
    code = people.issue("slack", "U1")
    result = people.wechat(f"/资料 绑定 {code}")
    assert result.text == (
        "绑定成功：你的账号现在是同一位成员 Ann Lee（slack、wechat）。\n"
        "从本账号转移的报名：0 条。\n"
        "来自本账号：需要、地点、周报、活动提醒、答疑\n"
        "来自另一个账号：能提供\n"
        "会被推荐给有需要的成员：是\n"
        "发送 /资料 查看合并后的资料。")
    [member] = people.members()
    assert (member.display_name, member.offers, member.needs, member.location) == (
        "Ann Lee", "design reviews", "设计师", "深圳")
    # the later explicit "no digest" is not turned back on by Slack's earlier yes
    assert (member.consent_digest, member.consent_event_alerts, member.consent_questions,
            member.consent_suggest) == (False, True, True, True)
    assert member.updated_at == NOW + timedelta(hours=2)


def test_the_kept_accounts_values_and_choices_win_when_they_are_more_recent(people: People) -> None:
    people.wechat("/资料 设置 城市：上海；周报：是；引荐：暂停 14")  # WeChat first
    people.clock.now = NOW + timedelta(hours=1)
    people.slack("/profile set location: Berlin; alerts: yes")    # Slack (kept) later
    code = people.issue("slack", "U1")
    [reply] = people.wechat(f"/profile link {code}").replies
    assert reply.text == (
        "Linked: your accounts are now one member, Ann Lee (slack, wechat).\n"
        "RSVPs moved from this account: 0.\n"
        "From your other account: location, digest, alerts, intros\n"
        "Suggested to members who need what you offer: no (tell members what you offer with "
        "/profile set offers: ... to turn it on)\n"
        "Send /profile show to see the joined profile.")
    [member] = people.members()
    assert (member.location, member.consent_digest, member.consent_event_alerts) == ("Berlin", False, True)
    assert (member.intro_opt_out, member.intro_snooze_until) == (False, None)


def test_merge_members_says_what_came_from_where(people: People) -> None:
    people.slack("/profile show")
    people.wechat("/profile show")
    with session_scope(people.engine) as s:
        keep, gone = s.exec(select(Member).order_by(col(Member.id))).all()
        keep.bio, keep.url, keep.consent_quote = "robots", "https://keep.example", True
        gone.bio, gone.skills, gone.url = "drones", "python", "https://keep.example"
        gone.intro_opt_out, gone.consent_digest = True, True
        keep.updated_at, gone.updated_at = NOW, NOW + timedelta(minutes=1)
        merged = merge_members(s, keep=keep, gone=gone, now=NOW + timedelta(hours=1))
        assert merged == MergedProfile(
            from_gone=("bio", "skills", "consent_digest", "consent_quote", "intro_opt_out"), from_keep=())
        assert (keep.bio, keep.skills, keep.url) == ("drones", "python", "https://keep.example")
        assert (keep.consent_digest, keep.consent_quote, keep.intro_opt_out) == (True, False, True)


def test_an_import_key_moves_to_the_kept_member(people: People) -> None:
    people.slack("/profile show")
    with session_scope(people.engine) as s:  # as a Slack export import keys the member it updates
        slack_member = s.exec(select(Member)).one()
        slack_member.external_key = "slack:U1"
        s.add(slack_member)
    code = people.issue("wechat", "wxid_a")
    assert people.slack(f"/profile link {code}").text.startswith("Linked:")
    [member] = people.members()
    assert (member.source, member.external_key) == ("wechat:wxid_a", "slack:U1")


def test_a_code_is_used_once(people: People) -> None:
    code = people.issue()
    assert people.wechat(f"/profile link {code}").text.startswith("Linked:")
    refused = people.wechat(f"/profile link {code}", sender="wxid_b").text
    assert refused == ("That link code is unknown, expired or already used. Ask for a new one with "
                       "/profile link on your other account.\nUsage: /profile link [CODE]")
    assert len(people.members()) == 2  # Ann, and wxid_b untouched
    assert people.identities()[("wechat", "wxid_b")] != people.identities()[("slack", "U1")]


def test_an_expired_code_is_refused(people: People) -> None:
    code = people.issue()
    people.clock.now = NOW + timedelta(minutes=15)
    assert "unknown, expired or already used" in people.wechat(f"/profile link {code}").text
    assert len(people.members()) == 2
    people.clock.now = NOW + timedelta(minutes=16)
    fresh = people.issue()
    people.clock.now = NOW + timedelta(minutes=30)  # 14 minutes later: still valid
    assert people.wechat(f"/profile link {fresh}").text.startswith("Linked:")
    assert len(people.members()) == 1


def test_a_code_of_another_community_is_refused(people: People) -> None:
    code = people.issue()
    refused = people.wechat(f"/profile link {code}", community="other").text
    assert refused.startswith("That code was issued in another community; only accounts in the same "
                              "community can be linked.")
    with Session(people.engine) as s:
        assert s.exec(select(LinkCode)).one().used_at is None
        assert len(s.exec(select(Community)).all()) == 2
    assert len(people.members()) == 2


def test_own_code_is_refused(people: People) -> None:
    code = people.issue()
    assert people.slack(f"/profile link {code}").text.startswith(
        "That code belongs to this account. Send it from your OTHER account")
    assert people.slack(f"/资料 绑定 {code}").text.startswith(
        "这个验证码是本账号生成的，请从你的另一个账号发送它。")
    with Session(people.engine) as s:
        assert s.exec(select(LinkCode)).one().used_at is None
    assert people.wechat(f"/profile link {code}").text.startswith("Linked:")  # still usable


@pytest.mark.parametrize("spell", [
    str.lower,
    lambda c: c.replace("-", ""),
    fullwidth,
    lambda c: c.replace("-", " ").lower(),
    lambda c: c.replace("-", "—"),
    lambda c: f"  {c.lower().replace('-', '')}  ",
])
def test_code_normalisation(people: People, spell: object) -> None:
    code = people.issue()
    assert callable(spell)
    result = people.wechat(f"/profile link {spell(code)}")
    assert result.text.startswith("Linked:"), result.text
    assert len(people.members()) == 1


def test_normalise_code() -> None:
    assert normalise_code("k7mx-p4qd") == "K7MXP4QD"
    assert normalise_code("Ｋ７ＭＸ－Ｐ４ＱＤ") == "K7MXP4QD"
    assert normalise_code(" K7MX\u3000P4QD ") == "K7MXP4QD"


@pytest.mark.parametrize(("text", "message"), [
    ("/profile link K7MX-P4QD extra", "Send just the code, e.g. /profile link K7MX-P4QD."),
    ("/profile link hello", "That is not a link code; codes look like K7MX-P4QD."),
    ("/profile link K7MX-P4Q0", "That is not a link code"),
    ("/profile link K7MX-P4QD", "That link code is unknown, expired or already used."),
])
def test_bad_arguments(people: People, text: str, message: str) -> None:
    reply = people.wechat(text).text
    assert reply.startswith(message) and reply.endswith("Usage: /profile link [CODE]")


def test_help_lists_profile_link(people: People) -> None:
    assert ("/profile link [CODE] — join your accounts on two platforms (a one-time code)"
            in people.slack("/help").text)
    assert "/资料 绑定 [验证码] — 绑定你在两个平台上的账号（一次性验证码）" in people.wechat("/帮助").text


def test_merge_members_refuses_one_member_or_two_communities(people: People) -> None:
    people.slack("/profile show")
    people.slack("/profile show", community="other")
    with Session(people.engine) as s:
        here, there = s.exec(select(Member).order_by(col(Member.id))).all()
        with pytest.raises(ValueError, match="into itself"):
            merge_members(s, keep=here, gone=here)
        with pytest.raises(ValueError, match="different communities"):
            merge_members(s, keep=here, gone=there)


# --- migration ---------------------------------------------------------------------------------------------

def _link_and_downgrade(engine: Engine, settings: Settings) -> None:
    upgrade_database(engine)
    assert "link_code" in sa.inspect(engine).get_table_names()
    people = _people(engine, settings)
    people.slack("/profile set offers: angel investing")
    people.slack('/event create "Demo Day" 2027-05-10 18:00')
    people.wechat("/rsvp 1 yes")
    people.clock.now = NOW + timedelta(minutes=1)
    people.slack("/rsvp 1 maybe")
    code = people.issue("slack", "U1")
    assert people.wechat(f"/profile link {code.lower()}").text.startswith("Linked:")
    [member] = people.members()
    assert people.identities() == {("slack", "U1"): member.id, ("wechat", "wxid_a"): member.id}
    assert people.rsvps() == {1: (member.id, "maybe", NOW + timedelta(minutes=1))}
    assert "unknown, expired or already used" in people.wechat(f"/profile link {code}", sender="x").text

    from alembic import command

    command.downgrade(alembic_config(engine), "0004")
    assert "link_code" not in sa.inspect(engine).get_table_names()
    upgrade_database(engine)
    assert "link_code" in sa.inspect(engine).get_table_names()


def test_migration_on_sqlite(tmp_path: Path, sqlite_settings: Settings) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path}/migrate.sqlite3")
    _link_and_downgrade(engine, sqlite_settings)
    engine.dispose()


def test_migration_and_linking_on_postgres(pg_engine: Engine, settings: Settings) -> None:
    _link_and_downgrade(pg_engine, settings)
