"""The outcome of one import: counts, skipped rows with their line numbers, and the mapping used."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def where(line: int, item: int | None = None) -> str:
    """``line 4``, or ``line 1, item 3`` for an item of a JSON list whose items share a line."""
    return f"line {line}" if item is None else f"line {line}, item {item}"


@dataclass(frozen=True)
class SkippedRow:
    """A row that was not imported. ``line`` is the 1-based line of the file where the row starts
    (a CSV header is line 1); ``item`` its position in a JSON list whose items share lines; ``reason``
    says what to fix."""

    line: int
    reason: str
    item: int | None = None


@dataclass(frozen=True)
class MergedRow:
    """A row whose key repeats an earlier row of the same file (``into_line``); it was merged into it."""

    line: int
    into_line: int
    item: int | None = None
    into_item: int | None = None


@dataclass(frozen=True)
class ImportWarning:
    """Something left out or repaired without losing the row (or any row): an invalid URL dropped from a
    row that was imported, a missing END:VCALENDAR. ``line`` (and ``item``) as for :class:`SkippedRow`."""

    line: int
    message: str
    item: int | None = None


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        kind: ``members``, ``resources`` or ``events``.
        source: the tag prefixed to every external key of this file (its name without extension).
        created / updated / unchanged: rows inserted, rows whose stored values changed, rows left as they
            were (their ``updated_at`` is not bumped).
        skipped: rows not imported, with line numbers and reasons.
        warnings: values left out of rows that were imported (an invalid URL), and repairs of the file.
        merged: rows that repeated an earlier row's key and were merged into it.
        mapping: field -> source column(s), joined with ``+``
            (``{"bio": "short_description+long_description"}``).
        alternatives: field -> other columns used, in order, for rows where the mapped ones are empty.
        key: how rows are keyed, e.g. ``column company_id`` or ``fields name+url``.
        unused_columns: columns of the file that no field uses.
    """

    kind: str
    source: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)
    merged: list[MergedRow] = field(default_factory=list)
    warnings: list[ImportWarning] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    alternatives: dict[str, list[str]] = field(default_factory=dict)
    key: str = ""
    unused_columns: list[str] = field(default_factory=list)

    @property
    def imported(self) -> int:
        """Rows now stored from this file: created + updated + unchanged."""
        return self.created + self.updated + self.unchanged

    def skip(self, line: int, reason: str, item: int | None = None) -> None:
        """Record that the row starting at ``line`` (JSON list ``item``) was skipped because of ``reason``."""
        self.skipped.append(SkippedRow(line=line, reason=reason, item=item))

    def warn(self, line: int, message: str, item: int | None = None) -> None:
        """Record a warning about the row starting at ``line`` (or about the file at that line)."""
        self.warnings.append(ImportWarning(line=line, message=message, item=item))

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``--json``: ``{"created", "updated", "unchanged", "skipped": [{"line",
        "reason"}], "warnings": [{"line", "message"}], "mapping", "alternatives", "key", "merged":
        [{"line", "into_line"}], "unused_columns", "kind", "source"}``. Entries about an item of a JSON
        list whose items share a line also have ``"item"`` (and merged ones ``"into_item"``)."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": [_with_items({"line": s.line, "reason": s.reason}, item=s.item) for s in self.skipped],
            "warnings": [_with_items({"line": w.line, "message": w.message}, item=w.item)
                         for w in self.warnings],
            "mapping": dict(self.mapping),
            "alternatives": {k: list(v) for k, v in self.alternatives.items()},
            "key": self.key,
            "merged": [_with_items({"line": m.line, "into_line": m.into_line}, item=m.item,
                                   into_item=m.into_item) for m in self.merged],
            "unused_columns": list(self.unused_columns),
            "kind": self.kind,
            "source": self.source,
        }

    def summary_lines(self) -> list[str]:
        """Human-readable lines: the mapping, the counts, then merged and skipped rows with line numbers."""
        lines = ["Mapping:"]
        for name, cols in self.mapping.items():
            line = f"  {name} <- {' + '.join(cols.split('+'))}"
            if self.alternatives.get(name):
                line += f"  (else {' / '.join(self.alternatives[name])})"
            lines.append(line)
        if self.key:
            lines.append(f"  key <- {self.key}")
        if self.unused_columns:
            lines.append(f"  (unused columns: {', '.join(self.unused_columns)})")
        counts = (f"{self.kind.capitalize()}: {self.created} created, {self.updated} updated, "
                  f"{self.unchanged} unchanged, {len(self.skipped)} skipped")
        lines.append(counts + (f", {len(self.warnings)} warning{'s' * (len(self.warnings) != 1)}."
                               if self.warnings else "."))
        for m in self.merged:
            lines.append(f"  {where(m.line, m.item)}: same key as {where(m.into_line, m.into_item)}, "
                         "merged into it")
        for s in self.skipped:
            lines.append(f"  {where(s.line, s.item)}: skipped: {s.reason}")
        for w in self.warnings:
            lines.append(f"  {where(w.line, w.item)}: warning: {w.message}")
        return lines


def _with_items(entry: dict[str, Any], **items: int | None) -> dict[str, Any]:
    """``entry`` plus the ``items`` that are set (JSON list positions)."""
    return {**entry, **{k: v for k, v in items.items() if v is not None}}
