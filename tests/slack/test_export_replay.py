"""The real anonymised Slack export replayed, message by message and in order, as signed Events API
requests to the adapter's HTTP endpoint; then imported with ``communitybot import slack-export``."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app as cli
from tests.slack.conftest import TEAM, SlackBot
from tests.slack.fake_slack import event_callback

EXPORT = Path(
    os.environ.get("COMMUNITYBOT_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
) / ("real/slack_export")


def _replayed_events(root: Path) -> list[dict[str, Any]]:
    """Every message of the export as the ``message`` event Slack sent, in channel and file order.

    The export's timestamps were anonymised upstream (``"[phone]"``); such a message gets a stand-in ``ts``
    from its file's date and its position, so each keeps a distinct de-duplication key.
    """
    channels = {c["name"]: c["id"] for c in json.loads((root / "channels.json").read_text(encoding="utf-8"))}
    events = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for day_file in sorted(folder.glob("*.json")):
            for i, message in enumerate(json.loads(day_file.read_text(encoding="utf-8"))):
                event = {k: v for k, v in message.items() if k not in ("replies", "reply_users", "blocks")}
                event["channel"] = channels.get(folder.name, f"C_{folder.name}")
                event["channel_type"] = "channel"
                if not str(event.get("ts", "")).replace(".", "").isdigit():
                    day = int(day_file.stem.replace("-", ""))
                    event["ts"] = f"{day}{i:06d}.000100"
                    event.pop("thread_ts", None)
                events.append(event)
    return events


@pytest.mark.skipif(not (EXPORT / "users.json").is_file(), reason=f"the real Slack export is not at {EXPORT}")
def test_real_export_replay_answers_nothing_unaddressed_and_imports_members_and_threads(
    make_bot: Callable[..., SlackBot],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    bot = make_bot()
    events = _replayed_events(EXPORT)
    assert len(events) == 446
    caplog.set_level(logging.WARNING)
    statuses = [
        bot.event(event_callback(TEAM, e, event_id=f"EvReplay{i:04d}"))[0] for i, e in enumerate(events)
    ]
    assert statuses == [200] * len(events)
    bot.adapter.outbox.drain(5)
    # no message in the export addresses this bot (their mentions are of members), so: no reply at all
    assert bot.fake.posts() == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    imported = CliRunner().invoke(
        cli, ["import", "slack-export", str(EXPORT), "--data-dir", str(tmp_path / "imported"), "--json"]
    )
    assert imported.exit_code == 0, imported.output
    report = json.loads(imported.stdout.strip().splitlines()[-1])
    assert report["members"] == {"created": 51, "updated": 0, "unchanged": 0, "skipped": 20}
    assert report["resources"]["created"] == 49  # Q&A threads answered by someone other than the asker
