"""Importing events from iCalendar feeds (``.ics``) and from JSON / JSONL / CSV event lists.

Times: an iCalendar time with a zone (TZID or UTC) keeps it; floating times and JSON/CSV times without a
zone are read in the given zone (the community's, :attr:`bot.community.CommunitySettings.zone`). All-day
events (a date without a time) start at 00:00 local time; a date-only end is the last day included, so the
event ends at 00:00 local the day after. Every stored time is aware.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import parser as dateparser
from sqlmodel import Session

from bot.importers.mapping import EVENT_SPEC
from bot.importers.report import ImportReport
from bot.importers.sources import Table, read_table
from bot.importers.tabular import KeyOption, MapOption, RowError, import_table, source_tag
from bot.models import Community, Event, EventStatus

_CANCELLED = {"cancelled", "canceled", "已取消", "取消"}


def parse_when(value: date | datetime | str, *, tz: tzinfo) -> tuple[datetime, bool]:
    """An aware datetime from a date, a datetime or text, and whether it was a date without a time.

    Text is read as ISO 8601 first (``2026-03-01``, ``2026-03-01T19:00``, ``...+08:00``), then by
    ``dateutil`` (``1 March 2026 7pm``). Naive values are read in ``tz``; dates become 00:00 in ``tz``.

    Raises:
        RowError: text that is not a date.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text)
        except ValueError:
            try:
                value = dateparser.isoparse(text)
            except ValueError:
                try:
                    value = dateparser.parse(text)
                except (ValueError, OverflowError) as exc:
                    raise RowError(f"{text!r} is not a date or time") from exc
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)), False
    return datetime.combine(value, time(0), tzinfo=tz), True


def _zone_name(moment: datetime, fallback: tzinfo) -> str:
    for zone in (moment.tzinfo, fallback):
        name = getattr(zone, "key", None)
        if name:
            return str(name)
        if zone is not None and zone.utcoffset(None) == timedelta(0) and str(zone) in ("UTC", "UTC+00:00"):
            return "UTC"
    return "UTC"


def event_finisher(tz: tzinfo) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The per-row step of event imports: parse ``starts_at``/``ends_at`` in ``tz`` (see the module
    docstring), set ``timezone`` (the IANA name of the start's zone) and ``status`` (``cancelled`` when the
    source says so, else ``scheduled``).

    Raises (per row):
        RowError: no start, an unreadable date, or an end before the start.
    """

    def finish(values: dict[str, Any]) -> dict[str, Any]:
        raw_start = values.get("starts_at")
        if raw_start is None:
            raise RowError("no start date")
        starts_at, all_day = parse_when(raw_start, tz=tz)
        raw_end = values.get("ends_at")
        ends_at: datetime | None = None
        if raw_end is not None:
            ends_at, end_is_date = parse_when(raw_end, tz=tz)
            if end_is_date:
                ends_at = datetime.combine(ends_at.date() + timedelta(days=1), time(0), tzinfo=ends_at.tzinfo)
        elif all_day:
            ends_at = datetime.combine(starts_at.date() + timedelta(days=1), time(0), tzinfo=starts_at.tzinfo)
        if ends_at is not None and ends_at < starts_at:
            raise RowError(f"ends ({ends_at:%Y-%m-%d %H:%M}) before it starts ({starts_at:%Y-%m-%d %H:%M})")
        status = str(values.get("status") or "").strip().casefold()
        values.update(
            starts_at=starts_at,
            ends_at=ends_at,
            timezone=_zone_name(starts_at, tz),
            status=EventStatus.CANCELLED if status in _CANCELLED else EventStatus.SCHEDULED,
        )
        return values

    return finish


def import_event_table(
    session: Session,
    *,
    community: Community,
    table: Table,
    tz: tzinfo,
    source: str,
    mapping: MapOption = None,
    key: KeyOption = None,
    progress: bool = False,
) -> ImportReport:
    """Import the rows of an already-read ``table`` as events (used by :func:`import_events` and the
    sample community). Arguments as for :func:`import_events`; ``source`` is required."""
    return import_table(
        session, community=community, table=table, spec=EVENT_SPEC, model=Event, source=source,
        mapping=mapping, key=key, finish=event_finisher(tz), progress=progress,
    )


def import_events(
    session: Session,
    *,
    community: Community,
    path: Path,
    tz: tzinfo | str,
    mapping: MapOption = None,
    key: KeyOption = None,
    progress: bool = False,
    source: str | None = None,
) -> ImportReport:
    """Import events from an iCalendar feed (``.ics``) or a JSON / JSONL / CSV list of events.

    Fields (``--map`` names): ``title`` (required; iCal SUMMARY, JSON ``name``/``title``/``summary``),
    ``start`` (required; DTSTART, ``startDate``/``start``/``starts_at``, or ``date+time`` columns), ``end``,
    ``description``, ``place`` (LOCATION, or ``city+country``), ``link`` (URL), ``capacity``, ``status``.
    JSON may be a list of objects or ``{"events": [...]}``. Rows are keyed by UID / ``id``, else by
    ``key``, else by title + start. Recurring iCal events are imported at their first occurrence.

    Args:
        tz: the zone of floating / zone-less times: a ``tzinfo`` or an IANA name (the community's zone).
        source: the key prefix; default the file name without extension.

    Raises:
        ImportFormatError: the file cannot be read or the title / start columns cannot be found.
        UsageError: a malformed ``mapping``.
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return import_event_table(
        session, community=community, table=read_table(path), tz=zone, source=source or source_tag(path),
        mapping=mapping, key=key, progress=progress,
    )
