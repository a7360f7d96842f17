"""Importing events from iCalendar feeds (``.ics``) and from JSON / JSONL / CSV event lists.

Times: an iCalendar time with a zone (TZID or UTC) keeps it; floating times and JSON/CSV times without a
zone are read in the given zone (the community's, :attr:`bot.community.CommunitySettings.zone`). All-day
events (a date without a time: iCalendar ``VALUE=DATE``, JSON ``"startDate": "2026-03-01"``) get
``Event.all_day`` and start at 00:00 local time; a date-only end is the last day included, so the event
ends at 00:00 local the day after. Every stored time is aware. ``Event.timezone`` is the zone the dates
were read in (the given zone), or the zone an iCalendar TZID names.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import parser as dateparser
from sqlmodel import Session

from bot.community import check_timezone
from bot.errors import UsageError
from bot.importers.mapping import EVENT_SPEC
from bot.importers.report import ImportReport
from bot.importers.sources import Table, read_table
from bot.importers.tabular import KeyOption, MapOption, RowError, import_table, source_tag
from bot.models import Community, Event, EventStatus

_CANCELLED = {"cancelled", "canceled", "已取消", "取消"}


#: Two defaults that differ in every field dateutil fills from its default: a part of the date or time that
#: comes out different under the two was not in the text.
_DEFAULTS = (datetime(2000, 1, 1, 0, 0, 0), datetime(2001, 2, 2, 1, 1, 1))


def _parse_text(text: str) -> date | datetime:
    """A ``date`` (text without a time) or a ``datetime`` from free text such as ``1 March 2026 7pm``.

    Raises:
        RowError: not a date, or a date without a day (``March 2026`` would otherwise fall on today's day
            of the month). A date without a year is in the current year.
    """
    try:
        first, second = (dateparser.parse(text, default=d) for d in _DEFAULTS)
    except (ValueError, OverflowError) as exc:
        raise RowError(f"{text!r} is not a date or time") from exc
    if (first.month, first.day) != (second.month, second.day):
        raise RowError(f"{text!r} is not a whole date (give the day and the month)")
    if first.year != second.year:  # "7 May 7pm": this year, as dateutil reads it by default
        try:
            first = first.replace(year=datetime.now().year)
        except ValueError as exc:  # 29 February
            raise RowError(f"{text!r} has no year and is not a date this year") from exc
    if first.hour != second.hour:  # no clock time given
        return first.date()
    minute = first.minute if first.minute == second.minute else 0  # "7pm": no minutes given
    second_ = first.second if first.second == second.second else 0
    return first.replace(minute=minute, second=second_)


def parse_when(value: date | datetime | str, *, tz: tzinfo) -> tuple[datetime, bool]:
    """An aware datetime from a date, a datetime or text, and whether it was a date without a time.

    Text is read as ISO 8601 first (``2026-03-01``, ``2026-03-01T19:00``, ``...+08:00``), then by
    ``dateutil`` (``1 March 2026 7pm``; ``1 March 2026`` is a date without a time). Naive values are read
    in ``tz``; dates become 00:00 in ``tz``.

    Raises:
        RowError: text that is not a date, or a date missing its day.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text)
        except ValueError:
            try:
                value = dateparser.isoparse(text)
            except (ValueError, OverflowError):
                value = _parse_text(text)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)), False
    return datetime.combine(value, time(0), tzinfo=tz), True


def _zone_name(zone: tzinfo | None) -> str | None:
    """The IANA name of ``zone`` (``Europe/Paris``), ``"UTC"`` for any form of UTC, else ``None`` (a bare
    offset such as ``+02:00`` names no zone)."""
    if zone is None:
        return None
    name = getattr(zone, "key", None)
    if name:
        return str(name)
    if zone.utcoffset(None) == timedelta(0) and str(zone) in ("UTC", "UTC+00:00", "tzutc()"):
        return "UTC"
    return None


def _event_zone(moment: datetime, read_in: tzinfo) -> str:
    """The zone an event is held in: the named zone its source gave (an iCalendar TZID), else the zone its
    dates were read in (``read_in``: the community's or ``--tz``). A time stamped UTC or with a bare offset
    names an instant, not a place, so it gets ``read_in`` too."""
    given = _zone_name(moment.tzinfo)
    if given and given != "UTC":
        return given
    return _zone_name(read_in) or "UTC"


def _next_midnight(moment: datetime) -> datetime:
    """00:00 of the day after ``moment``'s date, in its zone (the exclusive end of an all-day event)."""
    return datetime.combine(moment.date() + timedelta(days=1), time(0), tzinfo=moment.tzinfo)


def event_finisher(tz: tzinfo) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The per-row step of event imports: parse ``starts_at``/``ends_at`` in ``tz`` (see the module
    docstring), set ``all_day`` (the start is a date without a time), ``timezone`` (the IANA name of the
    zone the dates were read in: ``tz``, or the TZID an iCalendar time names) and ``status``
    (``cancelled`` when the source says so, else ``scheduled``).

    Raises (per row):
        RowError: no start, an unreadable date, a date beyond what can be stored, or an end before the
            start.
    """

    def finish(values: dict[str, Any]) -> dict[str, Any]:
        raw_start = values.get("starts_at")
        if raw_start is None:
            raise RowError("no start date")
        try:
            starts_at, all_day = parse_when(raw_start, tz=tz)
            raw_end = values.get("ends_at")
            ends_at: datetime | None = None
            if raw_end is not None:
                ends_at, end_is_date = parse_when(raw_end, tz=tz)
                if end_is_date:
                    ends_at = _next_midnight(ends_at)
            elif all_day:
                ends_at = _next_midnight(starts_at)
            for moment in (starts_at, ends_at):
                if moment is not None:
                    moment.astimezone(UTC)  # stored as UTC: year 1 in Shanghai or 9999 in New York overflow
        except OverflowError as exc:
            raise RowError(f"a date is out of range ({exc}): give one between the years 1 and 9999") from exc
        if ends_at is not None and ends_at < starts_at:
            raise RowError(f"ends ({ends_at:%Y-%m-%d %H:%M}) before it starts ({starts_at:%Y-%m-%d %H:%M})")
        status = str(values.get("status") or "").strip().casefold()
        values.update(
            starts_at=starts_at,
            ends_at=ends_at,
            timezone=_event_zone(starts_at, tz),
            all_day=all_day,
            status=EventStatus.CANCELLED if status in _CANCELLED else EventStatus.SCHEDULED,
        )
        return values

    return finish


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(check_timezone(name))
    except ValueError as exc:  # check_timezone's message: "unknown time zone 'x'; did you mean X?"
        reason = str(exc)
        raise UsageError(reason[0].upper() + reason[1:] + ("" if reason.endswith("?") else ".")) from exc


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
        tz: the zone of floating / zone-less times: a ``tzinfo`` or an IANA name (the community's zone);
            a misspelt name is refused with a suggestion (``asia/shanghai``: did you mean Asia/Shanghai?).
        source: the key prefix; default the file name without extension.

    Raises:
        ImportFormatError: the file cannot be read or the title / start columns cannot be found.
        UsageError: a malformed ``mapping``, or ``tz`` is not an IANA zone name.
    """
    zone = _zone(tz) if isinstance(tz, str) else tz
    return import_event_table(
        session, community=community, table=read_table(path), tz=zone, source=source or source_tag(path),
        mapping=mapping, key=key, progress=progress,
    )
