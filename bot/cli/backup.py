"""``communitybot backup --to DIR`` and ``communitybot restore --from DIR [--force]``.

A backup is a folder::

    DIR/database.sqlite3   SQLite: a consistent copy made with SQLite's online backup API (the bot may run)
    DIR/database.dump      PostgreSQL: ``pg_dump --format=custom`` of the deployment's schema
    DIR/models/            the data directory's model registry (``models/intent/vNNNN``, ``CURRENT``)
    DIR/manifest.json      written last: time, schema revision, database kind, row counts, and the size and
                           SHA-256 of every file above

Left out, on purpose: the search indexes (``<data dir>/index``, derived from the database: rebuilt on the
first search, or with ``communitybot index rebuild``), the ONNX exports cached in each model version
(re-exported in seconds on first use), retraining logs (``<data dir>/runs``), locks and temporary files,
and the shared cache of converted base models (``COMMUNITYBOT_MODEL_CACHE``: re-created from the installed
packages).

Restore checks the manifest and every file's checksum, refuses a backup of another database kind or of a
schema revision this version does not know, and refuses to replace a database that holds data unless
``--force``. It then restores the database (SQLite: the backup API copies the file back into place;
PostgreSQL: ``pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction``, all or
nothing), checks every table's row count against the manifest, puts the models back (a registry already
there is moved aside to ``models.before-restore-<time>``, never deleted) and removes the local search
indexes so that they are rebuilt from the restored database. Stop every bot process before restoring.

PostgreSQL needs ``pg_dump`` and ``pg_restore`` on ``PATH`` (package ``postgresql-client``, of a major
version at least the server's). The dump holds one schema: the one ``DATABASE_URL`` resolves to
(``current_schema()``, ``public`` unless the URL's ``options`` set a ``search_path``); restore puts it back
under the same name.

Both commands print progress on stderr and a summary on stdout; ``--json`` prints one object on the last
line of stdout: ``{"backup": DIR, "manifest": {...}}`` and ``{"restored": DIR, "database", "revision",
"tables", "models", "indexes_removed", "models_moved_to"}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli.common import DataDirOption, JsonOption, fail, load_settings, print_json
from bot.errors import CommunityBotError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from bot.settings import Settings

backup_app = typer.Typer()
"""Merged into the top-level app (``app.add_typer(backup_app)``): ``backup`` and ``restore`` are commands
of ``communitybot`` itself."""

FORMAT = "communitybot-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.dump"
MODELS = "models"
NOT_INCLUDED = {
    "index/": "search indexes: derived from the database, rebuilt on first search or with "
              "`communitybot index rebuild`",
    "models/**/onnx/": "ONNX exports cached next to each model version: re-exported in seconds on first use",
    "runs/": "logs and pictures of past retraining runs: not needed to serve",
    "model cache": "converted base models (COMMUNITYBOT_MODEL_CACHE): re-created from the installed packages",
}
NOT_DATA = ("alembic_version", "match_version", "apscheduler_jobs")
"""Tables whose rows do not make a database "hold data" for restore: the schema revision, the change
counters the triggers keep (no rows without members, resources or events anyway) and the scheduler's own
job store (re-created by the scheduler on start)."""

_CHUNK = 1 << 20
_SQLITE_STEP_PAGES = 4096  # restore: 16 MiB at the default page size between two progress reports


class BackupError(CommunityBotError):
    """A backup or restore cannot go on; the message says why and what to do."""


ToOption = Annotated[Path, typer.Option("--to", help="New or empty folder to write the backup into.")]
FromOption = Annotated[Path, typer.Option("--from", help="Folder of a backup made by `communitybot backup`.")]
ForceOption = Annotated[bool, typer.Option(
    "--force", help="Replace a database that already holds data (its rows are lost).")]


@backup_app.command("backup")
def backup_command(to: ToOption, data_dir: DataDirOption = None, json_out: JsonOption = False) -> None:
    """Back up the database and the model registry into a folder (see docs/deploy.md, Backups)."""
    settings = load_settings(data_dir)
    try:
        manifest = make_backup(settings, to.expanduser().resolve(), say=_say)
    except CommunityBotError as exc:
        raise fail(exc) from exc
    folder = to.expanduser().resolve()
    if json_out:
        print_json({"backup": str(folder), "manifest": manifest})
        return
    db = manifest["database"]
    rows = sum(db["tables"].values())
    size = sum(f["size"] for f in manifest["files"])
    typer.echo(f"Backed up to {folder}: {db['kind']} database at revision {db['revision']} "
               f"({len(db['tables'])} tables, {rows} rows), {manifest['models']['files']} model files; "
               f"{len(manifest['files'])} files, {_human(size)}.")


@backup_app.command("restore")
def restore_command(source: FromOption, data_dir: DataDirOption = None, force: ForceOption = False,
                    json_out: JsonOption = False) -> None:
    """Restore a backup into the configured database and data directory (stop the bot first)."""
    settings = load_settings(data_dir)
    try:
        report = restore_backup(settings, source.expanduser().resolve(), force=force, say=_say)
    except CommunityBotError as exc:
        raise fail(exc) from exc
    if json_out:
        print_json(report)
        return
    typer.echo(f"Restored {report['restored']} into the {report['database']} database at revision "
               f"{report['revision']} ({sum(report['tables'].values())} rows in {len(report['tables'])} "
               f"tables) and {report['models']} model files into {settings.data_dir / MODELS}.")


# --- backup ------------------------------------------------------------------------------------------------


def make_backup(settings: Settings, folder: Path, *, say: Callable[[str], None]) -> dict[str, Any]:
    """Write a backup of ``settings``' database and model registry into ``folder``; returns the manifest.

    Raises:
        BackupError: ``folder`` is not empty, the database is missing or cannot be dumped.
    """
    url = settings.resolved_database_url()
    kind = _kind(url)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(f"{folder} already exists and is not an empty folder: back up into a new one, "
                          "e.g. --to backups/$(date +%Y%m%d-%H%M).")
    started = time.monotonic()
    if kind == "sqlite":
        source = _sqlite_path(url)
        if not source.is_file():
            raise BackupError(f"There is no database at {source}: nothing to back up (check --data-dir or "
                              "COMMUNITYBOT_DATA_DIR).")
    else:
        pg_dump = _pg_tool("pg_dump")
        _pg_tool("pg_restore")  # found missing now rather than on the day of the restore
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "sqlite":
            database = _backup_sqlite(source, folder / SQLITE_FILE, say=say)
        else:
            database = _backup_postgres(url, folder / POSTGRES_FILE, pg_dump=pg_dump, say=say)
        models = _copy_models(settings.data_dir / MODELS, folder / MODELS, say=say)
        say("Computing checksums...")
        files = [_file_entry(folder, path) for path in _files_under(folder)]
    except BaseException:
        # a folder without its manifest is refused by restore anyway; do not leave one behind
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "communitybot_version": _version(),
        "database": database,
        "models": models,
        "files": files,
        "not_included": NOT_INCLUDED,
    }
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)
    say(f"Backup complete in {time.monotonic() - started:.1f} s.")
    return manifest


def _backup_sqlite(source: Path, target: Path, *, say: Callable[[str], None]) -> dict[str, Any]:
    """Copy the live SQLite database with the online backup API (a consistent snapshot even while the bot
    writes; WAL contents included), then check the copy and make it a self-contained file."""
    say(f"Copying the SQLite database {source} ({_human(source.stat().st_size)})...")
    src = sqlite3.connect(str(source), timeout=30)
    dst = sqlite3.connect(str(target))
    try:
        # in one step: a read transaction on the WAL database, which writers do not wait for (a paged
        # backup would start over after every write of another process, and might never finish)
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=DELETE")  # no -wal/-shm files next to the copy
        check = dst.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"The copy of {source} fails SQLite's integrity check ({check}): the database "
                              "file may be damaged; run `sqlite3 FILE 'PRAGMA integrity_check'`.")
        tables = _sqlite_counts(dst)
        revision = _sqlite_revision(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"Copying the SQLite database {source} failed: {exc}.") from exc
    finally:
        dst.close()
        src.close()
    return {"kind": "sqlite", "file": SQLITE_FILE, "revision": revision, "schema": None, "tables": tables}


def _sqlite_progress(say: Callable[[str], None]) -> Callable[[int, int, int], None]:
    def report(_status: int, remaining: int, total: int) -> None:
        if total > _SQLITE_STEP_PAGES and remaining:
            say(f"  {100 * (total - remaining) // total}% of {total} pages")
    return report


def _backup_postgres(url: str, target: Path, *, pg_dump: str, say: Callable[[str], None]) -> dict[str, Any]:
    """``pg_dump --format=custom`` of the URL's schema, from a snapshot exported by a REPEATABLE READ
    transaction that also counts the rows and reads the revision: the manifest describes exactly what the
    dump holds, even while the bot writes."""
    import sqlalchemy as sa

    from bot.db import create_db_engine

    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
                schema = _pg_schema(conn)
                if schema is None:
                    raise BackupError("The database's search_path names no existing schema: there is nothing "
                                      "to back up (check DATABASE_URL).")
                tables = _pg_counts(conn, schema)
                revision = _pg_revision(conn, schema, tables)
                say(f"Dumping PostgreSQL schema {schema} ({len(tables)} tables, {sum(tables.values())} rows) "
                    "with pg_dump...")
                _run_tool([pg_dump, "--format=custom", "--verbose", f"--schema={schema}",
                           f"--snapshot={snapshot}", f"--file={target}", f"--dbname={_libpq_uri(url)}"],
                          env=_libpq_env(url), progress=r"dumping contents of table \"?([^\"\s]+)", say=say)
    except sa.exc.SQLAlchemyError as exc:
        raise BackupError(f"Reading the PostgreSQL database failed: {_first_line(exc)} (check DATABASE_URL "
                          "and that the server is up).") from exc
    finally:
        engine.dispose()
    return {"kind": "postgresql", "file": POSTGRES_FILE, "revision": revision, "schema": schema,
            "tables": tables}


def _copy_models(source: Path, target: Path, *, say: Callable[[str], None]) -> dict[str, Any]:
    """Copy the model registry, ``CURRENT`` files first: a version is complete on disk before any
    ``CURRENT`` names it, so a retrain finishing during the copy cannot leave ``CURRENT`` pointing at a
    version the backup lacks."""
    if not source.is_dir():
        say(f"No model registry at {source} (the bot prepares a model on first start).")
        return {"dir": MODELS, "files": 0, "current": {}}
    files = [p for p in _files_under(source) if p.name != "CURRENT"]
    currents = [p for p in _files_under(source) if p.name == "CURRENT"]
    say(f"Copying the model registry {source} ({len(files) + len(currents)} files, "
        f"{_human(sum(p.stat().st_size for p in files + currents))})...")
    current: dict[str, str] = {}
    for path in currents + files:
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
        if path.name == "CURRENT":
            current[str(path.parent.relative_to(source))] = dest.read_text(encoding="utf-8").strip()
    return {"dir": MODELS, "files": len(files) + len(currents), "current": current}


def _files_under(root: Path) -> list[Path]:
    """Regular files under ``root``, sorted, leaving out what a backup never holds: hidden names (locks,
    temporary and staging folders), ONNX export caches and the manifest itself."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "onnx")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or (Path(dirpath) == root and name == MANIFEST) or not path.is_file():
                continue
            out.append(path)
    return out


