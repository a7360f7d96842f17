"""The ``communitybot`` command line (typer). Heavy imports (models, FAISS) happen inside commands, so
``communitybot --help`` starts fast."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli.backup import backup_app
from bot.cli.common import (
    DEFAULT_COMMUNITY,
    CommunityOption,
    DataDirOption,
    JsonOption,
    fail,
    load_settings,
    open_database,
    print_json,
    require_data_dir,
)
from bot.cli.importing import import_app
from bot.cli.index import index_app
from bot.cli.jobs import jobs_app
from bot.cli.models import models_app
from bot.cli.nlp import nlp_app
from bot.cli.slack import slack_app
from bot.delivery import Delivery
from bot.errors import CommunityBotError
from bot.language import language_code

if TYPE_CHECKING:
    from bot.app import App
    from bot.settings import Settings

# torch's OpenMP threads busy-wait by default, which starves other processes on a 2-core machine and makes
# a single prediction 50x slower under load; this must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Our own progress bars say what is happening; the hub's "Loading weights" bar on every command is noise.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

app = typer.Typer(
    help="community-bot: a self-hosted assistant for founder communities (Slack, WeChat-style groups).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
community_app = typer.Typer(help="Per-community settings.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(models_app, name="models")
app.add_typer(index_app, name="index")
app.add_typer(nlp_app, name="nlp")
app.add_typer(db_app, name="db")
app.add_typer(community_app, name="community")
app.add_typer(slack_app, name="slack")
app.add_typer(jobs_app, name="jobs")
app.add_typer(backup_app)  # no name: `backup` and `restore` are top-level commands



def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("alembic", "sentence_transformers", "transformers", "httpx", "faiss", "jieba", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False) -> None:
    _setup_logging(verbose)


@app.command()
def demo(
    data_dir: DataDirOption = None,
    community: CommunityOption = DEFAULT_COMMUNITY,
    chat: Annotated[bool, typer.Option("--chat/--no-chat", help="Open the console chat at the end.")] = True,
) -> None:
    """Create the data directory, load the sample community, prepare the model, then open the chat."""
    from adapters.console import ConsoleAdapter
    from bot.app import build_app
    from bot.community import community_settings, get_or_create_community
    from bot.db import session_scope
    from bot.models import utcnow
    from bot.sample import load_sample_community

    settings = load_settings(data_dir)
    try:
        app_ = build_app(settings)
        with session_scope(app_.engine) as session:
            row = get_or_create_community(session, community, settings=settings)
            zone = community_settings(row, settings=settings).zone
            summary = load_sample_community(session, community=row, tz=zone, now=utcnow())
            community_id = row.id
        typer.echo(f"Sample community loaded into {settings.data_dir}: {summary}", err=True)
        app_.classifier  # noqa: B018 - prepares (trains on first run) the intent model, with a progress bar
        assert community_id is not None
        app_.matcher.sync(community_id=community_id)
    except CommunityBotError as exc:
        raise fail(exc) from exc
    if not chat:
        where = f" --data-dir {data_dir}" if data_dir else ""
        typer.echo(f"Ready. Chat with `communitybot chat{where}`, or ask once with "
                   f"`communitybot ask{where} \"who can help with an angel round?\"`.", err=True)
        return
    typer.echo(
        "Ready. Try: who can help with an angel round? · 下周有什么活动？ · /event list · /help "
        "(quit with Ctrl-D or 'quit')",
        err=True,
    )
    if chat:
        ConsoleAdapter(handle=app_.handle, community=community).chat(stdin=sys.stdin, stdout=sys.stdout)


@app.command()
def chat(data_dir: DataDirOption = None, community: CommunityOption = DEFAULT_COMMUNITY) -> None:
    """Open the console chat on an existing data directory."""
    from adapters.console import ConsoleAdapter
    from bot.app import build_app

    settings = load_settings(data_dir)
    require_data_dir(settings)
    app_ = build_app(settings)
    typer.echo("Chat with the bot (quit with Ctrl-D or 'quit').", err=True)
    ConsoleAdapter(handle=app_.handle, community=community).chat(stdin=sys.stdin, stdout=sys.stdout)


@app.command()
def run(data_dir: DataDirOption = None) -> None:
    """Run the bot on every configured platform (Slack over HTTP or Socket Mode, WeChat through a Wechaty
    puppet service gateway) until interrupted, with the scheduler (active in one process at a time)."""
    from bot import observability
    from bot.app import build_app
    from bot.cli.jobs import metrics_server_for, scheduler_for

    settings = load_settings(data_dir)
    observability.configure_logging(settings.log_format)
    slack_on = settings.slack_signing_secret is not None or settings.slack_app_token is not None
    if not slack_on and not settings.wechat_endpoint:
        raise fail(
            "no platform is configured: set COMMUNITYBOT_SLACK_SIGNING_SECRET (or SLACK_SIGNING_SECRET) and "
            "COMMUNITYBOT_SLACK_BOT_TOKEN (or SLACK_BOT_TOKEN; README, section Slack), or "
            "COMMUNITYBOT_WECHAT_ENDPOINT (README, section WeChat), or talk to the bot here with "
            "`communitybot chat`",
            code=2,
        )
    app_ = build_app(settings)
    senders: dict[str, Any] = {}
    delivery = Delivery(app_.engine, workers=settings.max_concurrent_messages)
    try:
        wechat = _wechat_adapter(settings, app_) if settings.wechat_endpoint else None
        slack = _slack_adapter(settings, app_, delivery) if slack_on else None
    except ValueError as exc:
        raise fail(str(exc), code=2) from exc
    # take the ports before the slow part: a port in use is said at once, not after the models loaded
    http = slack is not None and settings.slack_mode == "http"
    http_server = _bind_slack(settings, slack) if http else None
    metrics = metrics_server_for(settings, slack_http=http_server is not None)
    typer.echo("Loading the models and the community indexes...", err=True)
    app_.warm_up()
    # systemd and container runtimes stop with SIGTERM: stop as on Ctrl-C (queued replies are sent first)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    if wechat is not None:
        senders["wechat"] = wechat
    if slack is not None:
        senders["slack"] = slack
        # Slack messages are claimed, journalled and taken over from a dead process (bot/delivery.py)
        app_.router.delivery = delivery
        delivery.start(app_.router, {"slack": slack})
    scheduler = scheduler_for(settings, app_.engine, senders)
    scheduler.start()
    try:
        if wechat is not None and slack is None:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(wechat.run())
            return
        if wechat is not None:
            threading.Thread(target=asyncio.run, args=(wechat.run(),), name="wechat", daemon=True).start()
        if slack is not None:
            _serve_slack(settings, slack, http_server)
    finally:
        scheduler.stop()
        if metrics is not None:
            metrics.shutdown()
        delivery.stop()
        for adapter in senders.values():
            adapter.close()


def _stop_on_sigterm(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _wechat_adapter(settings: Settings, app_: App) -> Any:
    from adapters import wechat

    adapter = wechat.from_settings(settings, app_.handle, engine=app_.engine)
    typer.echo(f"WeChat: connecting to the gateway at {settings.wechat_endpoint}; stop with Ctrl-C.",
               err=True)
    return adapter


def _slack_adapter(settings: Settings, app_: App, delivery: Delivery) -> Any:
    from adapters import slack

    if settings.slack_mode == "socket" and settings.slack_app_token is None:
        raise ValueError("Socket Mode needs COMMUNITYBOT_SLACK_APP_TOKEN (an xapp- app-level token)")
    return slack.from_settings(settings, app_.handle, engine=app_.engine, delivery=delivery)


def _bind_slack(settings: Settings, adapter: Any) -> Any:
    """The Slack HTTP server bound to ``COMMUNITYBOT_SLACK_PORT`` (not serving yet).

    Raises:
        typer.Exit: the port is taken (the message says so and what to set).
    """
    from adapters import slack

    try:
        return slack.serve_http(adapter, port=settings.slack_port)
    except OSError as exc:
        message = (f"cannot listen on port {settings.slack_port} ({exc.strerror}): another program (or "
                   "another communitybot) uses it; set COMMUNITYBOT_SLACK_PORT to a free port")
        raise fail(message, code=2) from exc


def _serve_slack(settings: Settings, adapter: Any, server: Any) -> None:
    """Serve Slack (on the bound HTTP ``server``, or over Socket Mode) in this thread until interrupted."""
    if settings.slack_mode == "socket":
        assert settings.slack_app_token is not None
        typer.echo("Slack: connecting over Socket Mode; stop with Ctrl-C.", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            adapter.socket_mode_handler(settings.slack_app_token.get_secret_value()).start()
        return
    typer.echo(f"Slack: listening on :{settings.slack_port}/slack/events; stop with Ctrl-C.", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command()
def ask(
    text: Annotated[
        str, typer.Argument(help='The message, e.g. "who knows about angel rounds?" or "/event list".')
    ],
    data_dir: DataDirOption = None,
    community: CommunityOption = DEFAULT_COMMUNITY,
    json_out: JsonOption = False,
) -> None:
    """Handle one message exactly as a platform message would be, and print the reply."""
    from adapters.console import ConsoleAdapter
    from bot.app import build_app

    try:
        app_ = build_app(load_settings(data_dir))
        result = ConsoleAdapter(handle=app_.handle, community=community).run_once(text)
    except CommunityBotError as exc:
        raise fail(exc) from exc
    if json_out:
        print_json(
            {
                "intent": result.intent,
                "confidence": result.confidence,
                "language": result.language,
                "matches": [m.to_json() for m in result.matches],
                "reply": result.text,
            }
        )
    else:
        typer.echo(result.text or "(no reply)")
    if result.failed:
        raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    data_dir: DataDirOption = None,
    community: CommunityOption = DEFAULT_COMMUNITY,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="member, resource or event (repeatable).")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, max=100, help="How many results.")] = 5,
    include_past: Annotated[bool, typer.Option("--include-past", help="Also events that are over.")] = False,
    language: Annotated[
        list[str] | None,
        typer.Option("--language", help="Only what a reader of this language can read: en, zh (repeatable)."),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """List the top matches with their scores (the threshold is reported, not applied)."""
    if not query.strip():
        raise fail('give something to search for, e.g. communitybot search "angel investing"', code=2)
    from bot.app import build_app
    from bot.community import community_settings, get_or_create_community
    from bot.db import session_scope

    kinds = kind or ["member", "resource", "event"]
    unknown = [k for k in kinds if k not in ("member", "resource", "event")]
    if unknown:
        raise fail(f"unknown --kind {', '.join(unknown)}; use member, resource or event", code=2)
    settings = load_settings(data_dir)
    try:
        app_ = build_app(settings)
        with session_scope(app_.engine) as session:
            row = get_or_create_community(session, community, settings=settings)
            threshold = community_settings(row, settings=settings).match_threshold
            community_id = row.id
        assert community_id is not None
        matches = app_.matcher.search(
            community_id=community_id,
            query=query,
            kinds=kinds,  # type: ignore[arg-type]
            top_k=top,
            threshold=threshold,
            upcoming_only=not include_past,
            languages=[code for name in language or () if (code := language_code(name))] or None,
        )
    except CommunityBotError as exc:
        raise fail(exc) from exc
    if json_out:
        print_json({"matches": [m.to_json() for m in matches]})
        return
    if not matches:
        typer.echo("No matches.")
    for i, m in enumerate(matches, 1):
        flag = "  (below threshold)" if m.below_threshold else ""
        typer.echo(f"{i}. [{m.kind} #{m.id}] {m.title}  score={m.score:.3f}{flag}\n   {m.why}")


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDirOption = None) -> None:
    """Apply the database migrations (the bot also does it on start)."""
    settings = load_settings(data_dir)
    open_database(settings)
    typer.echo(f"Database is up to date: {settings.resolved_database_url().split('@')[-1]}")


@community_app.command("set")
def community_set(
    key: Annotated[str, typer.Argument(help="Setting name, e.g. timezone.")],
    value: Annotated[str, typer.Argument(help="New value, e.g. Asia/Shanghai.")],
    data_dir: DataDirOption = None,
    community: CommunityOption = DEFAULT_COMMUNITY,
) -> None:
    """Change one setting of a community (same as `/bot config KEY VALUE`)."""
    from bot.community import community_settings, get_or_create_community, set_community_setting
    from bot.db import session_scope

    settings = load_settings(data_dir)
    try:
        with session_scope(open_database(settings)) as session:
            row = get_or_create_community(session, community, settings=settings)
            current = community_settings(row, settings=settings)
            parsed = set_community_setting(row, key, value, current=current)
            session.add(row)
    except CommunityBotError as exc:
        raise fail(exc, code=2) from exc
    typer.echo(f"{community}: {key} = {parsed}")


@community_app.command("show")
def community_show(
    data_dir: DataDirOption = None,
    community: CommunityOption = DEFAULT_COMMUNITY,
    json_out: JsonOption = False,
) -> None:
    """Show a community's effective settings."""
    from bot.community import community_settings, get_or_create_community
    from bot.db import session_scope

    settings = load_settings(data_dir)
    with session_scope(open_database(settings)) as session:
        row = get_or_create_community(session, community, settings=settings)
        effective = community_settings(row, settings=settings).model_dump()
    if json_out:
        print_json({"community": community, "settings": effective})
    else:
        for key, value in effective.items():
            shown = "auto (the base model's calibrated default)" if value is None else value
            typer.echo(f"{key}: {shown}")


def main() -> None:
    """Console-script entry point."""
    app()
