"""The CLI's stable forms, with the ML parts replaced by fakes (real-model runs live in tests/production)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bot.app
from adapters.console import ConsoleAdapter
from bot.cli import app
from bot.messages import HandledMessage, IncomingMessage, Match, Reply
from tests.core.fakes import FakeClassifier, FakeMatcher

runner = CliRunner()


@pytest.fixture(autouse=True)
def fake_models(monkeypatch: pytest.MonkeyPatch) -> FakeMatcher:
    matcher = FakeMatcher(
        [Match(kind="member", id=99, title="Maya", score=0.8, why="offers: angel investing", cosine=0.75)]
    )
    monkeypatch.setattr(
        bot.app, "load_classifier", lambda settings, **kw: FakeClassifier([("angel", "find_member", 0.9)])
    )
    monkeypatch.setattr(bot.app, "load_matcher", lambda settings, **kw: matcher)
    return matcher


def last_json(output: str) -> dict[str, object]:
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_ask_json_has_exactly_the_documented_keys(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ask", "--data-dir", str(tmp_path), "--json", "who knows angel rounds?"])
    assert result.exit_code == 0, result.output
    payload = last_json(result.stdout)
    assert set(payload) == {"intent", "confidence", "language", "matches", "reply"}
    assert payload["intent"] == "find_member" and payload["language"] == "en"
    assert payload["matches"] == [
        {
            "kind": "member",
            "id": 99,
            "title": "Maya",
            "score": 0.8,
            "cosine": 0.75,
            "why": "offers: angel investing",
            "below_threshold": False,
        }
    ]
    assert "Maya" in str(payload["reply"])


def test_ask_runs_commands_as_the_local_admin(tmp_path: Path) -> None:
    created = runner.invoke(
        app, ["ask", "--data-dir", str(tmp_path), '/event create "Spring Meetup" 2099-05-10 18:00']
    )
    assert created.exit_code == 0, created.output
    listed = runner.invoke(app, ["ask", "--data-dir", str(tmp_path), "--json", "/event list"])
    payload = last_json(listed.stdout)
    assert payload["intent"] == "command"
    assert "Spring Meetup" in str(payload["reply"])
    config = runner.invoke(app, ["ask", "--data-dir", str(tmp_path), "/bot config timezone Asia/Shanghai"])
    assert "Asia/Shanghai" in config.stdout
    shown = runner.invoke(app, ["community", "show", "--data-dir", str(tmp_path), "--json"])
    assert last_json(shown.stdout)["settings"]["timezone"] == "Asia/Shanghai"  # type: ignore[index]


def test_search_json_and_bad_kind(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["search", "--data-dir", str(tmp_path), "--json", "--kind", "member", "angel"]
    )
    assert result.exit_code == 0, result.output
    assert last_json(result.stdout)["matches"][0]["id"] == 99  # type: ignore[index]
    bad = runner.invoke(app, ["search", "--data-dir", str(tmp_path), "--kind", "person", "angel"])
    assert bad.exit_code == 2 and "use member, resource or event" in bad.output


def test_community_set_rejects_unknown_key_with_the_known_ones(tmp_path: Path) -> None:
    result = runner.invoke(app, ["community", "set", "--data-dir", str(tmp_path), "colour", "blue"])
    assert result.exit_code == 2
    assert "Known settings" in result.output and "timezone" in result.output
    ok = runner.invoke(app, ["community", "set", "--data-dir", str(tmp_path), "language", "zh"])
    assert ok.exit_code == 0 and "language = zh" in ok.stdout


def test_db_upgrade(tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0 and "up to date" in result.stdout
    assert (tmp_path / "communitybot.sqlite3").exists()


def test_console_chat_reads_until_quit() -> None:
    seen: list[IncomingMessage] = []

    def handle(message: IncomingMessage) -> HandledMessage:
        seen.append(message)
        return HandledMessage(replies=(Reply(text=f"echo {message.text}"),))

    out = io.StringIO()
    count = ConsoleAdapter(handle=handle, community="c").chat(
        stdin=io.StringIO("hi\n\n  下周有什么活动？ \nquit\nnever\n"), stdout=out
    )
    assert count == 2
    assert [m.text for m in seen] == ["hi", "下周有什么活动？"]
    assert all(m.is_direct and m.sender == "local" and m.community == "c" for m in seen)
    assert "bot> echo 下周有什么活动？" in out.getvalue()


def test_ask_exits_non_zero_when_handling_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(FakeMatcher):
        def search(self, **kw: object) -> list[Match]:  # type: ignore[override]
            raise RuntimeError("index on fire")

    monkeypatch.setattr(bot.app, "load_matcher", lambda settings, **kw: Broken())
    result = runner.invoke(app, ["ask", "--data-dir", str(tmp_path), "anyone know about angel rounds?"])
    assert result.exit_code == 1
    assert "something went wrong" in result.stdout


def test_search_refuses_an_empty_query_at_once(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", "--data-dir", str(tmp_path), "  "])
    assert result.exit_code == 2 and "give something to search for" in result.output


def test_chat_on_a_missing_data_dir_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["chat", "--data-dir", str(tmp_path / "typo")])
    assert result.exit_code == 2 and "no data directory" in result.output
    assert not (tmp_path / "typo").exists()
