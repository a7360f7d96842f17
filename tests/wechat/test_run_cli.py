"""``communitybot run`` with only WeChat configured, as a real process against the fake gateway, and the
WeChat settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.wechat import from_settings
from bot.app import build_app
from bot.community import get_or_create_community
from bot.db import session_scope
from bot.settings import Settings
from tests.wechat.conftest import ADMIN, MEMBER
from tests.wechat.fake_puppet import FakePuppet


def test_communitybot_run_serves_the_gateway_and_stops_on_ctrl_c(tmp_path: Path, fake: FakePuppet) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMMUNITYBOT_", "SLACK_", "WECHATY_"))}
    env.update({"COMMUNITYBOT_WECHAT_ENDPOINT": f"127.0.0.1:{fake.port}", "COMMUNITYBOT_WECHAT_TOKEN": "tok",
                "COMMUNITYBOT_WECHAT_SEND_INTERVAL": "0", "COMMUNITYBOT_WECHAT_SEND_SPACING": "0"})
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-c", "from bot.cli import main; main()", "run", "--data-dir", str(tmp_path / "d")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        fake.wait_streams(1, timeout=60)
        fake.say("/帮助", from_id=MEMBER)  # a command: answered without loading a model
        sent = fake.wait_sent(1, timeout=30)
        assert [s.conversation for s in sent] == [MEMBER] and "/活动" in sent[0].text
        assert fake.metadata[0]["authorization"] == "Wechaty tok"
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "WeChat: connecting to the gateway" in output


def test_settings_name_what_is_missing_and_accept_the_wechaty_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="COMMUNITYBOT_WECHAT_ENDPOINT"):
        from_settings(Settings(_env_file=None), lambda m: None, engine=None)  # type: ignore[call-arg,arg-type,return-value]
    monkeypatch.setenv("WECHATY_PUPPET_SERVICE_ENDPOINT", "10.0.0.5:8788")
    monkeypatch.setenv("WECHATY_PUPPET_SERVICE_TOKEN", "secret-token")
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=None)  # type: ignore[call-arg]
    assert settings.wechat_endpoint == "10.0.0.5:8788"
    assert settings.wechat_token is not None and settings.wechat_token.get_secret_value() == "secret-token"
    core = build_app(settings, progress=False)
    with session_scope(core.engine) as session:
        row = get_or_create_community(session, "default", settings=settings)
        row.settings = {"admins": [f"wechat:{ADMIN}", "slack:U1", "U2"]}
        session.add(row)
    adapter = from_settings(settings, core.handle, engine=core.engine)
    try:
        assert (adapter.host, adapter.port) == ("10.0.0.5", 8788)
        assert list(adapter._admin_ids()) == [ADMIN]  # noqa: SLF001 - only wechat: ids get notices
    finally:
        adapter.close()
        core.engine.dispose()
