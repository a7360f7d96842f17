"""Reading import files into rows with their line numbers: CSV/TSV, JSONL, JSON and iCalendar.

Every reader returns a :class:`Table`: the file's columns and its rows, each with the 1-based line of the
file where it starts (a CSV header is line 1) so problems can be reported where an organiser can find
them. Rows that cannot be read at all carry an ``error`` instead of being dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
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
    unreadable (then ``values`` is empty). ``item`` is the row's 1-based position in a JSON list whose
    items share lines (``[{...}, {...}]`` on one line), where the line alone does not say which item."""

    line: int
    values: dict[str, Any]
    error: str | None = None
    item: int | None = None


@dataclass(frozen=True)
class FileNote:
    """Something wrong with a file that cost no row (``line: the file ends without END:VCALENDAR``)."""

    line: int
    message: str


@dataclass
class Table:
    """The rows of one file. ``name`` is the file name (used in messages); ``columns`` keep file order;
    ``kind`` is the format it was read as (``csv``, ``jsonl``, ``json``, ``ics``; empty when built in
    code); ``notes`` are problems of the file as a whole that lost no row."""

    name: str
    columns: list[str]
    rows: list[SourceRow] = field(default_factory=list)
    kind: str = ""
    notes: list[FileNote] = field(default_factory=list)

    @classmethod
    def from_rows(cls, name: str, rows: Sequence[SourceRow], *, kind: str = "") -> Table:
        """A table whose columns are the keys of ``rows``, in order of first appearance."""
        return cls(name=name, columns=_columns_of(r.values for r in rows), rows=list(rows), kind=kind)


_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_ICS_SUFFIXES = (".ics", ".ical", ".ifb", ".icalendar")
_SUPPORTED = "Use .csv, .tsv, .jsonl, .json or .ics (text saved as UTF-8)."

