"""retraining runs and the admin audit log

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 16:07:16

``training_run.active`` is 1 while a run is queued or running and NULL afterwards: its unique constraint
lets one run be in progress at a time (NULLs never conflict, on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('admin_action',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('actor', sqlmodel.AutoString(length=250), nullable=False),
    sa.Column('action', sqlmodel.AutoString(length=40), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['community.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('admin_action', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_action_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_admin_action_created_at'), ['created_at'], unique=False)

    op.create_table('training_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('requested_by', sqlmodel.AutoString(length=250), nullable=False),
    sa.Column('platform', sqlmodel.AutoString(length=20), nullable=False),
    sa.Column('conversation', sqlmodel.AutoString(length=200), nullable=False),
    sa.Column('language', sqlmodel.AutoString(length=10), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('status', sqlmodel.AutoString(length=20), nullable=False),
    sa.Column('active', sa.Integer(), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('version', sqlmodel.AutoString(), nullable=False),
    sa.Column('previous_version', sqlmodel.AutoString(), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('error', sqlmodel.AutoString(), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['community_id'], ['community.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('active')
    )
    with op.batch_alter_table('training_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_run_community_id'), ['community_id'], unique=False)

    with op.batch_alter_table('notification', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('attachment', sqlmodel.AutoString(), nullable=False, server_default=""))



def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('attachment')

    with op.batch_alter_table('training_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_run_community_id'))

    op.drop_table('training_run')
    with op.batch_alter_table('admin_action', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_action_created_at'))
        batch_op.drop_index(batch_op.f('ix_admin_action_community_id'))

    op.drop_table('admin_action')
