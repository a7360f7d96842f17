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
from bot.commands import event as event_commands
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
from bot.importers.mapping import MAX_CAPACITY
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
    assert (floating.description, floating.timezone, floating.all_day) == ("Talks and beer", "Europe/Paris",
                                                                           False)

    all_day = events["feed:allday-1"]
    assert all_day.starts_at == datetime(2026, 3, 13, 23, 0, tzinfo=UTC)  # 00:00 Paris
    assert all_day.starts_at.tzinfo is not None
    assert all_day.ends_at == datetime(2026, 3, 14, 23, 0, tzinfo=UTC)
    assert (all_day.all_day, all_day.timezone) == (True, "Europe/Paris")  # VALUE=DATE, read in --tz

    utc = events["feed:utc-1"]
    assert utc.starts_at == datetime(2026, 3, 20, 17, 0, tzinfo=UTC)
    assert utc.ends_at == datetime(2026, 3, 20, 18, 0, tzinfo=UTC)
    # a UTC stamp names an instant, not a place: the event is shown in the zone it was read in
    assert (utc.timezone, utc.status, utc.all_day) == ("Europe/Paris", "cancelled", False)

    zoned = events["feed:tz-1"]
    assert zoned.starts_at == datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
    assert (zoned.timezone, zoned.all_day) == ("Asia/Shanghai", False)  # the TZID the feed gives

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


# --- numbers, all-day events and the zone of imported events --------------------------------------


def test_event_capacity_out_of_range_skips_the_row_and_zero_means_no_limit(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "caps.json", json.dumps([
        {"id": 1, "title": "Huge", "start": "2027-05-10T18:00", "capacity": "99999999999999999999"},
        {"id": 2, "title": "Negative", "start": "2027-05-10T18:00", "capacity": -5},
        {"id": 3, "title": "Endless", "start": "2027-05-10T18:00", "capacity": "1e400"},
        {"id": 4, "title": "Unlimited", "start": "2027-05-10T18:00", "capacity": 0},
        {"id": 5, "title": "Stadium", "start": "2027-05-10T18:00", "capacity": 100000},
        {"id": 6, "title": "Small", "start": "2027-05-10T18:00", "capacity": "12"},
    ], indent=1))
    report = run_import(engine, settings, import_events, path=path, tz=SHANGHAI)
    assert [(s.line, s.reason) for s in report.skipped] == [
        (2, "capacity '99999999999999999999' is out of range: give 1 to 100000 (or leave it empty for no "
            "limit)"),
        (8, "capacity '-5' is out of range: give 1 to 100000 (or leave it empty for no limit)"),
        (14, "capacity '1e400' is not a whole number"),
    ]
    assert [(e.title, e.capacity) for e in all_rows(engine, Event)] == [
        ("Unlimited", None), ("Stadium", 100_000), ("Small", 12)]
    capacity = EVENT_SPEC.field("capacity")
    assert capacity is not None and capacity.maximum == MAX_CAPACITY == event_commands.MAX_CAPACITY


