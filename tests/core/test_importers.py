"""Importers: column mapping, bad rows, idempotent re-imports, iCalendar / JSON events, the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import typer
from sqlalchemy.engine import Engine
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import common
from bot.cli.importing import import_app
from bot.community import get_or_create_community
from bot.db import session_scope, upgrade_database
from bot.errors import ImportFormatError, UsageError
from bot.importers import (
    EVENT_SPEC,
    MEMBER_SPEC,
    RESOURCE_SPEC,
    ImportReport,
    import_events,
    import_members,
    import_resources,
    parse_map_options,
    resolve_mapping,
)
from bot.models import Event, Member, Resource
from bot.settings import Settings

PARIS = ZoneInfo("Europe/Paris")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def run_import(
    engine: Engine, settings: Settings, fn: Callable[..., ImportReport], **kw: Any
) -> ImportReport:
    """Run one importer in its own committed session, like the CLI does."""
    with session_scope(engine) as session:
        community = get_or_create_community(session, "default", settings=settings)
        return fn(session, community=community, **kw)


def all_rows(engine: Engine, model: Any) -> list[Any]:
    with session_scope(engine) as session:
        return list(session.exec(select(model).order_by(model.id)))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- mapping ---------------------------------------------------------------------------------------

YC_COLUMNS = ["company_id", "company_name", "short_description", "long_description", "batch", "status",
              "tags", "location", "country", "year_founded", "num_founders", "team_size", "website"]


def test_auto_detects_the_directories_organisers_start_from() -> None:
    yc = resolve_mapping(MEMBER_SPEC, columns=YC_COLUMNS)
    assert yc.describe() == {
        "name": "company_name", "bio": "short_description+long_description", "skills": "tags",
        "location": "location+country", "url": "website",
    }
    assert yc.key_columns == ("company_id",)
    assert yc.unused_columns == ("batch", "status", "year_founded", "num_founders", "team_size")

    makers = resolve_mapping(MEMBER_SPEC, columns=["maker", "city", "status", "product", "url", "pitch"])
    assert makers.describe() == {"name": "maker", "bio": "product+pitch", "location": "city", "url": "url"}
    assert makers.key_columns == ()

    credits = resolve_mapping(RESOURCE_SPEC, columns=["category", "title", "url", "description"])
    assert credits.describe() == {"title": "title", "url": "url", "description": "description",
                                  "tags": "category"}

    confs = resolve_mapping(EVENT_SPEC, columns=["name", "url", "startDate", "endDate", "city", "country"])
    assert confs.describe() == {"title": "name", "start": "startDate", "end": "endDate",
                                "place": "city+country", "link": "url"}


def test_auto_detection_ignores_case_spacing_and_reads_chinese_headers() -> None:
    mapping = resolve_mapping(MEMBER_SPEC, columns=["Full Name", "简介", "技能", "城市", "Website"])
    assert mapping.describe() == {"name": "Full Name", "bio": "简介", "skills": "技能", "location": "城市",
                                  "url": "Website"}


def test_explicit_map_overrides_and_can_leave_a_field_out() -> None:
    mapping = resolve_mapping(
        MEMBER_SPEC, columns=YC_COLUMNS,
        explicit=parse_map_options(["bio=long_description", "skills=", "name=company_name"]),
        key="company_id,batch",
    )
    assert mapping.fields["bio"] == ("long_description",)
    assert "skills" not in mapping.fields
    assert mapping.fields["location"] == ("location", "country")  # still auto-detected
    assert mapping.key_columns == ("company_id", "batch")


def test_mapping_errors_name_what_to_pass() -> None:
    with pytest.raises(ImportFormatError) as missing:
        resolve_mapping(MEMBER_SPEC, columns=["foo", "bar"], file_label="people.csv")
    assert "--map name=COLUMN" in missing.value.user_message
    assert "Available columns: foo, bar" in missing.value.user_message
    with pytest.raises(ImportFormatError, match="has no column 'nope'"):
        resolve_mapping(MEMBER_SPEC, columns=["name"], explicit={"bio": "nope"})
    with pytest.raises(UsageError, match="Unknown field 'colour'"):
        resolve_mapping(MEMBER_SPEC, columns=["name"], explicit={"colour": "name"})
    with pytest.raises(UsageError, match="FIELD=COLUMN"):
        parse_map_options(["name"])


# --- members and resources -------------------------------------------------------------------------

COMPANIES = """company_id,company_name,short_description,long_description,tags,location,country,website
1,Acme Robotics,Robots for farms,"We build robots
that pick strawberries.","['robotics', 'agtech']",Fresno,US,https://acme.example
2,,No name here,,[],,,https://noname.example
3,Beta Labs,Lab tools,Tools for labs.,['biotech'],Boston,US,https://beta.example,EXTRA
4,Gamma Pay,Payments,Checkout for shops.,"['fintech', 'payments']",,,https://gamma.example
"""


def test_members_import_maps_cleans_and_skips_bad_rows_with_line_numbers(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "companies.csv", COMPANIES)
    report = run_import(engine, settings, import_members, path=path)
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    # line 2-3 is Acme (quoted field spans two lines), 4 has no name, 5 has an extra field
    assert [(s.line, s.reason) for s in report.skipped] == [
        (4, "empty name (column company_name)"),
        (5, "has 9 fields but the header has 8"),
    ]
    acme, gamma = all_rows(engine, Member)
    assert acme.display_name == "Acme Robotics"
    assert acme.bio == "Robots for farms\nWe build robots\nthat pick strawberries."
    assert acme.skills == "robotics, agtech"
    assert acme.location == "Fresno, US"
    assert acme.url == "https://acme.example"
    assert acme.external_key == "companies:1"
    assert acme.source == "import:companies"
    assert acme.consent_suggest is True
    assert gamma.location == ""


def test_reimport_creates_nothing_and_updates_only_changed_rows(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "companies.csv", COMPANIES)
    run_import(engine, settings, import_members, path=path)
    before = {m.external_key: m.updated_at for m in all_rows(engine, Member)}

    again = run_import(engine, settings, import_members, path=path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert {m.external_key: m.updated_at for m in all_rows(engine, Member)} == before

    write(path, COMPANIES.replace("Checkout for shops.", "Checkout for small shops."))
    changed = run_import(engine, settings, import_members, path=path)
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 1)
    after = {m.external_key: m for m in all_rows(engine, Member)}
    assert len(after) == 2
    assert after["companies:4"].bio == "Payments\nCheckout for small shops."
    assert after["companies:4"].updated_at > before["companies:4"]
    assert after["companies:1"].updated_at == before["companies:1"]


def test_rows_without_id_are_keyed_by_name_and_url_and_explicit_map_joins_columns(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "makers.csv", "Who,What,Pitch,Site\n"
                 "Lin,SubtitleAI,AI 字幕生成工具,https://sub.example/\n"
                 "Wang,ShopKit,独立站模板,https://shop.example\n")
    mapping = parse_map_options(["name=Who", "bio=What+Pitch", "url=Site"])
    report = run_import(engine, settings, import_members, path=path, mapping=mapping, consent=False)
    assert report.created == 2
    assert report.mapping == {"name": "Who", "bio": "What+Pitch", "url": "Site"}
    assert report.key == "fields name+url"
    lin = all_rows(engine, Member)[0]
    assert lin.bio == "SubtitleAI\nAI 字幕生成工具"
    assert lin.external_key == "makers:lin|https://sub.example"
    assert lin.consent_suggest is False
    again = run_import(engine, settings, import_members, path=path, mapping=mapping)
    assert (again.created, again.unchanged) == (0, 2)
    assert all_rows(engine, Member)[0].consent_suggest is False  # re-import keeps the member's choice


def test_key_option_keeps_a_renamed_row_the_same(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path / "people.csv",
                 "email,name,bio\na@example.org,Ann,Hardware\nb@example.org,Bob,Legal\n")
    first = run_import(engine, settings, import_members, path=path, key="email")
    assert first.key == "column email"
    write(path, "email,name,bio\na@example.org,Ann Lee,Hardware\nb@example.org,Bob,Legal\n")
    second = run_import(engine, settings, import_members, path=path, key="email")
    assert (second.created, second.updated, second.unchanged) == (0, 1, 1)
    assert [m.display_name for m in all_rows(engine, Member)] == ["Ann Lee", "Bob"]


def test_jsonl_resources_with_lists_bad_lines_and_language_detection(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "links.jsonl", "\n".join([
        json.dumps({"id": "a", "name": "Seed guide", "link": "https://x.example/seed",
                    "tags": ["fundraising", "seed"]}),
        "{not json",
        json.dumps({"id": "b", "name": "天使轮指南", "link": "https://x.example/angel", "category": "融资"}),
        json.dumps(["not", "an", "object"]),
        "",
        json.dumps({"id": "c", "name": "", "link": "https://x.example/empty"}),
    ]) + "\n")
    report = run_import(engine, settings, import_resources, path=path)
    assert report.mapping == {"title": "name", "url": "link", "tags": "tags"}
    assert report.created == 2
    assert [s.line for s in report.skipped] == [2, 4, 6]
    assert report.skipped[0].reason.startswith("not valid JSON")
    seed, angel = all_rows(engine, Resource)
    assert (seed.title, seed.url, seed.tags, seed.language) == ("Seed guide", "https://x.example/seed",
                                                                "fundraising, seed", "en")
    assert (angel.title, angel.language, angel.external_key) == ("天使轮指南", "zh", "links:b")


def test_rows_repeating_a_key_are_merged_with_tags_united(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "tools.csv", "category,title,url,description\n"
                 "数据库,Firebase,https://firebase.example/,支持数据库\n"
                 "登录鉴权,Firebase,https://firebase.example/,另一段描述\n")
    report = run_import(engine, settings, import_resources, path=path)
    assert report.created == 1
    assert [(m.line, m.into_line) for m in report.merged] == [(3, 2)]
    (tool,) = all_rows(engine, Resource)
    assert (tool.tags, tool.description) == ("数据库, 登录鉴权", "支持数据库")


def test_unreadable_files_raise_import_format_errors(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(ImportFormatError, match="No such file"):
        run_import(engine, settings, import_members, path=tmp_path / "missing.csv")
    with pytest.raises(ImportFormatError, match="unknown file type .xlsx"):
        run_import(engine, settings, import_members, path=write(tmp_path / "a.xlsx", "x"))
    with pytest.raises(ImportFormatError, match="line 1: not valid JSON"):
        run_import(engine, settings, import_events, path=write(tmp_path / "e.json", "{oops"), tz="UTC")


# --- events ----------------------------------------------------------------------------------------

ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:floating-1
SUMMARY:Rust meetup
DTSTART:20260310T190000
DTEND:20260310T210000
LOCATION:Le Bar\\, 3 rue X\\, Toulouse
URL:https://meetup.example/1
DESCRIPTION:Talks and beer
END:VEVENT
BEGIN:VEVENT
UID:allday-1
SUMMARY:Hack day
DTSTART;VALUE=DATE:20260314
END:VEVENT
BEGIN:VEVENT
UID:utc-1
SUMMARY:Online AMA
DTSTART:20260320T170000Z
DURATION:PT1H
STATUS:CANCELLED
END:VEVENT
BEGIN:VEVENT
UID:broken-1
SUMMARY:Broken start
DTSTART:soon
END:VEVENT
BEGIN:VEVENT
UID:tz-1
SUMMARY:Shanghai demo day
DTSTART;TZID=Asia/Shanghai:20260401T140000
DTEND;VALUE=DATE-TIME;TZID=Asia/Shanghai:20260401T170000
END:VEVENT
END:VCALENDAR
"""


