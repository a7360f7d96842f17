"""The shipped sample community: importable with auto-detected mappings, bilingual, idempotent, upcoming."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


def test_sample_files_map_without_help() -> None:
    folder = sample_dir()
    members = resolve_mapping(MEMBER_SPEC, columns=read_table(folder / "members.csv").columns)
    assert set(members.fields) == {"name", "bio", "skills", "offers", "needs", "location", "languages",
                                   "timezone", "url"}
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