def test_date_only_starts_are_all_day_events_in_the_zone_they_were_read_in(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    items = [
        {"id": "iso", "name": "ISO day", "startDate": "2027-05-10"},
        {"id": "words", "name": "Words day", "startDate": "10 May 2027"},
        {"id": "timed", "name": "Evening", "startDate": "10 May 2027 7pm"},
        {"id": "midnight", "name": "Midnight", "startDate": "2027-05-10T00:00"},
        {"id": "utc", "name": "Online", "startDate": "2027-05-10T10:00:00Z"},
        {"id": "offset", "name": "Offset", "startDate": "2027-05-10T10:00:00+02:00"},
        {"id": "month", "name": "Some day in May", "startDate": "May 2027"},
    ]
    path = write(tmp_path / "days.json", '{"events": [\n' + ",\n".join(map(json.dumps, items)) + "\n]}")
    report = run_import(engine, settings, import_events, path=path, tz=SHANGHAI)
    assert [(s.line, s.reason) for s in report.skipped] == [
        (8, "'May 2027' is not a whole date (give the day and the month)")]
    events = {e.external_key: e for e in all_rows(engine, Event)}
    got = {key.split(":")[1]: (e.starts_at, e.all_day, e.timezone) for key, e in events.items()}
    assert got == {
        "iso": (datetime(2027, 5, 9, 16, 0, tzinfo=UTC), True, "Asia/Shanghai"),
        "words": (datetime(2027, 5, 9, 16, 0, tzinfo=UTC), True, "Asia/Shanghai"),
        "timed": (datetime(2027, 5, 10, 11, 0, tzinfo=UTC), False, "Asia/Shanghai"),
        "midnight": (datetime(2027, 5, 9, 16, 0, tzinfo=UTC), False, "Asia/Shanghai"),
        "utc": (datetime(2027, 5, 10, 10, 0, tzinfo=UTC), False, "Asia/Shanghai"),
        "offset": (datetime(2027, 5, 10, 8, 0, tzinfo=UTC), False, "Asia/Shanghai"),
    }
    assert events["days:words"].ends_at == datetime(2027, 5, 10, 16, 0, tzinfo=UTC)  # the whole day

    table = write(tmp_path / "agenda.csv", "title,date,time\nFair,2027-06-06,\nTalk,2027-06-07,09:30\n")
    run_import(engine, settings, import_events, path=table, tz=PARIS)
    fair, talk = all_rows(engine, Event)[-2:]
    assert (fair.all_day, fair.timezone, fair.starts_at) == (True, "Europe/Paris",
                                                             datetime(2027, 6, 5, 22, 0, tzinfo=UTC))
    assert (talk.all_day, talk.timezone) == (False, "Europe/Paris")


def test_json_date_only_events_are_all_day(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path / "confs.json", JSON_EVENTS)
    run_import(engine, settings, import_events, path=path, tz=SHANGHAI)
    fosdem, breakfast = all_rows(engine, Event)
    assert (fosdem.all_day, fosdem.timezone) == (True, "Asia/Shanghai")
    assert (breakfast.all_day, breakfast.timezone) == (False, "Asia/Shanghai")


# --- broken and empty iCalendar feeds --------------------------------------------------------------

ICS_HEAD = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n"


def vevent(uid: str, day: int, *, end: bool = True) -> str:
    return (f"BEGIN:VEVENT\nUID:{uid}\nSUMMARY:Event {uid}\nDTSTART:202705{day:02d}T180000\n"
            + ("END:VEVENT\n" if end else ""))


def test_truncated_ics_keeps_the_complete_events_and_reports_the_broken_tail(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    text = ICS_HEAD + vevent("a", 10) + vevent("b", 11) + vevent("c", 12, end=False)
    path = write(tmp_path / "cut.ics", text)
    report = run_import(engine, settings, import_events, path=path, tz=PARIS)
    assert report.created == 2
    assert [(s.line, s.reason) for s in report.skipped] == [
        (14, "incomplete event: the file ends at line 17 before END:VEVENT (is it truncated?), so lines "
             "14–17 were not imported")]
    assert [(w.line, w.message) for w in report.warnings] == [
        (1, "the VCALENDAR begun here is never closed: the file ends at line 17 without END:VCALENDAR "
            "(is it truncated?); the complete events before that were read")]
    assert [e.title for e in all_rows(engine, Event)] == ["Event a", "Event b"]
    lines = report.summary_lines()
    assert "Events: 2 created, 0 updated, 0 unchanged, 1 skipped, 1 warning." in lines
    assert "  line 14: skipped: incomplete event: the file ends at line 17 before END:VEVENT (is it " \
           "truncated?), so lines 14–17 were not imported" in lines
    assert report.to_dict()["warnings"] == [{"line": 1, "message": report.warnings[0].message}]


def test_ics_without_its_end_vcalendar_only_warns(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path / "open.ics", ICS_HEAD + vevent("a", 10) + vevent("b", 11))
    report = run_import(engine, settings, import_events, path=path, tz=PARIS)
    assert (report.created, report.skipped) == (2, [])
    assert [w.line for w in report.warnings] == [1]


@pytest.mark.parametrize(("body", "skipped"), [
    # END:VCALENDAR before the event's END:VEVENT: icalendar alone drops the whole calendar
    (vevent("a", 10) + vevent("b", 11, end=False) + "END:VCALENDAR\n",
     [(9, "incomplete event: END:VCALENDAR on line 13 comes before its END:VEVENT, so lines 9–12 were not "
          "imported")]),
    # two feeds pasted together: a VEVENT begins inside one that never ended
    (vevent("a", 10, end=False) + vevent("b", 11) + "END:VCALENDAR\n",
     [(4, "incomplete event: BEGIN:VEVENT on line 8 comes before its END:VEVENT, so lines 4–7 were not "
          "imported")]),
])
def test_ics_with_an_unclosed_event_in_the_middle_keeps_the_others(
    engine: Engine, settings: Settings, tmp_path: Path, body: str, skipped: list[tuple[int, str]]
) -> None:
    path = write(tmp_path / "mid.ics", ICS_HEAD + body)
    report = run_import(engine, settings, import_events, path=path, tz=PARIS)
    assert report.created == 1
    assert [(s.line, s.reason) for s in report.skipped] == skipped
    assert report.warnings == []


def test_ics_stray_end_line_is_ignored_with_a_warning(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "stray.ics", ICS_HEAD + vevent("a", 10) + "END:VALARM\n" + vevent("b", 11)
                 + "END:VCALENDAR\n")
    report = run_import(engine, settings, import_events, path=path, tz=PARIS)
    assert report.created == 2
    assert [(w.line, w.message) for w in report.warnings] == [
        (9, "END:VALARM without a BEGIN:VALARM before it; line ignored")]


@pytest.mark.parametrize(("text", "message"), [
    (ICS_HEAD + "END:VCALENDAR\n", "No events found in feed.ics: it has no BEGIN:VEVENT."),
    (ICS_HEAD, "No events found in feed.ics: it has no BEGIN:VEVENT."),
    ("SUMMARY:not a calendar\n", "feed.ics is not an iCalendar file: it has no BEGIN:VCALENDAR line."),
    ("", "feed.ics is not an iCalendar file"),
])
def test_ics_without_events_fails_clearly(
    engine: Engine, settings: Settings, tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ImportFormatError) as caught:
        run_import(engine, settings, import_events, path=write(tmp_path / "feed.ics", text), tz=PARIS)
    assert message in caught.value.user_message


def test_cli_truncated_and_empty_ics(cli: tuple[typer.Typer, list[int]], tmp_path: Path) -> None:
    app, _ = cli
    data = str(tmp_path / "data")
    cut = write(tmp_path / "cut.ics", ICS_HEAD + vevent("a", 10) + vevent("b", 11, end=False))
    result = CliRunner().invoke(app, ["import", "events", str(cut), "--data-dir", data])
    assert result.exit_code == 0, result.output
    assert "Events: 1 created, 0 updated, 0 unchanged, 1 skipped, 1 warning." in result.stdout
    assert "line 9: skipped: incomplete event: the file ends at line 12 before END:VEVENT" in result.stdout
    assert "line 1: warning: the VCALENDAR begun here is never closed" in result.stdout
    empty = write(tmp_path / "empty.ics", ICS_HEAD + "END:VCALENDAR\n")
    failed = CliRunner().invoke(app, ["import", "events", str(empty), "--data-dir", data])
    assert failed.exit_code == 1
    assert "No events found in empty.ics" in failed.stderr


# --- CSV quotes --------------------------------------------------------------------------------------

PEOPLE = "name,bio,url\nAnn,Hardware,https://ann.example\nBob,Legal,https://bob.example\n"


def test_csv_unclosed_quote_names_its_line_and_the_lines_it_swallowed(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "people.csv", PEOPLE + 'Cat,"Unclosed quote,https://cat.example\n'
                 "Dan,Design,https://dan.example\nEve,Ops,https://eve.example\n")
    report = run_import(engine, settings, import_members, path=path)
    assert [(s.line, s.reason) for s in report.skipped] == [
        (4, "the quote opened on line 4 is never closed, so lines 4–6 were read as one row and not imported; "
            "close the quote (or remove it) and import again")]
    assert [m.display_name for m in all_rows(engine, Member)] == ["Ann", "Bob"]


def test_csv_unclosed_quote_is_reported_even_when_the_field_count_fits(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "people.csv", PEOPLE + 'Cat,Ops,"https://cat.example\nDan,Design,x\n')
    report = run_import(engine, settings, import_members, path=path)
    assert [(s.line, s.reason.split(",")[0]) for s in report.skipped] == [
        (4, "the quote opened on line 4 is never closed")]
    assert "lines 4–5" in report.skipped[0].reason
    assert report.created == 2


def test_csv_quote_closed_by_a_later_lines_quote_says_which_lines_it_swallowed(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    # the csv module reads lines 4-6 as one row of 3 fields: Cat's bio would silently hold Dan and Eve
    path = write(tmp_path / "people.csv", PEOPLE + 'Cat,"Forgot to close,https://cat.example\n'
                 'Dan,Design,https://dan.example\nEve,"Ops",https://eve.example\n'
                 'Fay,"Multi\nline bio",https://fay.example\n'
                 'Gus,"Two\nlines",https://gus.example,extra\n')
    report = run_import(engine, settings, import_members, path=path)
    assert [(s.line, s.reason) for s in report.skipped] == [
        (4, "the quote opened on line 4 is closed on line 6 in the middle of a value, so lines 4–6 were read "
            "as one row and not imported; is a closing quote missing on line 4?"),
        (9, "has 4 fields but the header has 3; the quoted value opened on line 9 runs to line 10, so lines "
            "9–10 were read as one row (a missing or extra quote?)"),
    ]
    assert [m.display_name for m in all_rows(engine, Member)] == ["Ann", "Bob", "Fay"]
    assert all_rows(engine, Member)[-1].bio == "Multi\nline bio"  # a real multi-line value is fine


def test_csv_unclosed_quote_past_the_field_limit_names_the_line(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    rest = "".join(f"P{i},Bio {i},https://p{i}.example\n" for i in range(8000))  # > 131072 characters
    path = write(tmp_path / "big.csv", PEOPLE + 'Cat,"Unclosed,https://cat.example\n' + rest)
    with pytest.raises(ImportFormatError) as caught:
        run_import(engine, settings, import_members, path=path)
    message = caught.value.user_message
    assert message.startswith("big.csv, line 4: a quote opened here is never closed, so the rest of the file "
                              "(lines 4–8004) reads as one value")


# --- links -------------------------------------------------------------------------------------------


def test_invalid_urls_are_dropped_with_a_warning_and_the_row_is_kept(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "people.csv", "id,name,url\n"
                 "1,Ann,not a url\n"
                 "2,Bob,www.bob.example\n"
                 "3,Cat,https://\n"
                 "4,Dan,\"https://dan.example, http://www.dan-old.example\"\n"
                 "5,Eve,https://eve.example (main site)\n"
                 "6,Fay,mailto:fay@example.org\n"
                 "7,Gus,HTTPS://Gus.example/Path?q=1\n")
    report = run_import(engine, settings, import_members, path=path)
    assert (report.created, report.skipped) == (7, [])
    assert [(w.line, w.message) for w in report.warnings] == [
        (2, "url 'not a url' is not a link (https://... or www....); left out"),
        (5, "url: 2 links given, kept the first; left out http://www.dan-old.example"),
        (6, "url 'https://eve.example (main site)': kept the link, left out '(main site)'"),
        (7, "url 'mailto:fay@example.org' is not a link (https://... or www....); left out"),
    ]
    assert [(m.display_name, m.url) for m in all_rows(engine, Member)] == [
        ("Ann", ""), ("Bob", "https://www.bob.example"), ("Cat", ""), ("Dan", "https://dan.example"),
        ("Eve", "https://eve.example"), ("Fay", ""), ("Gus", "HTTPS://Gus.example/Path?q=1")]
    assert "  line 2: warning: url 'not a url' is not a link (https://... or www....); left out" in \
        report.summary_lines()
    assert report.to_dict()["warnings"][0] == {"line": 2, "message": report.warnings[0].message}


def test_resource_and_event_links_follow_the_same_rule(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    links = write(tmp_path / "links.csv", "title,url\nGuide,no link here\nTool,www.tool.example\n")
    report = run_import(engine, settings, import_resources, path=links)
    assert [(w.line, w.message.split(" is ")[0]) for w in report.warnings] == [(2, "url 'no link here'")]
    assert [(r.title, r.url) for r in all_rows(engine, Resource)] == [("Guide", ""),
                                                                      ("Tool", "https://www.tool.example")]
    feed = write(tmp_path / "feed.json", json.dumps([{"title": "Meetup", "start": "2027-05-10T18:00",
                                                      "url": "see the website"}]))
    events = run_import(engine, settings, import_events, path=feed, tz=PARIS)
    assert [w.message for w in events.warnings] == [
        "link 'see the website' is not a link (https://... or www....); left out"]
    assert all_rows(engine, Event)[0].link == ""


# --- messages ----------------------------------------------------------------------------------------


def test_map_and_key_errors_name_the_option_as_typed() -> None:
    with pytest.raises(ImportFormatError) as caught:
        resolve_mapping(MEMBER_SPEC, columns=["name", "bio"], explicit={"name": "nope"}, file_label="p.csv")
    assert caught.value.user_message == (
        "--map name=nope: p.csv has no column 'nope'. Available columns: name, bio.")
    with pytest.raises(ImportFormatError, match=r"^--map bio=bio\+nope: p.csv has no column 'nope'\."):
        resolve_mapping(MEMBER_SPEC, columns=["name", "bio"], explicit={"bio": "bio+nope"},
                        file_label="p.csv")
    with pytest.raises(ImportFormatError, match=r"^--key id,nope: p.csv has no column 'id'\."):
        resolve_mapping(MEMBER_SPEC, columns=["name", "bio"], key="id,nope", file_label="p.csv")
    with pytest.raises(ImportFormatError, match=r"^--map key=nope: p.csv has no column 'nope'\."):
        resolve_mapping(MEMBER_SPEC, columns=["name", "bio"], explicit={"key": "nope"}, file_label="p.csv")


@pytest.mark.parametrize(("name", "text", "message"), [
    ("scalars.json", '[1, 2, "three"]',
     'scalars.json: the items of the list are not JSON objects (found a number, a string), so there is '
     'nothing to import. Each one must be an object with named fields, e.g. {"name": "Ann Lee", '
     '"bio": "..."}.'),
    ("nested.json", '{"members": [[1], [2]]}', "nested.json: the items of the list are not JSON objects "
                                               "(found a list)"),
    ("lines.jsonl", '1\n"two"\nnull\n', "lines.jsonl: the lines are not JSON objects (found a number, a "
                                        "string, null)"),
    ("empty.json", "[]", "No members found in empty.json: its list is empty."),
    ("header.csv", "name,bio\n", "No members found in header.csv: it has a header line but no rows."),
    ("number.json", "42", "number.json: expected a list of objects, found a number."),
])
def test_files_without_objects_or_rows_say_so(
    engine: Engine, settings: Settings, tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(ImportFormatError) as caught:
        run_import(engine, settings, import_members, path=write(tmp_path / name, text))
    assert caught.value.user_message == message or message in caught.value.user_message
    assert "Available columns: (none)" not in caught.value.user_message


@pytest.mark.parametrize(("name", "data", "message"), [
    ("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "Cannot import photo.csv: it is a PNG image, not a "
                                                          "text file. Use .csv, .tsv, .jsonl, .json or .ics"),
    ("scan.json", b"%PDF-1.7\n", "Cannot import scan.json: it is a PDF document, not a text file."),
    ("book.csv", b"PK\x03\x04\x14\x00", "it is a ZIP archive (an Excel .xlsx or Numbers file is one: export "
                                        "it as CSV UTF-8)"),
    ("old.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "it is an old Excel/Word file"),
    ("wide.csv", "name,bio\nAnn,hi\n".encode("utf-16-le"),
     "Cannot import wide.csv: it looks like UTF-16 text without a byte-order mark, not UTF-8 text."),
    ("blob.csv", b"name\x00" + bytes(range(1, 250)), "it contains binary data"),
    ("people.yaml", b"- name: Ann\n", "Cannot import people.yaml: unknown file type .yaml. Use .csv, .tsv, "
                                      ".jsonl, .json or .ics"),
    ("photo.png", b"\x89PNG\r\n\x1a\n", "Cannot import photo.png: unknown file type .png."),
    ("latin1.csv", "name\nJosé\n".encode("latin-1") + b"\x81\xff", "neither UTF-8 nor GB18030"),
])
def test_unsupported_files_say_what_they_are_before_any_encoding_talk(
    engine: Engine, settings: Settings, tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ImportFormatError) as caught:
        run_import(engine, settings, import_members, path=tmp_path / name)
    assert message in caught.value.user_message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_text_with_a_byte_order_mark_is_read(
    engine: Engine, settings: Settings, tmp_path: Path, encoding: str
) -> None:
    data = "name\tbio\nAnn\t硬件\n".encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    path = tmp_path / "unicode.txt"
    path.write_bytes(data)
    report = run_import(engine, settings, import_members, path=path)
    assert report.created == 1
    assert [(m.display_name, m.bio) for m in all_rows(engine, Member)] == [("Ann", "硬件")]


def test_an_events_feed_imported_as_members_points_at_import_events(
    engine: Engine, settings: Settings, tmp_path: Path, cli: tuple[typer.Typer, list[int]]
) -> None:
    feed = write(tmp_path / "feed.ics", ICS)
    for importer, kind in ((import_members, "members"), (import_resources, "resources")):
        with pytest.raises(ImportFormatError) as caught:
            run_import(engine, settings, importer, path=feed)
        assert caught.value.user_message == (
            f"feed.ics looks like an events file (iCalendar), not a list of {kind}: "
            "use `communitybot import events feed.ics`.")
    pasted = write(tmp_path / "calendar.txt", ICS)  # a feed saved with another extension
    with pytest.raises(ImportFormatError, match="use `communitybot import events calendar.txt`"):
        run_import(engine, settings, import_members, path=pasted)
    assert run_import(engine, settings, import_events, path=pasted, tz=PARIS).created == 4
    app, _ = cli
    result = CliRunner().invoke(app, ["import", "members", str(feed), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert "use `communitybot import events feed.ics`" in result.stderr


def test_items_sharing_a_line_are_reported_by_item(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "one.json", json.dumps([
        {"id": 1, "name": "Ann", "url": "nope"}, {"id": 2, "name": ""}, 3, {"id": 1, "name": "Ann"},
    ]))
    report = run_import(engine, settings, import_members, path=path)
    assert [(s.line, s.item, s.reason) for s in report.skipped] == [
        (1, 2, "empty name (column name)"), (1, 3, "expected an object, found a number")]
    assert [(m.line, m.item, m.into_line, m.into_item) for m in report.merged] == [(1, 4, 1, 1)]
    assert [(w.line, w.item) for w in report.warnings] == [(1, 1)]
    lines = report.summary_lines()
    assert "  line 1, item 2: skipped: empty name (column name)" in lines
    assert "  line 1, item 3: skipped: expected an object, found a number" in lines
    assert "  line 1, item 4: same key as line 1, item 1, merged into it" in lines
    payload = report.to_dict()
    assert payload["skipped"][0] == {"line": 1, "item": 2, "reason": "empty name (column name)"}
    assert payload["merged"] == [{"line": 1, "into_line": 1, "item": 4, "into_item": 1}]

    spread = write(tmp_path / "spread.json", json.dumps([{"name": "A"}, {"name": ""}], indent=1))
    again = run_import(engine, settings, import_members, path=spread)
    assert [(s.line, s.item) for s in again.skipped] == [(5, None)]  # one item per line: the line says it
    assert again.to_dict()["skipped"] == [{"line": 5, "reason": "empty name (column name)"}]


def test_dates_beyond_what_utc_can_store_skip_the_row(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path / "far.json", json.dumps([
        {"title": "End of time", "start": "9999-12-31"},  # an all-day event ends on 10000-01-01
        {"title": "Late", "start": "9999-12-31T20:00"},  # 01:00 UTC in the year 10000
        {"title": "Early", "start": "0001-01-01T01:00"},
        {"title": "Fine", "start": "9999-12-30T10:00"},
    ]))  # one line: rows are told apart by item
    report = run_import(engine, settings, import_events, path=path, tz=ZoneInfo("America/New_York"))
    assert [(s.item, s.reason) for s in report.skipped] == [
        (1, "a date is out of range (date value out of range): give one between the years 1 and 9999"),
        (2, "a date is out of range (date value out of range): give one between the years 1 and 9999"),
    ]
    assert [e.title for e in all_rows(engine, Event)] == ["Early", "Fine"]
    east = run_import(engine, settings, import_events, path=path, tz=SHANGHAI, source="far_east")
    assert [s.item for s in east.skipped] == [1, 3]  # 0001-01-01 01:00 in Shanghai is before year 1 in UTC


@pytest.mark.parametrize(("tz", "message"), [
    ("asia/shanghai", "Unknown time zone 'asia/shanghai'; did you mean Asia/Shanghai?"),
    ("Mars/Base", "Unknown time zone 'Mars/Base'; use an IANA name like Asia/Shanghai."),
])
def test_events_import_with_a_misspelt_zone_name_suggests_one(
    engine: Engine, settings: Settings, tmp_path: Path, tz: str, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        run_import(engine, settings, import_events, path=write(tmp_path / "feed.ics", ICS), tz=tz)
    assert caught.value.user_message == message
    assert all_rows(engine, Event) == []