# --- restore -----------------------------------------------------------------------------------------------


def restore_backup(settings: Settings, folder: Path, *, force: bool,
                   say: Callable[[str], None]) -> dict[str, Any]:
    """Restore the backup in ``folder`` into ``settings``' database and data directory; returns a report.

    Raises:
        BackupError: no or damaged manifest or files, another database kind or an unknown revision, a
            database holding data without ``force``, or a failed restore.
    """
    started = time.monotonic()
    manifest = read_manifest(folder)
    verify_files(folder, manifest, say=say)
    db = manifest["database"]
    revision = db["revision"]
    known = _known_revisions()
    if revision is not None and revision not in known:
        raise BackupError(f"The backup's schema revision {revision} is unknown to this community-bot "
                          f"(it knows up to {known[-1]}): it was made by a newer version; install that "
                          "version or a newer one, then restore.")
    url = settings.resolved_database_url()
    kind = _kind(url)
    if kind != db["kind"]:
        raise BackupError(f"This backup holds a {db['kind']} database but the target is {kind} "
                          f"({_where(url)}): restore into the same kind of database (set or unset "
                          "DATABASE_URL).")
    if kind == "sqlite":
        tables = _restore_sqlite(folder / db["file"], _sqlite_path(url), expected=db["tables"], force=force,
                                 say=say)
    else:
        tables = _restore_postgres(folder / db["file"], url, schema=db["schema"], expected=db["tables"],
                                   force=force, say=say)
    moved = _restore_models(folder / MODELS, settings.data_dir / MODELS, say=say)
    index = settings.data_dir / "index"
    removed = index.is_dir()
    if removed:
        shutil.rmtree(index)
        say(f"Removed the search indexes in {index}: they are rebuilt from the restored database on the "
            "first search (or now: `communitybot index rebuild`).")
    head = known[-1]
    if revision != head:
        say(f"The restored schema is at revision {revision}; the bot upgrades it to {head} when it starts "
            "(or now: `communitybot db upgrade`).")
    say(f"Restore complete in {time.monotonic() - started:.1f} s.")
    return {"restored": str(folder), "database": kind, "revision": revision, "tables": tables,
            "models": manifest["models"]["files"], "indexes_removed": removed,
            "models_moved_to": str(moved) if moved else None}


