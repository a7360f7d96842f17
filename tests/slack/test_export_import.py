"""``communitybot import slack-export DIR``: members and identities from users.json, answered threads as
resources, re-imports without duplicates, clear errors, and the real anonymised export."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from adapters.slack_export import SlackExportReport, import_slack_export
from bot.cli import common
from bot.cli.importing import import_app
from bot.db import session_scope
from bot.errors import ImportFormatError
from bot.members import member_for_sender
from bot.models import Community, Member, PlatformIdentity, Resource

REAL_EXPORT = Path(os.environ.get("COMMUNITYBOT_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared"
                                  / "data")) / "real" / "slack_export"

ROOT_TS = "1709280000.000100"
USERS: list[dict[str, Any]] = [
    {"id": "U_ANN", "name": "ann", "real_name": "Ann Lee", "tz": "Europe/Paris", "deleted": False,
     "is_bot": False, "profile": {"display_name": "Ann", "real_name": "Ann Lee"}},
    {"id": "U_BO", "name": "bo", "real_name": "Bo Chen", "tz": "Asia/Shanghai", "deleted": False,
     "is_bot": False, "profile": {"display_name": "", "real_name": "Bo Chen"}},
    {"id": "B_HELPER", "name": "helper", "deleted": False, "is_bot": True,
     "profile": {"display_name": "Helper", "real_name": "Helper"}},
    {"id": "U_GONE", "name": "gone", "deleted": True, "profile": {"display_name": "Gone"}},
    {"id": "USLACKBOT", "name": "slackbot", "deleted": False, "is_bot": False,
     "profile": {"display_name": "Slackbot", "real_name": "Slackbot"}},
]
CHANNELS = [{"id": "C_HELP", "name": "help"}, {"id": "C_OTHER", "name": "not-exported"}]
DAY_1: list[dict[str, Any]] = [
    {"type": "message", "subtype": "channel_join", "user": "U_BO", "text": "<@U_BO> has joined the channel",
     "ts": "1709270000.000100"},
    {"type": "message", "user": "U_ANN", "client_msg_id": "m-1",
     "text": "How do I raise a pre-seed round &amp; keep &lt;10% dilution?\nAny advice welcome 🎉",
     "ts": ROOT_TS, "thread_ts": ROOT_TS, "reply_count": 3,
     "replies": [{"user": "U_BO", "ts": "1709280100.000100"}, {"user": "B_HELPER", "ts": "1709280200.000100"},
                 {"user": "U_ANN", "ts": "1709366400.000100"}]},
    {"type": "message", "user": "U_BO", "client_msg_id": "m-2",
     "text": "Read <https://example.org/safe|the SAFE guide> first, <@U_ANN>.",
     "ts": "1709280100.000100", "thread_ts": ROOT_TS, "parent_user_id": "U_ANN"},
    {"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": "I am a bot reply",
     "ts": "1709280200.000100", "thread_ts": ROOT_TS, "parent_user_id": "U_ANN"},
    {"type": "message", "user": "U_BO", "client_msg_id": "m-3", "text": "good morning everyone",
     "ts": "1709290000.000100"},
    {"type": "message", "user": "U_BO", "client_msg_id": "m-4", "text": "Anyone used Stripe Atlas?",
     "ts": "1709300000.000100", "thread_ts": "1709300000.000100", "reply_count": 1,
     "replies": [{"user": "U_BO", "ts": "1709300100.000100"}]},
    {"type": "message", "user": "U_BO", "client_msg_id": "m-5", "text": "never mind, found it",
     "ts": "1709300100.000100", "thread_ts": "1709300000.000100", "parent_user_id": "U_BO"},
]
#: The description of the one answered thread: the replies of people, decoded, in order.
ANSWERS = "Read the SAFE guide (https://example.org/safe) first, @Ann.\nthanks @Bo Chen!"
DAY_2: list[dict[str, Any]] = [
    {"type": "message", "user": "U_ANN", "client_msg_id": "m-6", "text": "thanks <@U_BO>!",
     "ts": "1709366400.000100", "thread_ts": ROOT_TS, "parent_user_id": "U_ANN"},
]


def write_export(folder: Path, *, users: list[dict[str, Any]] = USERS, day_1: list[dict[str, Any]] = DAY_1,
                 day_2: list[dict[str, Any]] = DAY_2) -> Path:
    """A small Slack export in ``folder``, pretty-printed as Slack writes it."""
    (folder / "help").mkdir(parents=True, exist_ok=True)
    for name, content in (("users.json", users), ("channels.json", CHANNELS),
                          ("help/2024-03-01.json", day_1), ("help/2024-03-02.json", day_2)):
        (folder / name).write_text(json.dumps(content, indent=4, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.fixture
def db(engine: Engine) -> Engine:
    """The test's database (SQLite or PostgreSQL) with the community ``default``."""
    with session_scope(engine) as session:
        session.add(Community(name="default"))
    return engine


