"""Importers: members and resources from CSV / JSONL / JSON, events from iCalendar and JSON.

Public API::

    import_members(session, *, community, path, mapping=None, key=None, consent=True, progress=False,
                   source=None) -> ImportReport
    import_resources(session, *, community, path, mapping=None, key=None, progress=False,
                     source=None) -> ImportReport
    import_events(session, *, community, path, tz, mapping=None, key=None, progress=False,
                  source=None) -> ImportReport
    parse_map_options(["name=company_name", "bio=a+b"]) -> {"name": "company_name", "bio": "a+b"}

All share one engine (:mod:`bot.importers.tabular`); the column mapping lives in
:mod:`bot.importers.mapping`, file reading in :mod:`bot.importers.sources`, the rule for links (shared
with ``/resource add``) in :mod:`bot.importers.links`. A report lists skipped rows and warnings (values left
out of imported rows, repairs of a truncated file) with their line numbers.
"""

from bot.importers.events import import_event_table, import_events, parse_when
from bot.importers.mapping import EVENT_SPEC, MEMBER_SPEC, RESOURCE_SPEC, parse_map_options, resolve_mapping
from bot.importers.report import ImportReport, ImportWarning, MergedRow, SkippedRow
from bot.importers.sources import Table, read_table
from bot.importers.tabular import import_members, import_resources, import_table

__all__ = [
    "EVENT_SPEC",
    "MEMBER_SPEC",
    "RESOURCE_SPEC",
    "ImportReport",
    "ImportWarning",
    "MergedRow",
    "SkippedRow",
    "Table",
    "import_event_table",
    "import_events",
    "import_members",
    "import_resources",
    "import_table",
    "parse_map_options",
    "parse_when",
    "read_table",
    "resolve_mapping",
]