def read_manifest(folder: Path) -> dict[str, Any]:
    """The backup's manifest, checked for its format.

    Raises:
        BackupError: no folder, no manifest (not a backup, or one that did not finish), or not ours.
    """
    if not folder.is_dir():
        raise BackupError(f"There is no backup folder at {folder}.")
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder} has no {MANIFEST}: it is not a community-bot backup, or the backup did "
                          "not finish (the manifest is written last). Use another backup.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} cannot be read ({exc}); use another backup.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not the manifest of a community-bot backup.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"{path} has backup format version {manifest.get('format_version')}; this "
                          f"community-bot reads version {FORMAT_VERSION}: restore with the version that made "
                          "it.")
    return manifest


def verify_files(folder: Path, manifest: dict[str, Any], *, say: Callable[[str], None]) -> None:
    """Check that every file the manifest lists is there with its size and SHA-256.

    Raises:
        BackupError: a file is missing, has another size or another checksum.
    """
    entries = manifest.get("files", [])
    say(f"Checking {len(entries)} files of the backup...")
    for entry in entries:
        path = folder / entry["path"]
        if not path.is_file():
            raise BackupError(f"The backup is incomplete: {entry['path']} is missing from {folder}. "
                              "Use another backup.")
        size, digest = path.stat().st_size, _sha256(path)
        if size != entry["size"] or digest != entry["sha256"]:
            raise BackupError(f"The backup is damaged: {entry['path']} has {size} bytes and SHA-256 "
                              f"{digest[:12]}..., the manifest says {entry['size']} bytes and "
                              f"{entry['sha256'][:12]}.... Use another backup.")
    if manifest["database"]["file"] not in {e["path"] for e in entries}:
        raise BackupError(f"The backup's manifest lists no {manifest['database']['file']}; use another "
                          "backup.")


