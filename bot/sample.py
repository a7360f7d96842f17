"""The small bilingual sample community that ships with the product (``data/sample/``).

``members.csv`` (24 founders and experts, half English, half Chinese), ``resources.csv`` (16 guides,
programmes and templates) and ``events.json`` (8 events whose dates are relative to the day the sample is
loaded, so a demo always has upcoming events) are imported with the ordinary importers, keyed under the
source tag ``sample``: loading the sample again creates nothing new (events move with ``now``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from sqlmodel import Session

import bot
from bot.errors import CommunityBotError
from bot.importers import ImportReport, import_event_table, import_members, import_resources, read_table
from bot.importers.sources import SourceRow, Table
from bot.models import Community

SAMPLE_SOURCE = "sample"


def sample_dir() -> Path:
    """The folder of the shipped sample: ``<repository>/data/sample``.

    Raises:
        CommunityBotError: the folder or one of its files is missing (e.g. an install without ``data/``).
    """
    folder = Path(bot.__file__).resolve().parent.parent / "data" / "sample"
    missing = [n for n in ("members.csv", "resources.csv", "events.json") if not (folder / n).is_file()]
    if missing:
        raise CommunityBotError(
            f"The sample community is not installed: {', '.join(missing)} missing from {folder}. "
            "Run from a checkout of the repository, which ships data/sample/."
        )
    return folder


@dataclass
class SampleReport:
    """What :func:`load_sample_community` did, one :class:`ImportReport` per kind."""

    members: ImportReport
    resources: ImportReport
    events: ImportReport

    @property
    def reports(self) -> tuple[ImportReport, ImportReport, ImportReport]:
        """The three reports: members, resources, events."""
        return (self.members, self.resources, self.events)

    @property
    def created(self) -> int:
        """Rows created, all kinds together."""
        return sum(r.created for r in self.reports)

    @property
    def updated(self) -> int:
        """Rows updated (sample events move with ``now``), all kinds together."""
        return sum(r.updated for r in self.reports)

    @property
    def unchanged(self) -> int:
        """Rows left as they were, all kinds together."""
        return sum(r.unchanged for r in self.reports)

    def __str__(self) -> str:
        """One line, e.g. ``24 members, 16 resources, 8 events (48 created, 0 updated, 0 unchanged)``."""
        sizes = ", ".join(f"{r.imported} {r.kind}" for r in self.reports)
        return f"{sizes} ({self.created} created, {self.updated} updated, {self.unchanged} unchanged)"

    def to_dict(self) -> dict[str, Any]:
        """``{"created", "updated", "unchanged", "members": {...}, "resources": {...}, "events": {...}}``."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            **{r.kind: r.to_dict() for r in self.reports},
        }


def _dated_row(row: SourceRow, *, today: date, tz: tzinfo) -> SourceRow:
    """Turn ``days_from_now`` / ``time`` / ``duration_minutes`` into ``starts_at`` / ``ends_at``."""
    if row.error:
        return row
    values = dict(row.values)
    try:
        day = today + timedelta(days=int(values.pop("days_from_now")))
        clock = values.pop("time", None)
        duration = values.pop("duration_minutes", None)
        if clock:
            starts_at = datetime.combine(day, time.fromisoformat(str(clock)), tzinfo=tz)
            values["starts_at"] = starts_at
            if duration:
                values["ends_at"] = starts_at + timedelta(minutes=int(duration))
        else:
            values["starts_at"] = day
    except (KeyError, TypeError, ValueError, OverflowError) as exc:  # OverflowError: a huge day count
        return SourceRow(row.line, {}, f"bad days_from_now / time / duration_minutes ({exc})")
    return SourceRow(row.line, values)


def load_sample_community(
    session: Session, *, community: Community, tz: tzinfo, now: datetime, directory: Path | None = None
) -> SampleReport:
    """Import the sample members, resources and events into ``community`` (idempotent).

    Args:
        tz: the community's time zone; event times (``"19:00"``) are local to it.
        now: an aware datetime; events happen ``days_from_now`` days after ``now``'s date in ``tz``.
        directory: another sample folder with the same three files (default :func:`sample_dir`).

    Returns:
        A :class:`SampleReport`; a second load at the same ``now`` reports everything unchanged.

    Raises:
        CommunityBotError: the sample files are missing or cannot be mapped.
    """
    folder = directory or sample_dir()
    members = import_members(session, community=community, path=folder / "members.csv", consent=True,
                             source=SAMPLE_SOURCE)
    resources = import_resources(session, community=community, path=folder / "resources.csv",
                                 source=SAMPLE_SOURCE)
    raw = read_table(folder / "events.json")
    today = now.astimezone(tz).date()
    table = Table.from_rows(raw.name, [_dated_row(r, today=today, tz=tz) for r in raw.rows])
    events = import_event_table(session, community=community, table=table, tz=tz, source=SAMPLE_SOURCE)
    return SampleReport(members=members, resources=resources, events=events)