def test_ics_floating_all_day_utc_and_zoned_times(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path / "feed.ics", ICS)
    report = run_import(engine, settings, import_events, path=path, tz=PARIS)
    assert report.created == 4
    assert report.key == "column uid"
    assert [(s.line, s.reason.split(" (")[0]) for s in report.skipped] == [(25, "no usable start time")]
    events = {e.external_key: e for e in all_rows(engine, Event)}

    floating = events["feed:floating-1"]
    assert floating.starts_at == datetime(2026, 3, 10, 18, 0, tzinfo=UTC)  # 19:00 Paris (CET)
    assert floating.ends_at == datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
    assert (floating.title, floating.place, floating.link) == (
        "Rust meetup", "Le Bar, 3 rue X, Toulouse", "https://meetup.example/1")
    assert (floating.description, floating.timezone) == ("Talks and beer", "Europe/Paris")

    all_day = events["feed:allday-1"]
    assert all_day.starts_at == datetime(2026, 3, 13, 23, 0, tzinfo=UTC)  # 00:00 Paris
    assert all_day.starts_at.tzinfo is not None
    assert all_day.ends_at == datetime(2026, 3, 14, 23, 0, tzinfo=UTC)

    utc = events["feed:utc-1"]
    assert utc.starts_at == datetime(2026, 3, 20, 17, 0, tzinfo=UTC)
    assert utc.ends_at == datetime(2026, 3, 20, 18, 0, tzinfo=UTC)
    assert (utc.timezone, utc.status) == ("UTC", "cancelled")

    zoned = events["feed:tz-1"]
    assert zoned.starts_at == datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
    assert zoned.timezone == "Asia/Shanghai"

    again = run_import(engine, settings, import_events, path=path, tz=PARIS)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)


