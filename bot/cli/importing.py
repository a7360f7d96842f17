"""``communitybot import members|resources|events FILE`` and ``import slack-export DIR``: load a community
from files organisers have.

Each command prints the column mapping it used, the counts and the skipped rows with their line
numbers (or, with ``--json``, one JSON object on the last stdout line:
``{"created", "updated", "unchanged", "skipped": [{"line", "reason"}], "mapping", ...}``). It never
prompts: when it cannot tell which column holds the name / title / start, it exits with status 1 and a
message naming the ``--map`` to pass and the available columns. Re-running an import is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import Session

from bot.cli.common import (
    CommunityOption,
    DataDirOption,
    JsonOption,
    fail,
    load_settings,
    open_database,
    print_json,
)
from bot.errors import CommunityBotError

import_app = typer.Typer(
    help="Import members, resources and events from CSV, JSONL, JSON or iCalendar files, or a Slack export.",
    no_args_is_help=True,
)

FileArgument = Annotated[
    Path, typer.Argument(help="The file to import (.csv, .tsv, .jsonl, .json; events also .ics).",
                         dir_okay=False)
]
MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", metavar="FIELD=COLUMN[+COLUMN]",
                 help="Which column fills a field, e.g. --map name=company_name --map "
                      "bio=short_description+long_description (repeatable; FIELD= leaves it out). "
                      "Without it, common column names are recognised."),
]
KeyOption = Annotated[
    str | None,
    typer.Option("--key", metavar="COL[,COL]",
                 help="Columns identifying a row across re-imports "
                      "(default: an id column, else name + url)."),
]


class Consent(StrEnum):
    """``--consent``: may imported members be suggested to others?"""

    suggest = "suggest"
    none = "none"


def _run(
    *,
    data_dir: Path | None,
    community_name: str,
    as_json: bool,
    do_import: Callable[[Session, Any, Any], Any],
) -> None:
    """Open the database, run ``do_import(session, community, community_settings)``, report, sync."""
    from bot.community import community_settings, get_or_create_community
    from bot.db import session_scope

    settings = load_settings(data_dir)
    try:
        engine = open_database(settings)
        with session_scope(engine) as session:
            community = get_or_create_community(session, community_name or settings.default_community,
                                                settings=settings)
            report = do_import(session, community, community_settings(community, settings=settings))
            community_id = community.id
    except CommunityBotError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json(report.to_dict())
    else:
        for line in report.summary_lines():
            typer.echo(line)
    from bot.cli import common

    after_import = getattr(common, "after_import", None)
    if after_import is not None:
        after_import(settings, engine, community_id)


@import_app.command("members")
def members_command(
    file: FileArgument,
    data_dir: DataDirOption = None,
    community: CommunityOption = "default",
    mapping: MapOption = None,
    key: KeyOption = None,
    consent: Annotated[
        Consent, typer.Option("--consent", help="suggest: new members may be suggested to others; none: not.")
    ] = Consent.suggest,
    as_json: JsonOption = False,
) -> None:
    """Import members (people or company profiles). Fields: name, bio, skills, offers, needs, location,
    languages, timezone, url."""
    from bot.importers import import_members, parse_map_options

    def run(session: Session, community_row: Any, _cs: Any) -> Any:
        return import_members(session, community=community_row, path=file, mapping=parse_map_options(mapping),
                              key=key, consent=consent is Consent.suggest, progress=True)

    _run(data_dir=data_dir, community_name=community, as_json=as_json, do_import=run)


@import_app.command("resources")
def resources_command(
    file: FileArgument,
    data_dir: DataDirOption = None,
    community: CommunityOption = "default",
    mapping: MapOption = None,
    key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import resources (guides, programmes, tools). Fields: title, url, description, tags, language."""
    from bot.importers import import_resources, parse_map_options

    def run(session: Session, community_row: Any, _cs: Any) -> Any:
        return import_resources(session, community=community_row, path=file,
                                mapping=parse_map_options(mapping), key=key, progress=True)

    _run(data_dir=data_dir, community_name=community, as_json=as_json, do_import=run)


@import_app.command("events")
def events_command(
    file: FileArgument,
    data_dir: DataDirOption = None,
    community: CommunityOption = "default",
    mapping: MapOption = None,
    key: KeyOption = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="Time zone of times without one (default: the community's time zone)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import events from iCalendar (.ics) or JSON. Fields: title, start, end, description, place, link,
    capacity, status."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from bot.errors import UsageError
    from bot.importers import import_events, parse_map_options

    def run(session: Session, community_row: Any, cs: Any) -> Any:
        zone = cs.zone
        if tz:
            try:
                zone = ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise UsageError(f"Unknown time zone {tz!r}; use an IANA name like Europe/Paris.") from exc
        return import_events(session, community=community_row, path=file, tz=zone,
                             mapping=parse_map_options(mapping), key=key, progress=True)

    _run(data_dir=data_dir, community_name=community, as_json=as_json, do_import=run)


@import_app.command("slack-export")
def slack_export_command(
    folder: Annotated[
        Path, typer.Argument(help="The unpacked Slack export: users.json, channels.json and one folder per "
                                  "channel of YYYY-MM-DD.json files.")
    ],
    data_dir: DataDirOption = None,
    community: CommunityOption = "default",
    consent: Annotated[
        Consent, typer.Option("--consent", help="suggest: new members may be suggested to others; none: not "
                                                "(the default: they never agreed to it).")
    ] = Consent.none,
    as_json: JsonOption = False,
) -> None:
    """Import a Slack workspace export: members from users.json (not deleted users or bots) and every
    answered question (a thread with a reply from someone else) as a resource."""
    from adapters.slack_export import import_slack_export

    def run(session: Session, community_row: Any, _cs: Any) -> Any:
        return import_slack_export(session, community=community_row, path=folder,
                                   consent=consent is Consent.suggest, progress=True)

    _run(data_dir=data_dir, community_name=community, as_json=as_json, do_import=run)
