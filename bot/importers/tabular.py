"""The one import engine: rows of a :class:`~bot.importers.sources.Table` -> keyed upserts of a model.

Members and resources are imported by :func:`import_members` and :func:`import_resources`; events
(:mod:`bot.importers.events`) use the same engine. For each row the engine builds the field values from
the mapping, computes the row's key, and then, in one pass against the keys already stored for the
community (loaded in one query): inserts new rows, updates rows whose values changed (bumping
``updated_at``), and leaves the others untouched (the search index re-embeds by ``updated_at``).
Rows that repeat an earlier row's key in the same file are merged into it. Nothing is committed here:
the caller's session commits (``bot.db.session_scope``).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, select

from bot.errors import ImportFormatError
from bot.importers.links import normalise_link
from bot.importers.mapping import (
    MEMBER_SPEC,
    RESOURCE_SPEC,
    ColumnMapping,
    FieldSpec,
    TargetSpec,
    resolve_mapping,
)
from bot.importers.report import ImportReport, MergedRow
from bot.importers.sources import Table, read_table
from bot.language import detect_language, language_code
from bot.models import Community, Member, Resource, utcnow

#: Files with more rows than this show a progress bar (on stderr) when ``progress=True``.
PROGRESS_MIN_ROWS = 500
_MAX_KEY = 500
#: Where a cell holding several links is split: spaces, and a comma or semicolon before a space or a link.
_LINK_SEPARATORS = re.compile(r"\s+|[,;，；](?=\s|https?://|www\.|$)", re.IGNORECASE)
#: What spreadsheets put in an empty link cell.
_BARE_SCHEMES = frozenset({"http://", "https://", "http:", "https:", "www.", "-", "n/a", "none", "null"})


class RowError(ValueError):
    """A row cannot be imported; the message is the reason shown next to its line number."""


#: Turns the values built from a row (``{attr: value}``) into the final values, or raises RowError.
Finisher = Callable[[dict[str, Any]], dict[str, Any]]
#: Receives the warnings of one row (a value left out of it).
Warn = Callable[[str], None]
MapOption = Mapping[str, str | Sequence[str]] | None
KeyOption = str | Sequence[str] | None


@dataclass
class _Record:
    line: int
    key: str
    values: dict[str, Any]
    item: int | None = None


def _check_table(table: Table, spec: TargetSpec) -> None:
    """Refuse a file that cannot hold what ``spec`` imports: an iCalendar feed imported as members or
    resources, or a file without a single row.

    Raises:
        ImportFormatError: naming the command to use, or saying that no rows were found.
    """
    if table.kind == "ics" and spec.kind != "events":
        raise ImportFormatError(
            f"{table.name} looks like an events file (iCalendar), not a list of {spec.kind}: "
            f"use `communitybot import events {table.name}`."
        )
    if not table.rows:
        why = {"ics": "it has no BEGIN:VEVENT", "csv": "it has a header line but no rows",
               "json": "its list is empty", "jsonl": "it has no lines"}.get(table.kind, "it has no rows")
        raise ImportFormatError(f"No {spec.kind} found in {table.name}: {why}.")


# --- values ----------------------------------------------------------------------------------------


def _parts(value: Any) -> list[str]:
    """The text items of one cell: lists (real, or written as ``"['a', 'b']"``) give several items."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [p for item in value for p in _parts(item)]
    if isinstance(value, dict):
        return [json.dumps(value, ensure_ascii=False)]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, list | tuple):
            return [p for item in parsed for p in _parts(item)]
    return [text] if text else []


def field_value(spec_field: FieldSpec, cells: Sequence[Any], warn: Warn | None = None) -> Any:
    """The value of ``spec_field`` from the cells of its mapped columns (in mapping order).

    ``text``: the non-empty parts joined with the field's joiner (a part equal to an earlier one is
    dropped); ``list``: all items joined with ``", "``, duplicates dropped; ``when``: a single
    ``date``/``datetime`` cell as it is, else the parts joined with a space (``"2026-03-01 19:00"``),
    ``None`` when empty; ``int``: a whole number or ``None`` (0 is ``None`` when the field has a
    ``maximum``: no limit); ``url``: the first part that is a link (``www.`` ones get ``https://``), ``""``
    when none is; every part that is not a link is left out and reported to ``warn`` (a bare ``https://``
    or ``n/a`` counts as empty).

    Raises:
        RowError: an ``int`` field that is not a whole number, or is out of its range.
    """
    if spec_field.kind == "when":
        present = [c for c in cells if c not in (None, "")]
        if len(present) == 1 and isinstance(present[0], date):
            return present[0]
        joined = " ".join(p for c in present for p in _parts(c))
        return joined or None
    items: list[str] = []
    for cell in cells:
        for part in _parts(cell):
            if part not in items:
                items.append(part)
    if spec_field.kind == "int":
        return _whole_number(spec_field, items[0]) if items else None
    if spec_field.kind == "url":
        return _first_link(spec_field, items, warn)
    return (", " if spec_field.kind == "list" else spec_field.joiner).join(items)