JSON_EVENTS = """{
  "source": "test",
  "events": [
    {"name": "Fosdem", "url": "https://fosdem.example", "startDate": "2026-01-31", "endDate": "2026-02-01",
     "city": "Brussels", "country": "Belgium"},
    {"title": "Founder breakfast", "start": "2026-05-02T08:30", "end": "2026-05-02T10:00+08:00",
     "location": "Jing'an", "capacity": "20", "id": 7, "description": "Coffee and intros"},
    {"summary": "Bad date", "start": "the day after tomorrow-ish"},
    {"title": "Backwards", "start": "2026-05-03 10:00", "end": "2026-05-03 09:00"},
    {"title": "No start"}
  ]
}
"""


def test_json_events_dates_without_zone_use_the_community_zone(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "confs.json", JSON_EVENTS)
    report = run_import(engine, settings, import_events, path=path, tz=SHANGHAI)
    assert report.created == 2
    assert [s.line for s in report.skipped] == [8, 9, 10]
    assert "is not a date" in report.skipped[0].reason
    assert "before it starts" in report.skipped[1].reason
    assert report.skipped[2].reason == "empty start (column startDate or start)"
    assert report.mapping["title"] == "title"
    assert report.alternatives == {"title": ["summary", "name"], "start": ["start"], "end": ["end"],
                                   "place": ["city+country"]}
    fosdem, breakfast = all_rows(engine, Event)
    assert fosdem.starts_at == datetime(2026, 1, 30, 16, 0, tzinfo=UTC)  # 00:00 Shanghai
    assert fosdem.ends_at == datetime(2026, 2, 1, 16, 0, tzinfo=UTC)  # end date included
    assert (fosdem.place, fosdem.link) == ("Brussels, Belgium", "https://fosdem.example")
    assert fosdem.external_key == "confs:fosdem|2026-01-30T16:00:00+00:00"
    assert breakfast.starts_at == datetime(2026, 5, 2, 0, 30, tzinfo=UTC)
    assert breakfast.ends_at == datetime(2026, 5, 2, 2, 0, tzinfo=UTC)
    assert (breakfast.capacity, breakfast.place, breakfast.external_key, breakfast.timezone) == (
        20, "Jing'an", "confs:7", "Asia/Shanghai")


