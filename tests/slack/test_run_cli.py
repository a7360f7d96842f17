"""``communitybot run`` without a platform configured, and the Slack settings' error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.slack import SlackAdapter, from_settings
from bot.cli import app
from bot.settings import Settings


def test_run_with_nothing_configured_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "SLACK_SIGNING_SECRET",
        "COMMUNITYBOT_SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "COMMUNITYBOT_SLACK_APP_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    result = CliRunner().invoke(app, ["run", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 2
    assert "COMMUNITYBOT_SLACK_SIGNING_SECRET" in result.output and "communitybot chat" in result.output


def test_missing_slack_settings_are_named() -> None:
    with pytest.raises(ValueError, match="signing secret"):
        SlackAdapter(handle=lambda m: None, signing_secret="", bot_token="xoxb-1")  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="COMMUNITYBOT_SLACK_BOT_TOKEN"):
        SlackAdapter(handle=lambda m: None, signing_secret="s")  # type: ignore[arg-type,return-value]
    settings = Settings(_env_file=None, slack_signing_secret="s")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="COMMUNITYBOT_SLACK_CLIENT_ID"):
        from_settings(settings, lambda m: None, engine=None)  # type: ignore[arg-type,return-value]


def test_a_refused_or_unreachable_bot_token_is_a_clear_error() -> None:
    from tests.slack.fake_slack import FakeSlack

    with FakeSlack() as fake:
        fake.add_workspace("T1", bot_token="xoxb-good", bot_user_id="U_B", bot_id="B_B")
        fake.revoke("xoxb-good", "token_revoked")
        with pytest.raises(ValueError, match=r"refused the bot token \(token_revoked\)"):
            SlackAdapter(
                handle=lambda m: None,
                signing_secret="s",
                bot_token="xoxb-good",  # type: ignore[arg-type,return-value]
                api_url=fake.base_url,
            )
    with pytest.raises(ValueError, match="cannot reach Slack"):
        SlackAdapter(
            handle=lambda m: None,
            signing_secret="s",
            bot_token="xoxb-x",  # type: ignore[arg-type,return-value]
            api_url="http://127.0.0.1:9/api/",
        )


def test_a_metrics_port_in_use_is_a_one_line_error_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newcomer's view: a port taken by another program said in one line (exit 2), not a traceback."""
    import socket

    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(app, ["db", "upgrade", "--data-dir", str(tmp_path / "data")]).exit_code == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("COMMUNITYBOT_METRICS_PORT", str(port))
        monkeypatch.setenv("COMMUNITYBOT_METRICS_HOST", "127.0.0.1")
        result = CliRunner().invoke(app, ["jobs", "serve", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 2, result.output
    assert f"cannot serve /healthz and /metrics on 127.0.0.1:{port}" in result.output
    assert "COMMUNITYBOT_METRICS_PORT" in result.output and "Traceback" not in result.output