def _first_link(spec_field: FieldSpec, parts: Sequence[str], warn: Warn | None) -> str:
    """The first link among ``parts`` (see :func:`field_value`); what is left out goes to ``warn``."""
    links: list[str] = []
    for part in parts:
        words = [w for w in _LINK_SEPARATORS.split(part) if w and w.casefold() not in _BARE_SCHEMES]
        found = [link for link in map(normalise_link, words) if link]
        other = [w for w in words if normalise_link(w) is None]
        if words and not found and warn is not None:
            warn(f"{spec_field.name} {_shorten(part)!r} is not a link (https://... or www....); left out")
        elif found and other and warn is not None:
            left = _shorten(" ".join(other))
            warn(f"{spec_field.name} {_shorten(part)!r}: kept the link, left out {left!r}")
        links.extend(link for link in found if link not in links)
    if len(links) > 1 and warn is not None:
        warn(f"{spec_field.name}: {len(links)} links given, kept the first; left out "
             f"{', '.join(_shorten(link) for link in links[1:])}")
    return links[0] if links else ""


def _whole_number(spec_field: FieldSpec, text: str) -> int | None:
    try:
        number = float(text)
        value = int(number)
    except (ValueError, OverflowError) as exc:  # OverflowError: "1e400" is inf
        raise RowError(f"{spec_field.name} {_shorten(text)!r} is not a whole number") from exc
    if spec_field.maximum is None:
        return value
    if value == 0:
        return None
    if not 1 <= number <= spec_field.maximum:
        raise RowError(f"{spec_field.name} {_shorten(text)!r} is out of range: give 1 to "
                       f"{spec_field.maximum} (or leave it empty for no limit)")
    return value


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…"


def build_values(
    spec: TargetSpec, mapping: ColumnMapping, cells: Mapping[str, Any], warn: Warn | None = None
) -> dict[str, Any]:
    """``{attr: value}`` for one row: every mapped field of ``spec`` built with :func:`field_value`;
    values left out of the row (an invalid link) are reported to ``warn``.

    Raises:
        RowError: a required field is empty, a value is longer than its column allows, or a bad number.
    """
    values: dict[str, Any] = {}
    for spec_field in spec.fields:
        columns = mapping.fields.get(spec_field.name)
        if not columns:
            continue
        value = field_value(spec_field, [cells.get(c) for c in columns], warn)
        for group in mapping.alternatives.get(spec_field.name, ()):
            if value not in (None, ""):
                break
            value = field_value(spec_field, [cells.get(c) for c in group], warn)
        if spec_field.required and value in (None, ""):
            tried = [columns, *mapping.alternatives.get(spec_field.name, ())]
            raise RowError(f"empty {spec_field.name} (column {' or '.join('+'.join(g) for g in tried)})")
        if spec_field.max_length and isinstance(value, str) and len(value) > spec_field.max_length:
            raise RowError(f"{spec_field.name} is {len(value)} characters long; at most "
                           f"{spec_field.max_length} fit")
        values[spec_field.attr] = value
    return values


def _key_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    return " ".join(str(value or "").split()).casefold().rstrip("/")


def row_key(
    *,
    source: str,
    spec: TargetSpec,
    mapping: ColumnMapping,
    cells: Mapping[str, Any],
    values: Mapping[str, Any],
) -> str:
    """The external key of a row: ``"{source}:{id}"`` from the key columns, or, without key columns (or
    when they are empty in this row), from the spec's fallback fields (``name|url``). Keys longer than the
    column allows are replaced by a SHA-1 of themselves."""
    parts = [" ".join(_parts(cells.get(c))) for c in mapping.key_columns]
    if not mapping.key_columns or not any(parts):
        parts = [_key_text(values.get(attr)) for attr in spec.fallback_key]
    key = f"{source}:{'|'.join(parts)}"
    if len(key) > _MAX_KEY:
        key = f"{source}:sha1:{hashlib.sha1(key.encode()).hexdigest()}"
    return key