def _restore_sqlite(source: Path, target: Path, *, expected: dict[str, int], force: bool,
                    say: Callable[[str], None]) -> dict[str, int]:
    """Copy the backup back into ``target`` with the backup API, which writes through SQLite's own locking
    and journal (a live ``-wal`` file is reset, not left to be replayed over the restored pages)."""
    if target.is_file():
        conn = sqlite3.connect(str(target), timeout=30)
        try:
            held = {t: n for t, n in _sqlite_counts(conn).items() if n and t not in NOT_DATA}
        finally:
            conn.close()
        _refuse_unless_forced(held, where=str(target), force=force)
    else:  # journals left by a database deleted without them would be replayed over the new file
        for suffix in ("-wal", "-shm", "-journal"):
            target.with_name(target.name + suffix).unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"Restoring the SQLite database into {target} ({_human(source.stat().st_size)})...")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(str(target), timeout=30)
    try:
        src.backup(dst, pages=_SQLITE_STEP_PAGES, progress=_sqlite_progress(say))
        tables = _sqlite_counts(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"Restoring into {target} failed: {exc} (is a bot process still using it? stop "
                          "every process, then restore again).") from exc
    finally:
        dst.close()
        src.close()
    _check_counts(tables, expected)
    return tables


def _restore_postgres(source: Path, url: str, *, schema: str, expected: dict[str, int], force: bool,
                      say: Callable[[str], None]) -> dict[str, int]:
    """``pg_restore`` into the URL's database, schema ``schema`` (the dump's; the URL must resolve to it).

    Tables of the target schema that the backup does not have (a newer schema revision, the scheduler's job
    store) are dropped first: ``--clean`` drops only what the dump holds, and would then fail to drop the
    schema. Everything else happens in pg_restore's single transaction.
    """
    import sqlalchemy as sa

    from bot.db import create_db_engine

    pg_restore = _pg_tool("pg_restore")
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            target = _pg_schema(conn) or _search_path_schema(conn)
            if target != schema:
                raise BackupError(
                    f"The backup holds PostgreSQL schema {schema!r} but DATABASE_URL resolves to schema "
                    f"{target!r}: pg_restore restores a schema under its own name. Point DATABASE_URL at "
                    f"schema {schema!r} (e.g. ?options=-csearch_path%3D{schema}), then restore.")
            present = _pg_counts(conn, schema) if _schema_exists(conn, schema) else {}
        held = {t: n for t, n in present.items() if n and t not in NOT_DATA}
        _refuse_unless_forced(held, where=f"{_where(url)}, schema {schema}", force=force)
        extra = sorted(set(present) - set(expected))
        if extra:
            say(f"Dropping tables the backup does not have: {', '.join(extra)}")
            with engine.begin() as conn:
                for table in extra:
                    conn.execute(sa.text(f'DROP TABLE IF EXISTS "{schema}"."{table}" CASCADE'))
        say(f"Restoring PostgreSQL schema {schema} with pg_restore ({_human(source.stat().st_size)})...")
        _run_tool([pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges",
                   "--single-transaction", "--verbose", f"--dbname={_libpq_uri(url)}", str(source)],
                  env=_libpq_env(url), progress=r"processing data for table \"?([^\"\s]+)", say=say,
                  failed="Nothing was changed by pg_restore (it runs in one transaction)")
        with engine.connect() as conn:
            tables = _pg_counts(conn, schema)
    except sa.exc.SQLAlchemyError as exc:
        raise BackupError(f"The PostgreSQL database cannot be used: {_first_line(exc)} (check DATABASE_URL "
                          "and that the server is up).") from exc
    finally:
        engine.dispose()
    _check_counts(tables, expected)
    return tables


