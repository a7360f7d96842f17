"""``communitybot index status|rebuild``: the matching indexes of a community, as an operator sees them.

``status`` syncs the indexes with the database (catching up if they fell behind) and prints, per kind,
how many items are indexed and whether the index is exact or approximate (IVF). ``rebuild`` re-embeds
every item from the database and writes the indexes again: after restoring a backup, or to be sure. Both
take ``--json`` (one object on the last stdout line: ``{"community", "indexes": {kind: {"items",
"approximate"}}}``, plus ``"seconds"`` for a rebuild).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import (
    DEFAULT_COMMUNITY,
    CommunityOption,
    DataDirOption,
    JsonOption,
    fail,
    load_settings,
    print_json,
)
from bot.errors import CommunityBotError

index_app = typer.Typer(help="Matching indexes: status and rebuild from the database.", no_args_is_help=True)
KindOption = Annotated[
    str | None, typer.Option("--kind", help="member, resource or event (default: all three).")
]


def _run(data_dir: Path | None, community: str, kind: str | None, *, rebuild: bool, as_json: bool) -> None:
    from bot.app import build_app
    from bot.community import get_or_create_community
    from bot.db import session_scope
    from matching.documents import KINDS
    from matching.search import IndexedMatcher

    if kind is not None and kind not in KINDS:
        raise fail(f"unknown --kind {kind}; use member, resource or event", code=2)
    settings = load_settings(data_dir)
    try:
        app_ = build_app(settings)
        with session_scope(app_.engine) as session:
            community_id = get_or_create_community(session, community, settings=settings).id
        assert community_id is not None
        matcher = app_.matcher
        if not isinstance(matcher, IndexedMatcher):
            raise fail("this deployment's matcher keeps no index", code=2)
        started = time.perf_counter()
        kinds = KINDS if kind is None else (kind,)
        if rebuild:
            for k in kinds:
                matcher.rebuild(community_id=community_id, kind=k)
        else:
            matcher.sync(community_id=community_id)
        seconds = time.perf_counter() - started
        store = matcher.store
        indexes = {k: {"items": store.size(community_id=community_id, kind=k),
                       "approximate": store.approximate(community_id=community_id, kind=k)} for k in kinds}
    except CommunityBotError as exc:
        raise fail(exc) from exc
    if as_json:
        extra = {"seconds": round(seconds, 2)} if rebuild else {}
        print_json({"community": community, "indexes": indexes, **extra})
        return
    for k, info in indexes.items():
        typer.echo(f"{k}: {info['items']} items, {'approximate (IVF)' if info['approximate'] else 'exact'}")
    if rebuild:
        typer.echo(f"Rebuilt in {seconds:.1f} s.")


@index_app.command("status")
def status(data_dir: DataDirOption = None, community: CommunityOption = DEFAULT_COMMUNITY,
           kind: KindOption = None, as_json: JsonOption = False) -> None:
    """Sync the indexes with the database and show their sizes and kind (exact or approximate)."""
    _run(data_dir, community, kind, rebuild=False, as_json=as_json)


@index_app.command("rebuild")
def rebuild(data_dir: DataDirOption = None, community: CommunityOption = DEFAULT_COMMUNITY,
            kind: KindOption = None, as_json: JsonOption = False) -> None:
    """Re-embed every item of the community from the database and write its indexes again."""
    _run(data_dir, community, kind, rebuild=True, as_json=as_json)
