"""Settings: every variable is documented in .env.example; community settings validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.community import (
    CommunitySettings,
    check_cron,
    check_timezone,
    community_settings,
    is_timezone,
    set_community_setting,
    suggest_timezone,
)
from bot.errors import UsageError
from bot.models import Community
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_listed_in_env_example() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"COMMUNITYBOT_{name.upper()}=" in example, name


def test_default_base_model_is_multilingual_e5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMUNITYBOT_BASE_MODEL", raising=False)
    assert Settings(_env_file=None).base_model == "multilingual-e5-small"  # type: ignore[call-arg]
    example = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    assert "COMMUNITYBOT_BASE_MODEL=multilingual-e5-small" in example


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


# --- digest_cron ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "stored"), [
    ("0 9 * * 1", "0 9 * * 1"),
    ("  30   18 * *  mon-fri ", "30 18 * * mon-fri"),
    ("*/15 9-17 * * 1-5", "*/15 9-17 * * 1-5"),
    ("0 9 1,15 * *", "0 9 1,15 * *"),
    ("0 8 * JAN,jul SUN", "0 8 * JAN,jul SUN"),
    ("0 9 * * 0", "0 9 * * 0"),
    ("0 9 * * 7", "0 9 * * 7"),  # 7 is Sunday too
    ("59 23 31 12 6", "59 23 31 12 6"),
    ("1-59/2 0-23/6 1-31/10 */3 0-7/2", "1-59/2 0-23/6 1-31/10 */3 0-7/2"),
    ("5/10 * * * *", "5/10 * * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@DAILY", "0 0 * * *"),
])
def test_digest_cron_accepts_standard_cron(value: str, stored: str) -> None:
    assert check_cron(value) == stored
    row = Community(name="c", settings={})
    assert set_community_setting(row, "digest_cron", value, current=CommunitySettings()) == stored
    assert row.settings == {"digest_cron": stored}


@pytest.mark.parametrize(("value", "message"), [
    ("every monday", "a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
                     "e.g. '0 9 * * 1' (Mondays at 9:00) or '30 18 * * mon-fri'; 'every monday' has 2"),
    ("", "has 0"),
    ("0 9 * * 1 2027", "has 6"),
    ("99 99 * * *", "minute 99 is out of range 0-59"),
    ("0 24 * * *", "hour 24 is out of range 0-23"),
    ("0 9 0 * *", "day of month 0 is out of range 1-31"),
    ("0 9 32 * *", "day of month 32 is out of range 1-31"),
    ("0 9 * 13 *", "month 13 is out of range 1-12"),
    ("0 9 * * 8", "day of week 8 is out of range 0-7"),
    ("0 9 * foo *", "month 'foo' is not a number (1-12 or a name (jan, feb, mar, ...))"),
    ("0 9 * * funday", "day of week 'funday' is not a number (0-7 or a name (sun, mon, tue, ...))"),
    ("0 9 * * mon-sun", "day of week range 'mon-sun' runs backwards"),
    ("0,61 9 * * *", "minute 61 is out of range 0-59"),
    ("0 9,24 * * *", "hour 24 is out of range 0-23"),
    ("*/0 * * * *", "minute step /0 must be between 1 and 60"),
    ("0 9 L * *", "day of month 'L' is not a number (1-31)"),
    ("0 9 ? * 1", "day of month '?' is not a value, range (a-b), list (a,b) or step (*/n)"),
    ("0 9 1,,2 * *", "day of month '1,,2' is not a value"),
    ("0 9-17/ * * *", "hour '9-17/' is not a value"),
])
def test_digest_cron_refuses_what_cron_would_not_run(value: str, message: str) -> None:
    row = Community(name="c", settings={})
    with pytest.raises(UsageError) as caught:
        set_community_setting(row, "digest_cron", value, current=CommunitySettings())
    assert caught.value.user_message.startswith("Bad value for digest_cron: ")
    assert message in caught.value.user_message
    assert "Value error" not in caught.value.user_message
    assert row.settings == {}
    with pytest.raises(ValueError, match="cron|range|number|value|step|backwards"):
        check_cron(value)


# --- messages ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value", "message"), [
    ("timezone", "Mars/Olympus",
     "Bad value for timezone: unknown time zone 'Mars/Olympus'; use an IANA name like Asia/Shanghai."),
    ("timezone", "asia/shanghai", "Bad value for timezone: unknown time zone 'asia/shanghai'; "
                                  "did you mean Asia/Shanghai?"),
    ("timezone", "EUROPE/PARIS", "did you mean Europe/Paris?"),
    ("timezone", "new york", "did you mean America/New_York?"),
    ("timezone", "Asia/Shangai", "did you mean Asia/Shanghai?"),
    ("timezone", "utc", "did you mean UTC?"),
    ("language", "fr", "Bad value for language: language must be en or zh."),
    ("intent_confidence_floor", "2", "Bad value for intent_confidence_floor: Input should be less than or "
                                     "equal to 1."),
])
def test_setting_errors_read_as_sentences_without_pydantic_prefixes(
    key: str, value: str, message: str
) -> None:
    row = Community(name="c", settings={})
    with pytest.raises(UsageError) as caught:
        set_community_setting(row, key, value, current=CommunitySettings())
    text = caught.value.user_message
    assert message in text
    assert "Value error" not in text and "Assertion failed" not in text
    assert not text.endswith("?.") and not text.endswith("..")


@pytest.mark.parametrize("name", ["Asia/Shanghai", "Europe/Paris", "UTC", "America/Argentina/Buenos_Aires"])
def test_exact_zone_names_are_accepted(name: str) -> None:
    assert check_timezone(name) == name
    assert is_timezone(name)


@pytest.mark.parametrize(("name", "suggestion"), [
    ("asia/shanghai", "Asia/Shanghai"), ("shanghai", "Asia/Shanghai"), ("Europe/Pariss", "Europe/Paris"),
    ("Mars/Olympus", None), ("", None),
])
def test_zone_suggestions(name: str, suggestion: str | None) -> None:
    assert suggest_timezone(name) == suggestion
    assert not is_timezone(name)


def test_a_stored_setting_that_no_longer_validates_falls_back_to_the_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(default_timezone="Asia/Shanghai")
    row = Community(name="old", settings={"digest_cron": "every monday", "language": "zh"})
    effective = community_settings(row, settings=settings)
    assert (effective.digest_cron, effective.language, effective.timezone) == ("0 9 * * 1", "zh",
                                                                              "Asia/Shanghai")
    assert "ignoring stored digest_cron='every monday'" in caplog.text