def _merge(first: dict[str, Any], later: Mapping[str, Any], spec: TargetSpec) -> None:
    """Merge a later row with the same key into ``first``: fields marked ``unite`` (tags, skills) are
    united, other fields keep the first non-empty value."""
    unite = {f.attr for f in spec.fields if f.unite}
    for attr, value in later.items():
        current = first.get(attr)
        if current in (None, ""):
            first[attr] = value
        elif attr in unite and isinstance(current, str) and isinstance(value, str) and value:
            items = [p.strip() for p in current.split(",")]
            items += [p.strip() for p in value.split(",") if p.strip() not in items]
            first[attr] = ", ".join(i for i in items if i)


# --- engine ----------------------------------------------------------------------------------------


def source_tag(path: Path | str) -> str:
    """The default source tag of a file: its name without extension (``yc_companies``)."""
    return Path(path).stem.strip() or "import"


def _map_name(spec: TargetSpec, attr: str) -> str:
    found = spec.field(attr)
    return found.name if found else attr


def import_table(
    session: Session,
    *,
    community: Community,
    table: Table,
    spec: TargetSpec,
    model: type[SQLModel],
    source: str,
    mapping: MapOption = None,
    key: KeyOption = None,
    finish: Finisher | None = None,
    create_defaults: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> ImportReport:
    """Import the rows of ``table`` into ``model`` rows of ``community`` (the engine behind every importer).

    Args:
        spec: the fields and their recognised columns; ``model`` must have the spec's attributes plus
            ``community_id``, ``external_key``, ``source``, ``created_at`` and ``updated_at``.
        source: the tag prefixed to external keys (``{source}:{id}``); the same file must use the same tag.
        mapping, key: ``--map`` and ``--key`` (see :func:`bot.importers.mapping.resolve_mapping`).
        finish: completes / checks each row's values; raises :class:`RowError` to skip the row.
        create_defaults: attributes set only when a row is created (e.g. consent), never on update.
        progress: show a tqdm bar on stderr when the file has more than :data:`PROGRESS_MIN_ROWS` rows.

    Returns:
        The :class:`ImportReport`. Rows are flushed, not committed.

    Raises:
        UsageError, ImportFormatError: the mapping cannot be resolved (nothing is written then).
    """
    if community.id is None:
        raise ValueError("community must be flushed (have an id) before importing into it")
    _check_table(table, spec)
    resolved = resolve_mapping(spec, columns=table.columns, explicit=mapping, key=key, file_label=table.name)
    report = ImportReport(
        kind=spec.kind,
        source=source,
        mapping=resolved.describe(),
        alternatives=resolved.describe_alternatives(),
        key=(f"column {'+'.join(resolved.key_columns)}" if resolved.key_columns
             else f"fields {'+'.join(_map_name(spec, attr) for attr in spec.fallback_key)}"),
        unused_columns=list(resolved.unused_columns),
    )
    for note in table.notes:
        report.warn(note.line, note.message)
    records: dict[str, _Record] = {}
    for row in _progress(table.rows, enabled=progress, label=f"Reading {table.name}"):
        if row.error:
            report.skip(row.line, row.error, row.item)
            continue
        warnings: list[str] = []
        try:
            values = build_values(spec, resolved, row.values, warnings.append)
            if finish is not None:
                values = finish(values)
        except RowError as exc:
            report.skip(row.line, str(exc), row.item)
            continue
        for message in warnings:
            report.warn(row.line, message, row.item)
        row_id = row_key(source=source, spec=spec, mapping=resolved, cells=row.values, values=values)
        if row_id in records:
            first = records[row_id]
            _merge(first.values, values, spec)
            report.merged.append(MergedRow(line=row.line, into_line=first.line, item=row.item,
                                           into_item=first.item))
        else:
            records[row_id] = _Record(row.line, row_id, values, row.item)
    _upsert(session, community_id=community.id, model=model, records=list(records.values()), source=source,
            create_defaults=create_defaults or {}, report=report, progress=progress)
    return report


def _upsert(
    session: Session, *, community_id: int, model: type[SQLModel], records: list[_Record], source: str,
    create_defaults: Mapping[str, Any], report: ImportReport, progress: bool,
) -> None:
    table_cols: Any = model  # SQLModel class attributes are SQLAlchemy columns at runtime
    stored: Sequence[Any] = session.exec(
        select(model).where(
            table_cols.community_id == community_id,
            table_cols.external_key.startswith(f"{source}:", autoescape=True),
        )
    ).all()
    existing = {obj.external_key: obj for obj in stored}
    now = utcnow()
    # Column defaults of the model, taken once: building one SQLModel object per row costs more than the
    # INSERT itself, so new rows go in as dicts through one multi-row INSERT.
    template = {**model().model_dump(exclude={"id"}), **create_defaults, "community_id": community_id,
                "source": f"import:{source}", "created_at": now, "updated_at": now}
    new: list[dict[str, Any]] = []
    for record in _progress(records, enabled=progress, label="Saving"):
        obj = existing.get(record.key)
        if obj is None:
            new.append({**template, **record.values, "external_key": record.key})
            report.created += 1
            continue
        changed = {attr: value for attr, value in record.values.items() if getattr(obj, attr) != value}
        if not changed:
            report.unchanged += 1
            continue
        for attr, value in changed.items():
            setattr(obj, attr, value)
        obj.updated_at = now
        report.updated += 1
    if new:
        session.execute(sa.insert(model), new)
    session.flush()


def _progress(items: Sequence[Any], *, enabled: bool, label: str) -> Any:
    if not enabled or len(items) <= PROGRESS_MIN_ROWS:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=label, unit="row", file=sys.stderr, leave=False)