#: Leading bytes of file kinds people try to import, and what to say about them.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx or Numbers file is one: export it as CSV UTF-8)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel/Word file (.xls/.doc: export it as CSV UTF-8)"),
    (b"\x1f\x8b", "a gzip archive (unpack it first)"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
#: Byte-order marks of UTF-16/32 text (Excel's "Unicode Text" export is UTF-16 with a BOM), longest first.
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def read_table(path: Path) -> Table:
    """Read ``path`` by its extension: ``.csv`` / ``.tsv`` / ``.txt``, ``.jsonl`` / ``.ndjson``, ``.json``,
    ``.ics`` / ``.ical``. A ``.csv`` / ``.txt`` file that holds an iCalendar feed is read as one.

    The extension is checked first, then the first bytes: an image, a PDF or a spreadsheet with a text
    extension is refused for what it is, not as badly encoded text. UTF-16/32 text with a byte-order mark
    is read; other text must be UTF-8 or GB18030.

    Raises:
        ImportFormatError: the file is missing, unreadable, of an unsupported kind, or not valid as a
            whole (a JSON syntax error, an iCalendar that does not parse, a CSV without a header).
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"No such file: {path}.")
    suffix = path.suffix.lower()
    if suffix not in (*_CSV_SUFFIXES, *_JSONL_SUFFIXES, ".json", *_ICS_SUFFIXES):
        raise ImportFormatError(
            f"Cannot import {path.name}: unknown file type {suffix or '(none)'}. {_SUPPORTED}")
    text = _read_text(path)
    if suffix in _CSV_SUFFIXES:
        if text.lstrip("\ufeff \t\r\n")[:15].upper() == "BEGIN:VCALENDAR":
            return read_ics_text(text, name=path.name)
        return read_csv_text(text, name=path.name, delimiter="\t" if suffix == ".tsv" else None)
    if suffix in _JSONL_SUFFIXES:
        return read_jsonl_text(text, name=path.name)
    if suffix == ".json":
        return read_json_text(text, name=path.name)
    return read_ics_text(text, name=path.name)


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise ImportFormatError(f"Cannot import {path.name}: it is {what}, not a text file. {_SUPPORTED}")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(f"{encoding}-{'le' if bom[0] == 0xFF else 'be'}")
            except UnicodeDecodeError as exc:
                raise ImportFormatError(f"{path.name} starts like {encoding.upper()} text but is not valid "
                                        f"{encoding.upper()}; save it as UTF-8.") from exc
    if b"\x00" in data[:4096]:
        hint = ("it looks like UTF-16 text without a byte-order mark" if _looks_utf16(data[:4096])
                else "it contains binary data")
        raise ImportFormatError(f"Cannot import {path.name}: {hint}, not UTF-8 text. {_SUPPORTED}")
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFormatError(f"{path.name} is neither UTF-8 nor GB18030 text; save it as UTF-8.")


def _looks_utf16(head: bytes) -> bool:
    """Whether most even or most odd bytes are NUL, as in ASCII text stored as UTF-16."""
    even, odd = head[0::2], head[1::2]
    return max(even.count(0), odd.count(0)) > 0.4 * max(len(even), 1)


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
    error row; blank lines are ignored. Quoted fields may span lines; a row's line is where it starts.

    A quote that is never closed swallows every line after it, and one left open until a later quote
    closes it mid-value swallows the lines between: such a row becomes an error row naming the line of
    the quote and the lines it swallowed. A row whose fields do not fit the header because a quoted value
    ran across lines says which lines were read together.

    Raises:
        ImportFormatError: no header, or a row the CSV reader cannot read at all (e.g. an unclosed quote
            whose value outgrows the reader's field limit; the message names the quote's line).
    """
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = delimiter or _guess_delimiter(first_line)
    physical = io.StringIO(text, newline="").readlines()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers: list[str] | None = None
    rows: list[SourceRow] = []
    consumed = 0  # physical lines read so far
    try:
        for record in reader:
            start, consumed = consumed + 1, reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            quotes = _quoted_spans(physical, start, consumed, delimiter) if consumed > start else []
            broken = _broken_quote(quotes, start, consumed)
            if broken:
                rows.append(SourceRow(start, {}, broken))
                continue
            if headers is None:
                headers = _unique_headers(record)
                continue
            if len(record) != len(headers):
                reason = f"has {len(record)} fields but the header has {len(headers)}"
                if quotes:
                    opened, closed, _ = quotes[0]
                    reason += (f"; the quoted value opened on line {opened} runs to line {closed}, so lines "
                               f"{start}–{consumed} were read as one row (a missing or extra quote?)")
                rows.append(SourceRow(start, {}, reason))
                continue
            rows.append(SourceRow(start, dict(zip(headers, record, strict=True))))
    except csv.Error as exc:
        start = consumed + 1
        spans = _quoted_spans(physical, start, len(physical), delimiter)
        unclosed = next((opened for opened, closed, _ in spans if closed is None), None)
        if unclosed is not None:
            raise ImportFormatError(
                f"{name}, line {unclosed}: a quote opened here is never closed, so the rest of the file "
                f"(lines {start}–{len(physical)}) reads as one value ({exc}); close the quote.") from exc
        raise ImportFormatError(f"{name}, line {reader.line_num}: cannot read the CSV ({exc}).") from exc
    if headers is None:
        raise ImportFormatError(f"{name} is empty: expected a header line with column names.")
    return Table(name=name, columns=headers, rows=rows, kind="csv")


def _broken_quote(quotes: Sequence[tuple[int, int | None, bool]], start: int, end: int) -> str | None:
    """Why the record on lines ``start``-``end`` is a quoting accident, or ``None``: a quote never closed
    (it swallowed the rest of the file), or one closed in the middle of a value (``Eve,"Ops",`` on a
    later line closed a quote left open on an earlier one)."""
    for opened, closed, clean in quotes:
        if closed is None:
            return (f"the quote opened on line {opened} is never closed, so lines {start}–{end} were read as "
                    "one row and not imported; close the quote (or remove it) and import again")
        if not clean:
            return (f"the quote opened on line {opened} is closed on line {closed} in the middle of a value, "
                    f"so lines {start}–{end} were read as one row and not imported; is a closing quote "
                    f"missing on line {opened}?")
    return None


def _quoted_spans(
    lines: Sequence[str], first: int, last: int, delimiter: str
) -> list[tuple[int, int | None, bool]]:
    """The quoted values of the record on physical ``lines[first-1:last]`` (1-based lines) that run across
    lines: ``(line of the opening quote, line of the closing quote or None when it never closes, whether
    the closing quote ends the field)``.

    Follows the ``csv`` module's rules: a quote opens a quoted value only at the start of a field, and
    ``""`` inside one is an escaped quote.
    """
    spans: list[tuple[int, int | None, bool]] = []
    in_quote, field_start, opened = False, True, 0
    for number in range(first, last + 1):
        line = lines[number - 1]
        i = 0
        while i < len(line):
            char = line[i]
            if in_quote:
                if char == '"':
                    if line[i + 1:i + 2] == '"':
                        i += 1
                    else:
                        in_quote = False
                        if number != opened:
                            clean = line[i + 1:i + 2] in ("", delimiter, "\r", "\n")
                            spans.append((opened, number, clean))
            elif char == '"' and field_start:
                in_quote, opened = True, number
            field_start = not in_quote and char in (delimiter, "\r", "\n")
            i += 1
    if in_quote:
        spans.append((opened, None, False))
    return spans


# --- JSON and JSONL --------------------------------------------------------------------------------


def read_jsonl_text(text: str, *, name: str) -> Table:
    """Rows of JSON Lines ``text``: one object per line; a line that is not a JSON object is an error row.

    Raises:
        ImportFormatError: no line holds a JSON object (nothing could be imported).
    """
    rows: list[SourceRow] = []
    found: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append(SourceRow(number, {}, f"not valid JSON ({exc.msg})"))
            continue
        if not isinstance(value, dict):
            found.append(_json_type(value))
            rows.append(SourceRow(number, {}, f"expected a JSON object, found {_json_type(value)}"))
            continue
        rows.append(SourceRow(number, value))
    if found and len(found) == len(rows):
        raise ImportFormatError(_not_objects(name, found, "lines"))
    return Table.from_rows(name, rows, kind="jsonl")


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type: ``number``, ``string``, ``list``, ``object``, ..."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return "an object"


def _not_objects(name: str, found: Sequence[str], what: str) -> str:
    kinds = ", ".join(dict.fromkeys(found))
    return (f"{name}: the {what} are not JSON objects (found {kinds}), so there is nothing to import. "
            'Each one must be an object with named fields, e.g. {"name": "Ann Lee", "bio": "..."}.')


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
        raise ImportFormatError(f"{name}: expected a list of objects, found {_json_type(document)}.")
    per_line = Counter(line for line, _ in items)
    rows = [
        SourceRow(line, value, item=number if per_line[line] > 1 else None) if isinstance(value, dict)
        else SourceRow(line, {}, f"expected an object, found {_json_type(value)}",
                       item=number if per_line[line] > 1 else None)
        for number, (line, value) in enumerate(items, start=1)
    ]
    if items and not any(isinstance(value, dict) for _, value in items):
        raise ImportFormatError(_not_objects(name, [_json_type(v) for _, v in items], "items of the list"))
    return Table.from_rows(name, rows, kind="json")


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

    A truncated or spliced feed keeps its complete events: a VEVENT that is never closed becomes an error
    row at its BEGIN line, and a missing END:VCALENDAR a :class:`FileNote` (see
    :func:`_repair_components`).

    Raises:
        ImportFormatError: the text is no iCalendar at all (no BEGIN:VCALENDAR) or does not parse.
    """
    import icalendar

    lines = text.splitlines()
    if not any(line.strip().upper() == "BEGIN:VCALENDAR" for line in lines):
        raise ImportFormatError(f"{name} is not an iCalendar file: it has no BEGIN:VCALENDAR line.")
    repaired, numbers, broken, notes = _repair_components(lines)
    try:
        calendars = icalendar.Calendar.from_ical("\n".join(repaired) + "\n", multiple=True)
    except ValueError as exc:
        raise ImportFormatError(f"{name} is not a valid iCalendar file ({exc}).") from exc
    starts = [n for n, line in zip(numbers, repaired, strict=True) if line.strip().upper() == "BEGIN:VEVENT"]
    events = [event for calendar in calendars for event in calendar.walk("VEVENT")]
    rows: list[SourceRow] = []
    for index, event in enumerate(events):
        line = starts[index] if index < len(starts) else 0
        rows.append(_ics_row(event, line))
    rows = sorted([*rows, *broken], key=lambda row: row.line)
    return Table(name=name, columns=list(ICS_COLUMNS), rows=rows, kind="ics", notes=notes)


def _repair_components(lines: list[str]) -> tuple[list[str], list[int], list[SourceRow], list[FileNote]]:
    """Drop the components of an iCalendar text that are never closed, so the parser keeps the rest.

    ``icalendar`` silently drops a whole calendar when one of its components lacks its END line (a
    truncated download, two feeds pasted together), so the structure is checked here first. A component
    is unclosed when the file ends inside it, when the END of an enclosing component comes first, or when
    a component of the same kind begins inside it (a VEVENT cannot hold a VEVENT). Its lines are left
    out; an unclosed VCALENDAR is closed instead. A stray END line without its BEGIN is left out too.

    Returns:
        The lines to parse, the 1-based line in ``lines`` of each line kept (``-1`` for an added END),
        an error row per unclosed VEVENT (at its BEGIN line) and a note per other repair.
    """
    keep = [True] * len(lines)
    broken: list[SourceRow] = []
    notes: list[FileNote] = []
    stack: list[tuple[str, int]] = []
    end = len(lines)

    def drop(component: str, begin: int, last: int, why: str) -> None:
        for n in range(begin, last + 1):
            keep[n - 1] = False
        what = f"{why}, so lines {begin}–{last} were not imported"
        if component == "VEVENT":
            broken.append(SourceRow(begin, {}, f"incomplete event: {what}"))
        else:
            notes.append(FileNote(begin, f"incomplete {component}: {what}"))

    def unwind(until: str, number: int, why: str) -> None:
        while stack and stack[-1][0] != until:
            component, begin = stack.pop()
            drop(component, begin, number - 1, why.format(component=component))

    for number, line in enumerate(lines, start=1):
        if line[:1] in (" ", "\t"):  # folded continuation
            continue
        upper = line.strip().upper()
        if upper.startswith("BEGIN:"):
            name = upper[6:]
            if any(component == name for component, _ in stack):  # the earlier one was never closed
                unwind(name, number, f"BEGIN:{name} on line {number} comes before its END:{{component}}")
                component, begin = stack.pop()
                drop(component, begin, number - 1,
                     f"BEGIN:{name} on line {number} comes before its END:{component}")
            stack.append((name, number))
        elif upper.startswith("END:"):
            name = upper[4:]
            if not any(component == name for component, _ in stack):
                keep[number - 1] = False
                notes.append(FileNote(number, f"END:{name} without a BEGIN:{name} before it; line ignored"))
                continue
            unwind(name, number, f"END:{name} on line {number} comes before its END:{{component}}")
            stack.pop()
    calendars = 0
    while stack:
        component, begin = stack.pop()
        if component == "VCALENDAR":
            calendars += 1
            notes.append(FileNote(begin, f"the VCALENDAR begun here is never closed: the file ends at line "
                                         f"{end} without END:VCALENDAR (is it truncated?); the complete "
                                         "events before that were read"))
        else:
            drop(component, begin, end,
                 f"the file ends at line {end} before END:{component} (is it truncated?)")
    numbers = [n for n in range(1, end + 1) if keep[n - 1]] + [-1] * calendars
    kept = [lines[n - 1] for n in numbers if n > 0] + ["END:VCALENDAR"] * calendars
    broken.sort(key=lambda row: row.line)
    notes.sort(key=lambda note: note.line)
    return kept, numbers, broken, notes


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
