"""Settings: every variable is documented in .env.example; community settings validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.community import CommunitySettings, community_settings, set_community_setting
from bot.errors import UsageError
from bot.models import Community
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_listed_in_env_example() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"COMMUNITYBOT_{name.upper()}=" in example, name


def test_database_url_overrides_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert (
        Settings(data_dir=tmp_path).resolved_database_url()
        == f"sqlite:///{tmp_path / 'communitybot.sqlite3'}"
    )
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert Settings(data_dir=tmp_path).resolved_database_url().startswith("postgresql+psycopg://")


def test_community_settings_overlay_defaults_and_validate() -> None:
    settings = Settings(default_timezone="Asia/Shanghai", default_language="zh")
    row = Community(name="c", settings={})
    assert community_settings(row, settings=settings).timezone == "Asia/Shanghai"

    def now() -> CommunitySettings:
        return community_settings(row, settings=settings)

    assert set_community_setting(
        row, "listen-channels", "C1, C2，C3", current=community_settings(row, settings=settings)
    ) == [
        "C1",
        "C2",
        "C3",
    ]
    assert (
        set_community_setting(
            row, "match_threshold", "0.5", current=community_settings(row, settings=settings)
        )
        == 0.5
    )
    with pytest.raises(UsageError, match="Known settings"):
        set_community_setting(row, "colour", "blue", current=now())
    with pytest.raises(UsageError, match="IANA"):
        set_community_setting(
            row, "timezone", "Mars/Olympus", current=community_settings(row, settings=settings)
        )
    with pytest.raises(UsageError, match="match_threshold"):
        set_community_setting(
            row, "match_threshold", "high", current=community_settings(row, settings=settings)
        )
    assert row.settings == {"listen_channels": ["C1", "C2", "C3"], "match_threshold": 0.5}
    current = community_settings(row, settings=settings)
    assert set_community_setting(row, "match_threshold", "auto", current=current) is None