def test_json_list_of_events_and_date_time_columns_in_csv(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    listed = write(tmp_path / "list.json", json.dumps([{"title": "A", "start": "2026-06-01T18:00:00Z"}]))
    assert run_import(engine, settings, import_events, path=listed, tz="UTC").created == 1
    table = write(tmp_path / "agenda.csv", "活动,日期,时间,地点\n周末黑客松,2026-06-06,09:30,杭州\n")
    report = run_import(engine, settings, import_events, path=table, tz=SHANGHAI)
    assert report.mapping == {"title": "活动", "start": "日期+时间", "place": "地点"}
    hack = all_rows(engine, Event)[-1]
    assert hack.starts_at == datetime(2026, 6, 6, 1, 30, tzinfo=UTC)
    assert hack.ends_at is None


# --- CLI -------------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> tuple[typer.Typer, list[int]]:
    """A tiny app with ``import`` registered as the main CLI does; ``after_import`` is recorded."""
    for var in ("DATABASE_URL", "COMMUNITYBOT_DATABASE_URL", "COMMUNITYBOT_DEFAULT_COMMUNITY"):
        monkeypatch.delenv(var, raising=False)
    synced: list[int] = []
    monkeypatch.setattr(common, "after_import", lambda _s, _e, community_id: synced.append(community_id),
                        raising=False)
    app = typer.Typer()
    app.add_typer(import_app, name="import")
    return app, synced


def test_cli_prints_mapping_counts_and_json(cli: tuple[typer.Typer, list[int]], tmp_path: Path) -> None:
    app, synced = cli
    path = write(tmp_path / "companies.csv", COMPANIES)
    data = str(tmp_path / "data")
    runner = CliRunner()
    human = runner.invoke(app, ["import", "members", str(path), "--data-dir", data, "--consent", "none"])
    assert human.exit_code == 0, human.output
    assert "name <- company_name" in human.stdout
    assert "bio <- short_description + long_description" in human.stdout
    assert "2 created, 0 updated, 0 unchanged, 2 skipped" in human.stdout
    assert "line 4: skipped: empty name" in human.stdout
    assert synced == [1]

    as_json = runner.invoke(app, ["import", "members", str(path), "--data-dir", data, "--json",
                                  "--map", "bio=long_description", "--map", "skills="])
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert payload["created"] == 0
    assert payload["updated"] == 2  # bio now comes from long_description only
    assert payload["skipped"] == [{"line": 4, "reason": "empty name (column company_name)"},
                                  {"line": 5, "reason": "has 9 fields but the header has 8"}]
    assert payload["mapping"]["bio"] == "long_description"
    assert "skills" not in payload["mapping"]
    assert synced == [1, 1]
    with session_scope(common.open_database(common.load_settings(Path(data)))) as session:
        acme = session.exec(select(Member).where(Member.external_key == "companies:1")).one()
        assert acme.skills == "robotics, agtech"  # a field left out of the mapping keeps its value
        assert acme.consent_suggest is False


def test_cli_cannot_map_exits_non_zero_naming_columns(
    cli: tuple[typer.Typer, list[int]], tmp_path: Path
) -> None:
    app, synced = cli
    path = write(tmp_path / "odd.csv", "who_is_it,blurb\nAnn,Hi\n")
    result = CliRunner().invoke(app, ["import", "members", str(path), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert "--map name=COLUMN" in result.stderr
    assert "Available columns: who_is_it, blurb" in result.stderr
    assert synced == []
    fixed = CliRunner().invoke(app, ["import", "members", str(path), "--data-dir", str(tmp_path / "d"),
                                     "--map", "name=who_is_it", "--map", "bio=blurb", "--json"])
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.stdout.splitlines()[-1])["created"] == 1


def test_cli_events_with_tz_and_resources(cli: tuple[typer.Typer, list[int]], tmp_path: Path) -> None:
    app, _ = cli
    data = str(tmp_path / "data")
    ics = write(tmp_path / "feed.ics", ICS)
    result = CliRunner().invoke(app, ["import", "events", str(ics), "--data-dir", data,
                                      "--tz", "Asia/Shanghai", "--json", "--community", "shanghai"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["created"] == 4
    bad_tz = CliRunner().invoke(app, ["import", "events", str(ics), "--data-dir", data, "--tz", "Mars/Base"])
    assert bad_tz.exit_code == 1
    assert "Unknown time zone" in bad_tz.stderr
    res = write(tmp_path / "credits.csv", "category,title,url,description\nCloud,Credits,https://c.example,Free\n")
    ok = CliRunner().invoke(app, ["import", "resources", str(res), "--data-dir", data])
    assert ok.exit_code == 0, ok.output
    assert "tags <- category" in ok.stdout


# --- the real directories (outside the repository) -------------------------------------------------


def test_real_files_import_with_auto_detected_mappings(
    engine: Engine, settings: Settings, shared_data: Path
) -> None:
    real = shared_data / "real"
    yc = run_import(engine, settings, import_members, path=real / "yc_companies.csv")
    assert (yc.created, yc.skipped) == (4663, [])
    assert yc.mapping["bio"] == "short_description+long_description"
    assert yc.key == "column company_id"
    makers = run_import(engine, settings, import_members, path=real / "zh_indie_makers.csv")
    assert makers.mapping == {"name": "maker", "bio": "product+pitch", "location": "city", "url": "url"}
    assert makers.created + len(makers.merged) == 1850
    credits = run_import(engine, settings, import_resources, path=real / "startup_credits.csv")
    tools = run_import(engine, settings, import_resources, path=real / "zh_indie_tools.csv")
    assert (credits.created, credits.mapping["tags"], tools.mapping["tags"]) == (47, "category", "category")
    events = real / "events"
    meetups = run_import(engine, settings, import_events, path=events / "toulouse_meetups.ics", tz=PARIS)
    confs = run_import(engine, settings, import_events, path=events / "confs_2026_general.json", tz=PARIS)
    assert (meetups.created, meetups.skipped) == (166, [])
    assert confs.mapping["place"] == "city+country"
    assert confs.created + len(confs.merged) == 46
    with session_scope(engine) as session:
        k_scale = session.exec(select(Member).where(Member.external_key == "yc_companies:29523")).one()
        assert k_scale.skills == "artificial-intelligence, machine-learning, robotics, consumer"
        assert k_scale.location == "New York, US"
        langs = {r.language for r in session.exec(select(Resource))}
        assert langs == {"en", "zh"}
    again = run_import(engine, settings, import_members, path=real / "yc_companies.csv")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4663)


# --- PostgreSQL ------------------------------------------------------------------------------------


def test_imports_on_postgresql(settings: Settings, tmp_path: Path, pg_engine: Engine) -> None:
    engine = pg_engine
    upgrade_database(engine)
    members = write(tmp_path / "companies.csv", COMPANIES)
    feed = write(tmp_path / "feed.ics", ICS)
    assert run_import(engine, settings, import_members, path=members).created == 2
    assert run_import(engine, settings, import_events, path=feed, tz=PARIS).created == 4
    again = run_import(engine, settings, import_events, path=feed, tz=PARIS)
    assert (again.created, again.unchanged) == (0, 4)
    floating = next(e for e in all_rows(engine, Event) if e.external_key == "feed:floating-1")
    assert floating.starts_at == datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
