"""Shared pieces of the CLI: common options, settings and database opening, JSON output, errors."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from bot.errors import CommunityBotError
from bot.settings import Settings

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Data directory (default: COMMUNITYBOT_DATA_DIR or the user data folder)."
    ),
]
DEFAULT_COMMUNITY = "default"
"""The community the CLI and the console use unless told otherwise."""
CommunityOption = Annotated[
    str, typer.Option("--community", envvar="COMMUNITYBOT_DEFAULT_COMMUNITY", help="Community name.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line of stdout.")]


def load_settings(data_dir: Path | None) -> Settings:
    """Settings from the environment, with ``--data-dir`` taking precedence.

    Raises:
        typer.Exit: (code 2) a setting has a value it cannot take; the message names the variable.
    """
    try:
        settings = Settings()
    except ValidationError as exc:
        raise fail(settings_error(exc), code=2) from exc
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir.expanduser().resolve()})
    return settings


def settings_error(exc: ValidationError) -> str:
    """One line naming the environment variable of the first invalid setting and what is wrong with it."""
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error.get("loc") else "?"
    variable = name if name.isupper() else f"COMMUNITYBOT_{name.upper()}"
    value = error.get("input")
    return f"{variable}={value!r} is not valid: {error.get('msg', 'invalid value')} (see .env.example)"


def require_data_dir(settings: Settings) -> None:
    """Refuse a data directory that does not exist (a mistyped ``--data-dir`` would otherwise become an
    empty deployment).

    Raises:
        typer.Exit: (code 2) with the fix.
    """
    if settings.database_url is None and not settings.data_dir.is_dir():
        raise fail(
            f"no data directory at {settings.data_dir}; create one with `communitybot demo` or "
            "`communitybot import ...`, or pass --data-dir",
            code=2,
        )


def open_database(settings: Settings) -> Engine:
    """Create the engine for ``settings`` and upgrade its schema (idempotent)."""
    from bot.db import create_db_engine, upgrade_database

    logging.getLogger("alembic").setLevel(logging.WARNING)
    engine = create_db_engine(
        settings.resolved_database_url(), busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    upgrade_database(engine)
    return engine


def print_json(payload: dict[str, Any]) -> None:
    """Print ``payload`` as one JSON line on stdout (the contract of every ``--json`` flag)."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")


def fail(error: CommunityBotError | str, *, code: int = 1) -> typer.Exit:
    """Print a user-facing error to stderr and return the ``typer.Exit`` to raise."""
    message = error.user_message if isinstance(error, CommunityBotError) else error
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def after_import(settings: Settings, engine: Engine, community_id: int) -> None:
    """Bring the community's search indexes in step with what was just imported (progress on stderr)."""
    from bot.app import load_matcher

    typer.echo("Updating the search index...", err=True)
    load_matcher(settings, engine=engine).sync(community_id=community_id)