# --- members and resources -------------------------------------------------------------------------


def import_members(
    session: Session,
    *,
    community: Community,
    path: Path,
    mapping: MapOption = None,
    key: KeyOption = None,
    consent: bool = True,
    progress: bool = False,
    source: str | None = None,
) -> ImportReport:
    """Import members (people or company profiles) from a CSV / TSV / JSONL / JSON file at ``path``.

    Fields (``--map`` names): ``name`` (required; ``display_name``), ``bio``, ``skills``, ``offers``,
    ``needs``, ``location``, ``languages``, ``timezone``, ``url``; see :data:`MEMBER_SPEC` for the column
    names recognised without a mapping. Rows are keyed by an id column (``id``, ``company_id``, ...),
    else by ``key``, else by name + url.

    Args:
        consent: whether members this import *creates* may be suggested to others
            (``Member.consent_suggest``); members already stored keep their own choice.
        source: the key prefix; default the file name without extension.

    Raises:
        ImportFormatError: the file cannot be read or the name column cannot be found.
        UsageError: a malformed ``mapping``.
    """
    return import_table(
        session, community=community, table=read_table(path), spec=MEMBER_SPEC, model=Member,
        source=source or source_tag(path), mapping=mapping, key=key,
        create_defaults={"consent_suggest": consent}, progress=progress,
    )


def _finish_resource(values: dict[str, Any]) -> dict[str, Any]:
    code = language_code(str(values.get("language") or ""))
    if code:
        values["language"] = code
    else:
        text = f"{values.get('title', '')} {values.get('description', '')}"
        values["language"] = detect_language(text) or ""
    return values


def import_resources(
    session: Session,
    *,
    community: Community,
    path: Path,
    mapping: MapOption = None,
    key: KeyOption = None,
    progress: bool = False,
    source: str | None = None,
) -> ImportReport:
    """Import shared resources (guides, programmes, tools) from a CSV / TSV / JSONL / JSON file.

    Fields: ``title`` (required), ``url``, ``description``, ``tags``, ``language`` (``en``/``zh``; detected
    from title and description with :func:`bot.language.detect_language` when not mapped or empty).
    Rows are keyed by an id column, else by ``key``, else by title + url.

    Raises:
        ImportFormatError: the file cannot be read or the title column cannot be found.
        UsageError: a malformed ``mapping``.
    """
    return import_table(
        session, community=community, table=read_table(path), spec=RESOURCE_SPEC, model=Resource,
        source=source or source_tag(path), mapping=mapping, key=key, finish=_finish_resource,
        progress=progress,
    )