def run_import(engine: Engine, path: Path, **kw: Any) -> SlackExportReport:
    with session_scope(engine) as session:
        community = session.exec(select(Community)).one()
        return import_slack_export(session, community=community, path=path, **kw)


def rows(engine: Engine, model: Any) -> list[Any]:
    with Session(engine) as session:
        return list(session.exec(select(model).order_by(model.id)).all())


def test_synthetic_export_creates_exactly_the_expected_rows(db: Engine, tmp_path: Path) -> None:
    report = run_import(db, write_export(tmp_path / "export"))

    members = rows(db, Member)
    assert [(m.display_name, m.external_key, m.timezone, m.consent_suggest, m.source) for m in members] == [
        ("Ann", "slack:U_ANN", "Europe/Paris", False, "slack-export"),
        ("Bo Chen", "slack:U_BO", "Asia/Shanghai", False, "slack-export"),
    ]
    identities = rows(db, PlatformIdentity)
    assert [(i.platform, i.platform_user_id, i.member_id, i.display_name) for i in identities] == [
        ("slack", "U_ANN", members[0].id, "Ann"), ("slack", "U_BO", members[1].id, "Bo Chen")]

    [resource] = rows(db, Resource)
    assert resource.title == "How do I raise a pre-seed round & keep <10% dilution?"
    assert resource.description == ANSWERS
    assert resource.url == "https://example.org/safe"
    assert resource.tags == "slack, help"
    assert resource.external_key == f"slack:C_HELP:{ROOT_TS}"
    assert resource.source == "slack-export" and resource.language == "en"

    assert (report.members.created, report.members.skipped) == (2, 3)
    assert (report.threads.created, report.threads.skipped) == (1, 1)
    assert [(s.file, s.message) for s in report.skipped] == [
        ("users.json", "bot or app B_HELPER (Helper)"),
        ("users.json", "deleted user U_GONE (Gone)"),
        ("users.json", "bot or app USLACKBOT (Slackbot)"),
        ("help/2024-03-01.json", "no reply from anyone but the asker"),
    ]
    assert report.skipped[0].line == 26 and report.skipped[3].line == 57  # where each item starts
    assert dict(report.ignored) == {"channel_join messages": 1, "messages without replies": 1}
    assert (report.channels, report.channels_with_messages) == (2, 1)
    assert report.warnings == []


def test_reimport_updates_changes_and_never_duplicates(db: Engine, tmp_path: Path) -> None:
    export = write_export(tmp_path / "export")
    run_import(db, export)
    again = run_import(db, export)
    assert (again.members.created, again.members.updated, again.members.unchanged) == (0, 0, 2)
    assert (again.threads.created, again.threads.updated, again.threads.unchanged) == (0, 0, 1)

    users = json.loads(json.dumps(USERS))
    users[0]["profile"]["display_name"] = "Ann L."
    day_2 = [{**DAY_2[0], "text": "thanks a lot <@U_BO>!"}]
    changed = run_import(db, write_export(export, users=users, day_2=day_2))
    assert (changed.members.created, changed.members.updated, changed.members.unchanged) == (0, 1, 1)
    assert (changed.threads.created, changed.threads.updated) == (0, 1)
    assert (len(rows(db, Member)), len(rows(db, PlatformIdentity)), len(rows(db, Resource))) == (2, 2, 1)
    assert rows(db, PlatformIdentity)[0].display_name == "Ann L."
    assert rows(db, Resource)[0].description.endswith("\nthanks a lot @Bo Chen!")


