"""The shipped sample community: importable with auto-detected mappings, bilingual, idempotent, upcoming."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.community import get_or_create_community
from bot.db import session_scope
from bot.importers import MEMBER_SPEC, RESOURCE_SPEC, read_table, resolve_mapping
from bot.language import detect_language
from bot.models import Event, Member, Resource
from bot.sample import SampleReport, load_sample_community, sample_dir
from bot.settings import Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # 17:30 in Shanghai


def load(engine: Engine, settings: Settings, now: datetime = NOW) -> SampleReport:
    with session_scope(engine) as session:
        community = get_or_create_community(session, "demo", settings=settings)
        return load_sample_community(session, community=community, tz=SHANGHAI, now=now)


def sample_folder_with_events(tmp_path: Path, events: list[dict[str, object]]) -> Path:
    """A copy of the shipped sample's members and resources, with these events.json items."""
    folder = tmp_path / "sample"
    folder.mkdir()
    for name in ("members.csv", "resources.csv"):
        shutil.copy(sample_dir() / name, folder / name)
    (folder / "events.json").write_text(json.dumps({"events": events}), encoding="utf-8")
    return folder


def test_sample_files_map_without_help() -> None:
    folder = sample_dir()
    members = resolve_mapping(MEMBER_SPEC, columns=read_table(folder / "members.csv").columns)
    assert set(members.fields) == {
        "name",
        "bio",
        "skills",
        "offers",
        "needs",
        "location",
        "languages",
        "timezone",
        "url",
    }
    assert members.key_columns == ("id",)
    resources = resolve_mapping(RESOURCE_SPEC, columns=read_table(folder / "resources.csv").columns)
    assert set(resources.fields) == {"title", "url", "description", "tags"}


def test_sample_loads_bilingual_content_once_with_upcoming_events(engine: Engine, settings: Settings) -> None:
    first = load(engine, settings)
    assert (first.members.created, first.resources.created, first.events.created) == (24, 16, 8)
    assert all(not r.skipped for r in first.reports)
    assert str(first) == "24 members, 16 resources, 8 events (48 created, 0 updated, 0 unchanged)"

    second = load(engine, settings)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 48)

    with session_scope(engine) as session:
        members = list(session.exec(select(Member)))
        resources = list(session.exec(select(Resource)))
        events = list(session.exec(select(Event)))
    languages = [detect_language(m.bio) for m in members]
    assert languages.count("zh") == 12 and languages.count("en") == 12
    assert all(m.consent_suggest and m.skills and m.offers and m.location for m in members)
    assert {r.language for r in resources} == {"en", "zh"}
    assert all(r.url.startswith("https://") for r in resources)
    assert len(events) == 8
    assert all(e.starts_at > NOW for e in events)
    assert sum(detect_language(e.title) == "zh" for e in events) == 2
    dinner = next(e for e in events if e.external_key == "sample:founder-dinner")
    # 3 days after 2 March (Shanghai), 19:00 Shanghai = 11:00 UTC, 150 minutes long
    assert dinner.starts_at == datetime(2026, 3, 5, 11, 0, tzinfo=UTC)
    assert dinner.ends_at == dinner.starts_at + timedelta(minutes=150)
    assert (dinner.timezone, dinner.capacity) == ("Asia/Shanghai", 24)
    hardware = next(m for m in members if m.external_key == "sample:m02")
    assert "seed round" in hardware.bio


def test_loading_later_moves_events_and_creates_nothing(engine: Engine, settings: Settings) -> None:
    load(engine, settings)
    later = load(engine, settings, now=NOW + timedelta(days=7))
    assert later.created == 0
    assert later.events.updated == 8
    assert later.members.unchanged == 24 and later.resources.unchanged == 16


def test_sample_events_keep_their_zone_and_date_only_ones_are_all_day(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    folder = sample_folder_with_events(
        tmp_path,
        [
            {
                "id": "dinner",
                "title": "Dinner",
                "days_from_now": 3,
                "time": "19:00",
                "duration_minutes": 60,
            },
            {"id": "hack-day", "title": "Hack day", "days_from_now": 4},
        ],
    )
    with session_scope(engine) as session:
        community = get_or_create_community(session, "demo", settings=settings)
        report = load_sample_community(session, community=community, tz=SHANGHAI, now=NOW, directory=folder)
    assert (report.events.created, report.events.skipped) == (2, [])
    with session_scope(engine) as session:
        events = {e.external_key: e for e in session.exec(select(Event))}
    dinner, hack = events["sample:dinner"], events["sample:hack-day"]
    assert (dinner.all_day, dinner.timezone) == (False, "Asia/Shanghai")
    assert dinner.starts_at == datetime(2026, 3, 5, 11, 0, tzinfo=UTC)
    assert (hack.all_day, hack.timezone) == (True, "Asia/Shanghai")
    assert hack.starts_at == datetime(2026, 3, 5, 16, 0, tzinfo=UTC)  # 6 March, 00:00 in Shanghai
    assert hack.ends_at == datetime(2026, 3, 6, 16, 0, tzinfo=UTC)  # the whole day


def test_shipped_sample_events_are_timed_in_the_community_zone(engine: Engine, settings: Settings) -> None:
    load(engine, settings)
    with session_scope(engine) as session:
        events = list(session.exec(select(Event)))
    assert len(events) == 8
    assert all(not e.all_day and e.timezone == "Asia/Shanghai" for e in events)


def test_sample_rows_with_impossible_numbers_are_skipped_not_raised(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "sample"
    folder.mkdir()
    for name in ("members.csv", "resources.csv"):
        shutil.copy(sample_dir() / name, folder / name)
    (folder / "events.json").write_text(
        json.dumps(
            {
                "events": [
                    {"id": "ok", "title": "Fine", "days_from_now": 1, "time": "19:00"},
                    {"id": "far", "title": "Far", "days_from_now": 99999999999999999999},
                    {
                        "id": "long",
                        "title": "Long",
                        "days_from_now": 1,
                        "time": "19:00",
                        "duration_minutes": 10**20,
                    },
                ]
            },
            indent=None,
        ).replace("}, {", "},\n{"),
        encoding="utf-8",
    )
    with session_scope(engine) as session:
        community = get_or_create_community(session, "demo", settings=settings)
        report = load_sample_community(session, community=community, tz=SHANGHAI, now=NOW, directory=folder)
    assert report.events.created == 1
    assert [(s.line, s.reason.split(" (")[0]) for s in report.events.skipped] == [
        (2, "bad days_from_now / time / duration_minutes"),
        (3, "bad days_from_now / time / duration_minutes"),
    ]