def _restore_models(source: Path, target: Path, *, say: Callable[[str], None]) -> Path | None:
    """Put the backup's model registry in place; a registry already there is moved aside, not deleted.
    Returns where it was moved, or ``None``."""
    moved = None
    if target.is_dir() and any(target.iterdir()):
        moved = target.with_name(f"{target.name}.before-restore-{datetime.now(UTC):%Y%m%d-%H%M%S}")
        target.rename(moved)
        say(f"Moved the model registry that was there to {moved} (delete it once the restore is checked).")
    elif target.is_dir():
        target.rmdir()
    if not source.is_dir():
        say("The backup has no model registry: the bot prepares a model on first start.")
        return moved
    say(f"Restoring the model registry into {target}...")
    shutil.copytree(source, target)
    return moved


def _refuse_unless_forced(held: dict[str, int], *, where: str, force: bool) -> None:
    if held and not force:
        shown = ", ".join(f"{t} {n}" for t, n in sorted(held.items(), key=lambda kv: -kv[1])[:5])
        raise BackupError(f"The database at {where} already holds data ({sum(held.values())} rows: "
                          f"{shown}). Restoring replaces it: pass --force to do so, or point DATABASE_URL / "
                          "--data-dir at an empty database.")


def _check_counts(tables: dict[str, int], expected: dict[str, int]) -> None:
    wrong = {t: (tables.get(t), n) for t, n in expected.items() if tables.get(t) != n}
    if wrong:
        shown = ", ".join(f"{t}: {got} rows, backup {want}" for t, (got, want) in sorted(wrong.items()))
        raise BackupError(f"The restored database does not match the backup's row counts ({shown}). "
                          "Restore again with --force into an empty database; if it persists, the backup is "
                          "unusable.")


# --- databases ----------------------------------------------------------------------------------------------


def _kind(url: str) -> str:
    import sqlalchemy as sa

    name = sa.engine.make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"Backups support SQLite and PostgreSQL; the database is {name}.")
    return name


def _where(url: str) -> str:
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    if u.get_backend_name() == "sqlite":
        return u.database or ""
    return u.render_as_string(hide_password=True)


def _sqlite_path(url: str) -> Path:
    import sqlalchemy as sa

    database = sa.engine.make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("An in-memory SQLite database cannot be backed up or restored.")
    return Path(database)


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {n: int(conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in names}


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])