def test_member_the_adapter_created_is_adopted_and_keeps_its_consent(db: Engine, tmp_path: Path) -> None:
    with session_scope(db) as session:
        community = session.exec(select(Community)).one()
        ann = member_for_sender(session, community=community, platform="slack", user_id="U_ANN",
                                display_name="ann")
        ann.consent_suggest = True  # she said what she offers
        ann_id = ann.id
    report = run_import(db, write_export(tmp_path / "export"), consent=False)
    assert (report.members.created, report.members.updated) == (1, 1)
    members = rows(db, Member)
    assert len(members) == 2 and members[0].id == ann_id
    assert (members[0].external_key, members[0].display_name, members[0].consent_suggest) == (
        "slack:U_ANN", "Ann", True)
    assert len(rows(db, PlatformIdentity)) == 2


def test_consent_option_lets_new_members_be_suggested(db: Engine, tmp_path: Path) -> None:
    run_import(db, write_export(tmp_path / "export"), consent=True)
    assert {m.consent_suggest for m in rows(db, Member)} == {True}


def test_export_without_timestamps_still_ties_replies_to_questions(db: Engine, tmp_path: Path) -> None:
    def anonymise(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for msg in json.loads(json.dumps(messages)):
            for key in ("ts", "thread_ts"):
                if key in msg:
                    msg[key] = "[phone]"
            for reply in msg.get("replies", []):
                reply["ts"] = "[phone]"
            out.append(msg)
        return out

    report = run_import(db, write_export(tmp_path / "export", day_1=anonymise(DAY_1), day_2=anonymise(DAY_2)))
    [resource] = rows(db, Resource)
    assert resource.external_key == "slack:C_HELP:m-1"
    assert resource.description == ANSWERS
    assert [w.message.split(":")[0] for w in report.warnings] == [
        "#help has no message timestamps (anonymised export?)"]
    assert run_import(db, tmp_path / "export").threads.unchanged == 1


def test_not_an_export_says_what_it_expects(db: Engine, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImportFormatError, match="is not a Slack export: it has no users.json.*users.json, "
                                                "channels.json and one folder per channel"):
        run_import(db, tmp_path / "empty")
    write_export(tmp_path / "unzipped" / "My Workspace Slack export")
    with pytest.raises(ImportFormatError, match="Found one in .*My Workspace Slack export: pass that folder"):
        run_import(db, tmp_path / "unzipped")
    (tmp_path / "export.zip").write_bytes(b"PK\x03\x04")
    with pytest.raises(ImportFormatError, match=r"is the export ZIP: unpack it first \(unzip export.zip"):
        run_import(db, tmp_path / "export.zip")
    with pytest.raises(ImportFormatError, match="No such folder"):
        run_import(db, tmp_path / "missing")


def test_unreadable_day_file_is_a_warning(db: Engine, tmp_path: Path) -> None:
    export = write_export(tmp_path / "export")
    (export / "help" / "2024-03-03.json").write_text("[{not json", encoding="utf-8")
    report = run_import(db, export)
    assert report.threads.created == 1
    assert [(w.file, w.message.split(":")[0]) for w in report.warnings] == [
        ("help/2024-03-03.json", "file left out")]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, database_url: str | None) -> tuple[typer.Typer, list[int]]:
    """``import`` registered as the main CLI does, on the test's database (SQLite: the data directory's
    file); the index sync after an import is recorded."""
    for var in ("DATABASE_URL", "COMMUNITYBOT_DATABASE_URL", "COMMUNITYBOT_DEFAULT_COMMUNITY"):
        monkeypatch.delenv(var, raising=False)
    if database_url:
        monkeypatch.setenv("COMMUNITYBOT_DATABASE_URL", database_url)
    synced: list[int] = []
    monkeypatch.setattr(common, "after_import", lambda _s, _e, community_id: synced.append(community_id))
    app = typer.Typer()
    app.add_typer(import_app, name="import")
    return app, synced


