"""The outcome of one import: counts, skipped rows with their line numbers, and the mapping used."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SkippedRow:
    """A row that was not imported. ``line`` is the 1-based line of the file where the row starts
    (a CSV header is line 1); ``reason`` says what to fix."""

    line: int
    reason: str


@dataclass(frozen=True)
class MergedRow:
    """A row whose key repeats an earlier row of the same file (``into_line``); it was merged into it."""

    line: int
    into_line: int


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        kind: ``members``, ``resources`` or ``events``.
        source: the tag prefixed to every external key of this file (its name without extension).
        created / updated / unchanged: rows inserted, rows whose stored values changed, rows left as they
            were (their ``updated_at`` is not bumped).
        skipped: rows not imported, with line numbers and reasons.
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
    mapping: dict[str, str] = field(default_factory=dict)
    alternatives: dict[str, list[str]] = field(default_factory=dict)
    key: str = ""
    unused_columns: list[str] = field(default_factory=list)

    @property
    def imported(self) -> int:
        """Rows now stored from this file: created + updated + unchanged."""
        return self.created + self.updated + self.unchanged

    def skip(self, line: int, reason: str) -> None:
        """Record that the row starting at ``line`` was skipped because of ``reason``."""
        self.skipped.append(SkippedRow(line=line, reason=reason))

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``--json``: ``{"created", "updated", "unchanged", "skipped": [{"line",
        "reason"}], "mapping", "alternatives", "key", "merged": [{"line", "into_line"}], "unused_columns",
        "kind", "source"}``."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": [{"line": s.line, "reason": s.reason} for s in self.skipped],
            "mapping": dict(self.mapping),
            "alternatives": {k: list(v) for k, v in self.alternatives.items()},
            "key": self.key,
            "merged": [{"line": m.line, "into_line": m.into_line} for m in self.merged],
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
        lines.append(
            f"{self.kind.capitalize()}: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.skipped)} skipped."
        )
        for m in self.merged:
            lines.append(f"  line {m.line}: same key as line {m.into_line}, merged into it")
        for s in self.skipped:
            lines.append(f"  line {s.line}: skipped: {s.reason}")
        return lines
