"""Reading import files into rows with their line numbers: CSV/TSV, JSONL, JSON and iCalendar.

Every reader returns a :class:`Table`: the file's columns and its rows, each with the 1-based line of the
file where it starts (a CSV header is line 1) so problems can be reported where an organiser can find
them. Rows that cannot be read at all carry an ``error`` instead of being dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.errors import ImportFormatError

#: Keys under which a JSON object may hold its list of rows (``{"events": [...]}``).
JSON_LIST_KEYS = ("events", "members", "resources", "items", "data", "records", "rows")
#: Encodings tried in order; GB18030 covers Chinese spreadsheets exported without UTF-8.
ENCODINGS = ("utf-8-sig", "gb18030")


@dataclass(frozen=True)
class SourceRow:
    """One row of a file: ``line`` where it starts, its values by column, or the ``error`` that made it
    unreadable (then ``values`` is empty)."""

    line: int
    values: dict[str, Any]
    error: str | None = None


@dataclass
class Table:
    """The rows of one file. ``name`` is the file name (used in messages); ``columns`` keep file order."""

    name: str
    columns: list[str]
    rows: list[SourceRow] = field(default_factory=list)

    @classmethod
    def from_rows(cls, name: str, rows: Sequence[SourceRow]) -> Table:
        """A table whose columns are the keys of ``rows``, in order of first appearance."""
        return cls(name=name, columns=_columns_of(r.values for r in rows), rows=list(rows))


def read_table(path: Path) -> Table:
    """Read ``path`` by its extension: ``.csv`` / ``.tsv`` / ``.txt``, ``.jsonl`` / ``.ndjson``, ``.json``,
    ``.ics`` / ``.ical``.

    Raises:
        ImportFormatError: the file is missing, unreadable, of an unknown kind, or not valid as a whole
            (a JSON syntax error, an iCalendar that does not parse, a CSV without a header).
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"No such file: {path}.")
    suffix = path.suffix.lower()
    text = _read_text(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return read_csv_text(text, name=path.name, delimiter="\t" if suffix == ".tsv" else None)
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl_text(text, name=path.name)
    if suffix == ".json":
        return read_json_text(text, name=path.name)
    if suffix in (".ics", ".ical", ".ifb", ".icalendar"):
        return read_ics_text(text, name=path.name)
    raise ImportFormatError(
        f"Cannot import {path.name}: unknown file type {suffix or '(none)'}. "
        "Use .csv, .tsv, .jsonl, .json or .ics."
    )


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFormatError(f"{path.name} is neither UTF-8 nor GB18030 text; save it as UTF-8.")


def _columns_of(rows: Iterable[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for values in rows:
        for key in values:
            seen.setdefault(key, None)
    return list(seen)


# --- CSV -------------------------------------------------------------------------------------------


def _guess_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _unique_headers(raw: list[str]) -> list[str]:
    headers: list[str] = []
    for i, name in enumerate(raw, start=1):
        name = name.strip() or f"column_{i}"
        candidate, n = name, 2
        while candidate in headers:
            candidate, n = f"{name}_{n}", n + 1
        headers.append(candidate)
    return headers


def read_csv_text(text: str, *, name: str, delimiter: str | None = None) -> Table:
    """Rows of CSV ``text`` (header first). A row with more or fewer fields than the header is kept as an
    error row; blank lines are ignored. Quoted fields may span lines; a row's line is where it starts."""
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or _guess_delimiter(first_line))
    headers: list[str] | None = None
    rows: list[SourceRow] = []
    consumed = 0  # physical lines read so far
    try:
        for record in reader:
            start, consumed = consumed + 1, reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            if headers is None:
                headers = _unique_headers(record)
                continue
            if len(record) != len(headers):
                reason = f"has {len(record)} fields but the header has {len(headers)}"
                rows.append(SourceRow(start, {}, reason))
                continue
            rows.append(SourceRow(start, dict(zip(headers, record, strict=True))))
    except csv.Error as exc:
        raise ImportFormatError(f"{name}, line {reader.line_num}: cannot read the CSV ({exc}).") from exc
    if headers is None:
        raise ImportFormatError(f"{name} is empty: expected a header line with column names.")
    return Table(name=name, columns=headers, rows=rows)


# --- JSON and JSONL --------------------------------------------------------------------------------


def read_jsonl_text(text: str, *, name: str) -> Table:
    """Rows of JSON Lines ``text``: one object per line; a line that is not a JSON object is an error row."""
    rows: list[SourceRow] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append(SourceRow(number, {}, f"not valid JSON ({exc.msg})"))
            continue
        if not isinstance(value, dict):
            rows.append(SourceRow(number, {}, f"expected a JSON object, found {type(value).__name__}"))
            continue
        rows.append(SourceRow(number, value))
    return Table.from_rows(name, rows)


class _LineCounter:
    """Line numbers of offsets in ``text``, for offsets given in increasing order."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line = text, 0, 1

    def line_at(self, offset: int) -> int:
        self.line += self.text.count("\n", self.pos, offset)
        self.pos = offset
        return self.line


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _array_items(text: str, i: int, lines: _LineCounter) -> list[tuple[int, Any]]:
    """Items of the JSON array starting at ``text[i] == "["`` with the line where each starts."""
    decoder = json.JSONDecoder()
    items: list[tuple[int, Any]] = []
    i = _skip_ws(text, i + 1)
    while text[i] != "]":
        value, end = decoder.raw_decode(text, i)
        items.append((lines.line_at(i), value))
        i = _skip_ws(text, end)
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
    return items


def _list_in_object(text: str, i: int, target: str, lines: _LineCounter) -> list[tuple[int, Any]]:
    """Items of the array stored under key ``target`` of the JSON object starting at ``text[i] == "{"``."""
    decoder = json.JSONDecoder()
    i = _skip_ws(text, i + 1)
    while text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = _skip_ws(text, _skip_ws(text, i) + 1)  # past the colon
        if key == target:
            return _array_items(text, i, lines)
        _, i = decoder.raw_decode(text, i)
        i = _skip_ws(text, i)
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
    return []


def read_json_text(text: str, *, name: str) -> Table:
    """Rows of a JSON document: a list of objects, or an object holding one under a key of
    :data:`JSON_LIST_KEYS` (``{"events": [...]}``). An item that is not an object is an error row."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"{name}, line {exc.lineno}: not valid JSON ({exc.msg}).") from exc
    lines, start = _LineCounter(text), _skip_ws(text, 0)
    if isinstance(document, list):
        items = _array_items(text, start, lines)
    elif isinstance(document, dict):
        target = next((k for k in JSON_LIST_KEYS if isinstance(document.get(k), list)), None)
        if target is None:
            raise ImportFormatError(
                f"{name}: expected a list of objects or an object with one of "
                f"{', '.join(JSON_LIST_KEYS)} holding that list; "
                f"found keys {', '.join(document) or '(none)'}."
            )
        items = _list_in_object(text, start, target, lines)
    else:
        raise ImportFormatError(f"{name}: expected a list of objects, found {type(document).__name__}.")
    rows = [
        SourceRow(line, value) if isinstance(value, dict)
        else SourceRow(line, {}, f"expected an object, found {type(value).__name__}")
        for line, value in items
    ]
    return Table.from_rows(name, rows)


# --- iCalendar -------------------------------------------------------------------------------------

#: Columns of a table read from iCalendar, one per VEVENT property used.
ICS_COLUMNS = ["uid", "summary", "description", "dtstart", "dtend", "location", "url", "status"]


def read_ics_text(text: str, *, name: str) -> Table:
    """Rows of an iCalendar feed, one per VEVENT, with columns :data:`ICS_COLUMNS`.

    ``dtstart`` / ``dtend`` are ``datetime`` (aware when the feed gives a zone or UTC, naive when floating)
    or ``date`` for all-day events. ``dtend`` comes from DTEND or DURATION; for all-day events it is the
    last day *included* (RFC 5545's DTEND date is exclusive), so it reads like a JSON ``endDate``.
    An event whose DTSTART is missing or broken is an error row. Recurrences are not expanded: a
    recurring event is imported once, at its first occurrence.
    """
    import icalendar

    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except ValueError as exc:
        raise ImportFormatError(f"{name} is not a valid iCalendar file ({exc}).") from exc
    lines = text.splitlines()
    starts = [n for n, line in enumerate(lines, start=1) if line.strip().upper() == "BEGIN:VEVENT"]
    events = [event for calendar in calendars for event in calendar.walk("VEVENT")]
    rows: list[SourceRow] = []
    for index, event in enumerate(events):
        line = starts[index] if index < len(starts) else 0
        rows.append(_ics_row(event, line))
    return Table(name=name, columns=list(ICS_COLUMNS), rows=rows)


def _ics_row(event: Any, line: int) -> SourceRow:
    broken = {prop for prop, _ in event.errors}
    if "DTSTART" in broken or "DTSTART" not in event:
        reason = dict(event.errors).get("DTSTART", "no DTSTART")
        return SourceRow(line, {}, f"no usable start time (DTSTART: {reason})")
    try:
        start: date | datetime = event.start
        end: date | datetime | None = None
        if "DTEND" in event or "DURATION" in event or not isinstance(start, datetime):
            end = event.end
    except Exception as exc:  # icalendar raises several types for broken DTEND/DURATION
        return SourceRow(line, {}, f"unreadable DTEND/DURATION ({exc})")
    if end is not None and not isinstance(end, datetime):
        end = end - timedelta(days=1)  # exclusive -> last day included
    values: dict[str, Any] = {
        "uid": _ics_text(event.get("UID")),
        "summary": _ics_text(event.get("SUMMARY")),
        "description": _ics_text(event.get("DESCRIPTION")),
        "dtstart": start,
        "dtend": end,
        "location": _ics_text(event.get("LOCATION")),
        "url": _ics_text(event.get("URL")),
        "status": _ics_text(event.get("STATUS")),
    }
    return SourceRow(line, values)


def _ics_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