def test_cli_report_and_json(cli: tuple[typer.Typer, list[int]], tmp_path: Path) -> None:
    app, synced = cli
    export, data = write_export(tmp_path / "export"), str(tmp_path / "data")
    runner = CliRunner()
    human = runner.invoke(app, ["import", "slack-export", str(export), "--data-dir", data])
    assert human.exit_code == 0, human.output
    assert "Members: 2 created, 0 updated, 0 unchanged, 3 skipped." in human.stdout
    assert "Q&A threads (resources): 1 created, 0 updated, 0 unchanged, 1 skipped." in human.stdout
    assert "users.json line 36: skipped: deleted user U_GONE (Gone)" in human.stdout
    assert synced == [1]

    as_json = runner.invoke(app, ["import", "slack-export", str(export), "--data-dir", data, "--json"])
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.stdout.strip().splitlines()[-1])
    common_keys = {"created", "updated", "unchanged", "skipped", "warnings", "mapping", "alternatives", "key",
                   "merged", "unused_columns", "kind", "source"}
    assert common_keys <= set(payload)
    assert (payload["created"], payload["updated"], payload["unchanged"]) == (0, 0, 3)
    assert payload["members"] == {"created": 0, "updated": 0, "unchanged": 2, "skipped": 3}
    assert payload["resources"] == {"created": 0, "updated": 0, "unchanged": 1, "skipped": 1}
    assert payload["skipped"][1] == {"line": 36, "reason": "deleted user U_GONE (Gone)", "file": "users.json"}
    assert payload["kind"] == "slack-export"

    missing = runner.invoke(app, ["import", "slack-export", str(tmp_path), "--data-dir", data])
    assert missing.exit_code == 1
    assert "is not a Slack export: it has no users.json" in missing.stderr


def test_real_anonymised_export(db: Engine) -> None:
    if not (REAL_EXPORT / "users.json").is_file():
        pytest.skip(f"the real Slack export is not at {REAL_EXPORT} (set COMMUNITYBOT_SHARED_DATA)")
    report = run_import(db, REAL_EXPORT)
    # 71 users: 14 deleted and 6 bots skipped; 53 thread roots in the 2 exported channels (of 39 listed):
    # 49 answered by someone else, 1 deleted question (a tombstone), 2 answered only by the asker, 1 question
    # with no text. Its timestamps were anonymised to "[phone]", hence one warning per channel.
    assert (report.members.created, report.members.skipped) == (51, 20)
    assert (report.threads.created, report.threads.skipped) == (49, 4)
    assert (report.channels, report.channels_with_messages) == (39, 2)
    assert len(report.warnings) == 2
    assert report.ignored["channel_join messages"] == 38
    assert "replies whose question is not in the export" not in report.ignored  # each found its question
    assert sorted(s.message for s in report.skipped if s.file != "users.json") == [
        "no reply from anyone but the asker", "no reply from anyone but the asker",
        "the question has no text (only a file or an image?)", "the question was deleted"]
    assert len(rows(db, Member)) == 51 and len(rows(db, PlatformIdentity)) == 51
    resources = rows(db, Resource)
    assert len(resources) == 49 and len({r.external_key for r in resources}) == 49
    assert all(r.title and r.description and len(r.description) <= 2000 for r in resources)
    assert not any("<@" in r.title + r.description or "&amp;" in r.title + r.description for r in resources)
    again = run_import(db, REAL_EXPORT)
    assert (again.members.created, again.members.unchanged) == (0, 51)
    assert (again.threads.created, again.threads.unchanged) == (0, 49)