def _pg_schema(conn: Connection) -> str | None:
    """The schema unqualified names resolve to (``current_schema()``), or ``None`` when the search_path
    names no existing schema."""
    import sqlalchemy as sa

    value = conn.execute(sa.text("SELECT current_schema()")).scalar()
    return None if value is None else str(value)


def _search_path_schema(conn: Connection) -> str | None:
    """The first schema the search_path names (it may not exist yet: a schema dropped before a restore)."""
    import sqlalchemy as sa

    path = str(conn.execute(sa.text("SELECT current_setting('search_path')")).scalar_one())
    for part in path.split(","):
        name = part.strip().strip('"')
        if name and name != "$user":
            return name
    return None


def _schema_exists(conn: Connection, schema: str) -> bool:
    import sqlalchemy as sa

    found = conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).scalar()
    return bool(found)


def _pg_counts(conn: Connection, schema: str) -> dict[str, int]:
    import sqlalchemy as sa

    names = conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY tablename"),
                         {"s": schema}).scalars().all()
    return {str(n): int(conn.execute(sa.text(f'SELECT count(*) FROM "{schema}"."{n}"')).scalar_one())
            for n in names}


def _pg_revision(conn: Connection, schema: str, tables: dict[str, int]) -> str | None:
    import sqlalchemy as sa

    if "alembic_version" not in tables:
        return None
    value = conn.execute(sa.text(f'SELECT version_num FROM "{schema}".alembic_version')).scalar()
    return None if value is None else str(value)


def _known_revisions() -> list[str]:
    """This version's schema revisions, oldest first."""
    from alembic.script import ScriptDirectory

    from bot.db import MIGRATIONS_DIR

    return [s.revision for s in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()][::-1]


# --- PostgreSQL client tools --------------------------------------------------------------------------------


def _pg_tool(name: str) -> str:
    """The path of ``pg_dump`` / ``pg_restore``.

    Raises:
        BackupError: not on PATH; names the package to install.
    """
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} was not found on PATH: install the PostgreSQL client tools, of a major "
                          "version at least the server's (Debian/Ubuntu: apt-get install postgresql-client; "
                          "macOS: brew install libpq), then run this again.")
    return path


def _libpq_uri(url: str) -> str:
    """The SQLAlchemy URL as a libpq connection URI, without the password (see :func:`_libpq_env`):
    ``postgresql://user@host:port/db?options=...``."""
    import sqlalchemy as sa

    u = sa.engine.make_url(url).set(drivername="postgresql", password=None)
    return u.render_as_string(hide_password=False)


def _libpq_env(url: str) -> dict[str, str]:
    """The environment of a client tool: the password in ``PGPASSWORD`` (not on its command line, where
    every user of the machine could read it)."""
    import sqlalchemy as sa

    password = sa.engine.make_url(url).password
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return env


def _run_tool(argv: Sequence[str], *, env: dict[str, str], progress: str, say: Callable[[str], None],
              failed: str = "") -> None:
    """Run a PostgreSQL client tool, reporting each table it reaches (its ``--verbose`` lines matching
    ``progress``) and raising :class:`BackupError` with its last error lines when it fails."""
    name = Path(argv[0]).name
    pattern = re.compile(progress)
    lines: list[str] = []
    with _process(argv, env=env) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip())
            if match := pattern.search(line):
                say(f"  {match.group(1)}")
        code = proc.wait()
    if code != 0:
        errors = [ln for ln in lines if "error" in ln.lower() or "fatal" in ln.lower()] or lines[-5:]
        message = f"{name} failed (exit code {code}): " + " | ".join(errors[-5:])
        if any("version mismatch" in ln or "server version" in ln for ln in errors):
            message += (f". {name} is older than the server: install the postgresql-client package of the "
                        "server's major version")
        raise BackupError(message + (f". {failed}." if failed else "."))


@contextmanager
def _process(argv: Sequence[str], *, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(list(argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- small helpers ------------------------------------------------------------------------------------------


def _file_entry(root: Path, path: Path) -> dict[str, Any]:
    return {"path": path.relative_to(root).as_posix(), "size": path.stat().st_size, "sha256": _sha256(path)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("community-bot")
    except PackageNotFoundError:
        return "unknown"


def _first_line(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {(str(exc).splitlines() or [''])[0]}"


def _say(message: str) -> None:
    typer.echo(message, err=True)
