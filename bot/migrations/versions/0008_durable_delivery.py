"""durable delivery: bot processes, claimed messages, journalled replies

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 18:40:00

Messages logged before this revision were all handled: their ``handled_at`` is their ``created_at``, so
no process ever takes them over.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bot_process',
    sa.Column('id', sqlmodel.AutoString(length=40), nullable=False),
    sa.Column('host', sqlmodel.AutoString(length=200), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('bot_process', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bot_process_heartbeat_at'), ['heartbeat_at'], unique=False)

    with op.batch_alter_table('messagelog', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner', sqlmodel.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('payload', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('handled_at', bot.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_messagelog_owner'), ['owner'], unique=False)
    op.execute("UPDATE messagelog SET handled_at = created_at")

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('thread', sqlmodel.AutoString(length=64), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('owner', sqlmodel.AutoString(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('owner')
        batch_op.drop_column('thread')

    with op.batch_alter_table('messagelog', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messagelog_owner'))
        batch_op.drop_column('handled_at')
        batch_op.drop_column('payload')
        batch_op.drop_column('owner')

    with op.batch_alter_table('bot_process', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bot_process_heartbeat_at'))

    op.drop_table('bot_process')
