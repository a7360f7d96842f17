"""match_version: bump only for writes that can change an index

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 19:00:00

The triggers of 0003 bumped the (community, kind) counter on every write to ``member``, ``resource`` and
``event``. A member's first message creates a member who is not suggested to anyone (``consent_suggest``
false), and the bump took the counter row's lock until the message's transaction committed: under load
(``bench/load.py``: 600 new members writing at once, two processes) every first contact waited for the
previous one, and every process re-checked its index after each. Now a write bumps the counter only when the
row is, or was, in the index: a member with ``consent_suggest``, a ``scheduled`` event, any resource
(:func:`matching.documents.indexable_clause`; keep the two in step). One trigger per table and operation,
since an INSERT trigger may not read ``OLD`` (PostgreSQL) and SQLite has one event per trigger anyway.
"""

from __future__ import annotations

import importlib

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

#: When a row counts for the index, as SQL over the row ``{r}`` (``NEW`` or ``OLD``).
INDEXED = {
    "member": "{r}.consent_suggest",
    "event": "{r}.status = 'scheduled'",
    "resource": "",
}
OPERATIONS = (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",)))


def _when(table: str, rows: tuple[str, ...]) -> str:
    condition = INDEXED[table]
    if not condition:
        return ""
    return "WHEN (" + " OR ".join(condition.format(r=r) for r in rows) + ")"


def _drop_0003_triggers(dialect: str) -> None:
    for table in INDEXED:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_match_version ON {table}")
        for event, _ in OPERATIONS:
            name = f"{table}_match_version_{event.lower()}"
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}" if dialect == "postgresql"
                       else f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _drop_0003_triggers(dialect)
    for table in INDEXED:
        for event, rows in OPERATIONS:
            name = f"{table}_match_version_{event.lower()}"
            when = _when(table, rows)
            if dialect == "postgresql":  # bump_match_version() of 0003 bumps OLD's and/or NEW's community
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW {when} "
                           "EXECUTE FUNCTION bump_match_version()")
                continue
            body = " ".join(
                f"INSERT INTO match_version (community_id, kind, version) "
                f"VALUES ({r}.community_id, '{table}', 1) "
                "ON CONFLICT (community_id, kind) DO UPDATE SET version = version + 1;" for r in rows)
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW {when} "
                       f"BEGIN {body} END")


def downgrade() -> None:
    _drop_0003_triggers(op.get_bind().dialect.name)
    importlib.import_module("bot.migrations.versions.0003_match_version").create_triggers()
