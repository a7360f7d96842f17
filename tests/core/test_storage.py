"""Storage: migrations on SQLite and PostgreSQL, aware datetimes, constraints, SQLite WAL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.db import create_db_engine, session_scope, upgrade_database
from bot.models import Community, Event, Member, MessageLog, Rsvp


def _exercise(engine: Engine) -> None:
    upgrade_database(engine)
    upgrade_database(engine)  # idempotent: the app upgrades on every start
    shanghai = timezone(timedelta(hours=8))
    with session_scope(engine) as s:
        c = Community(name="c1")
        s.add(c)
        s.flush()
        assert c.id is not None
        m = Member(community_id=c.id, display_name="Ann")
        e = Event(community_id=c.id, title="Meetup", starts_at=datetime(2027, 5, 10, 18, 0, tzinfo=shanghai))
        s.add_all([m, e])
        s.flush()
        assert m.id is not None and e.id is not None
        s.add(Rsvp(event_id=e.id, member_id=m.id))
        event_id, member_id = e.id, m.id
    with session_scope(engine) as s:
        stored = s.get(Event, event_id)
        assert stored is not None
        assert stored.starts_at == datetime(2027, 5, 10, 10, 0, tzinfo=UTC)
        assert stored.starts_at.tzinfo is not None
    with pytest.raises(IntegrityError), session_scope(engine) as s:
        s.add(Rsvp(event_id=event_id, member_id=member_id, status="maybe"))
    with session_scope(engine) as s:
        s.add(MessageLog(community_id=stored.community_id, platform="slack", platform_key="slack:C:1"))
    with pytest.raises(IntegrityError), session_scope(engine) as s:
        s.add(MessageLog(community_id=stored.community_id, platform="slack", platform_key="slack:C:1"))
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0009"  # the newest revision (tests/production/test_migrations.py checks every step)
    _check_match_version_triggers(engine, community_id=stored.community_id, member_id=member_id)


def _counters(engine: Engine) -> dict[tuple[int, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT community_id, kind, version FROM match_version")).all()
    return {(int(c), str(k)): int(v) for c, k, v in rows}


def _check_match_version_triggers(engine: Engine, *, community_id: int, member_id: int) -> None:
    """Every write to a matchable table bumps its (community, kind) counter, in SQL, whoever writes."""
    before = _counters(engine)
    assert before[(community_id, "member")] >= 1 and before[(community_id, "event")] >= 1
    with engine.begin() as conn:  # plain SQL, as another process or a console would write
        conn.execute(sa.text("UPDATE member SET consent_suggest = false WHERE id = :i"), {"i": member_id})
        conn.execute(sa.text("INSERT INTO resource (community_id, title, url, description, tags, source, "
                             "language, created_at, updated_at) "
                             "VALUES (:c, 'Guide', '', '', '', '', '', :t, :t)"),
                     {"c": community_id, "t": datetime(2026, 1, 1, tzinfo=UTC)})
    after = _counters(engine)
    assert after[(community_id, "member")] > before[(community_id, "member")]
    assert after[(community_id, "resource")] > before.get((community_id, "resource"), 0)
    assert after[(community_id, "event")] == before[(community_id, "event")]  # untouched kind
    with engine.begin() as conn:
        other = conn.execute(sa.text("INSERT INTO community (name, settings, created_at) "
                                     "VALUES ('other', '{}', :t) RETURNING id"),
                             {"t": datetime(2026, 1, 1, tzinfo=UTC)}).scalar_one()
        conn.execute(sa.text("UPDATE resource SET community_id = :o WHERE community_id = :c"),
                     {"o": other, "c": community_id})
        conn.execute(sa.text("DELETE FROM resource WHERE community_id = :o"), {"o": other})
    moved = _counters(engine)
    assert moved[(community_id, "resource")] > after[(community_id, "resource")]  # moved out
    assert moved[(other, "resource")] >= 2  # moved in, then deleted


def test_sqlite_schema_constraints_and_wal(tmp_path: object) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path}/bot.sqlite3", busy_timeout_ms=1234)
    _exercise(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar_one() == 1234


def test_postgres_schema_and_constraints(pg_engine: Engine) -> None:
    _exercise(pg_engine)


def test_naive_datetime_is_refused(engine: Engine) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), session_scope(engine) as s:
        c = Community(name="c2")
        s.add(c)
        s.flush()
        assert c.id is not None
        s.add(Event(community_id=c.id, title="x", starts_at=datetime(2027, 1, 1)))
        s.flush()


def test_migrations_match_the_models_and_upgrade_from_every_revision(tmp_path: object) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    from bot.db import alembic_config

    revisions = [
        r.revision
        for r in ScriptDirectory.from_config(alembic_config(create_db_engine("sqlite://"))).walk_revisions()
    ][::-1]
    assert revisions[0] == "0001"
    for start in revisions:
        engine = create_db_engine(f"sqlite:///{tmp_path}/from_{start}.sqlite3")
        upgrade_database(engine, start)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO community (name, settings, created_at) "
                    "VALUES ('kept', '{}', '2026-01-01 00:00:00')"
                )
            )
        upgrade_database(engine)
        command.check(alembic_config(engine))  # raises if the models and the migrations disagree
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM community")).scalar_one() == "kept"


def test_get_or_insert_returns_the_row_a_concurrent_writer_inserted_first(tmp_path: object) -> None:
    """The race as the losing writer sees it: its read found nothing, the other writer committed the same
    unique row before its insert. The insert is rolled back to its savepoint and the winner's row returned;
    the rest of the transaction is kept."""
    from sqlmodel import select

    from bot.db import get_or_insert

    engine = create_db_engine(f"sqlite:///{tmp_path}/race.sqlite3")
    upgrade_database(engine)
    with session_scope(engine) as s:
        s.add(Community(name="winner"))
    reads: list[int] = []

    with session_scope(engine) as s:
        s.add(Community(name="kept"))
        s.flush()

        def find() -> Community | None:
            reads.append(1)
            if len(reads) == 1:  # the stale read
                return None
            return s.exec(select(Community).where(Community.name == "winner")).one()

        def insert() -> Community:
            row = Community(name="winner")
            s.add(row)
            s.flush()
            return row

        got = get_or_insert(s, find, insert)
        assert got.name == "winner" and len(reads) == 2
    with session_scope(engine) as s:
        assert sorted(c.name for c in s.exec(select(Community)).all()) == ["kept", "winner"]
    with pytest.raises(IntegrityError), session_scope(engine) as s:  # a failure find() cannot explain
        get_or_insert(s, lambda: None, lambda: insert_duplicate(s))


def insert_duplicate(s: Any) -> Community:
    row = Community(name="kept")
    s.add(row)
    s.flush()
    return row
