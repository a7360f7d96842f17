"""scheduled work: the durable notification outbox, introductions, routed questions, event reminders,
members' opt-ins and onboarding state

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 15:41:32

``member`` and ``event`` gain columns with plain ``ALTER TABLE`` (``recreate='never'``: rebuilding them on
SQLite would fail their foreign keys and drop their match-version triggers; SQLite 3.35+ drops columns in
place); the triggers are still checked afterwards (migration 0003).
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('introduction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('member_a_id', sa.Integer(), nullable=False),
    sa.Column('member_b_id', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.AutoString(length=20), nullable=False),
    sa.Column('answer_a', sqlmodel.AutoString(length=10), nullable=False),
    sa.Column('answer_b', sqlmodel.AutoString(length=10), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('introduced_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('checked_back_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('helped', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['community_id'], ['community.id'], ),
    sa.ForeignKeyConstraint(['member_a_id'], ['member.id'], ),
    sa.ForeignKeyConstraint(['member_b_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('community_id', 'member_a_id', 'member_b_id', name='uq_intro_pair')
    )
    with op.batch_alter_table('introduction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_introduction_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_introduction_member_a_id'), ['member_a_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_introduction_member_b_id'), ['member_b_id'], unique=False)

    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.AutoString(length=300), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.AutoString(length=30), nullable=False),
    sa.Column('platform', sqlmodel.AutoString(length=20), nullable=False),
    sa.Column('conversation', sqlmodel.AutoString(length=200), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('text', sqlmodel.AutoString(), nullable=False),
    sa.Column('language', sqlmodel.AutoString(length=10), nullable=False),
    sa.Column('buttons', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.AutoString(length=20), nullable=False),
    sa.Column('due_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sqlmodel.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['community.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notification_status'), ['status'], unique=False)

    op.create_table('question_route',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('message_log_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.AutoString(length=20), nullable=False),
    sa.Column('answer', sqlmodel.AutoString(), nullable=False),
    sa.Column('asked_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', bot.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resource_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['community_id'], ['community.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.ForeignKeyConstraint(['message_log_id'], ['messagelog.id'], ),
    sa.ForeignKeyConstraint(['resource_id'], ['resource.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_log_id', 'member_id', name='uq_question_route')
    )
    with op.batch_alter_table('question_route', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_question_route_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_question_route_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_question_route_message_log_id'), ['message_log_id'],
                              unique=False)

    with op.batch_alter_table('event', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('reminders', sa.JSON(), nullable=True))

    with op.batch_alter_table('member', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('consent_event_alerts', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('consent_questions', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('intro_opt_out', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('intro_snooze_until', bot.models.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('onboarding', sqlmodel.AutoString(length=20), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column('welcomed_at', bot.models.UTCDateTime(timezone=True), nullable=True))

    _match_version_triggers()


def downgrade() -> None:
    with op.batch_alter_table('member', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('welcomed_at')
        batch_op.drop_column('onboarding')
        batch_op.drop_column('intro_snooze_until')
        batch_op.drop_column('intro_opt_out')
        batch_op.drop_column('consent_questions')
        batch_op.drop_column('consent_event_alerts')

    with op.batch_alter_table('event', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('reminders')

    _match_version_triggers()

    with op.batch_alter_table('question_route', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_question_route_message_log_id'))
        batch_op.drop_index(batch_op.f('ix_question_route_member_id'))
        batch_op.drop_index(batch_op.f('ix_question_route_community_id'))

    op.drop_table('question_route')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_status'))
        batch_op.drop_index(batch_op.f('ix_notification_member_id'))
        batch_op.drop_index(batch_op.f('ix_notification_due_at'))
        batch_op.drop_index(batch_op.f('ix_notification_community_id'))

    op.drop_table('notification')
    with op.batch_alter_table('introduction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_introduction_member_b_id'))
        batch_op.drop_index(batch_op.f('ix_introduction_member_a_id'))
        batch_op.drop_index(batch_op.f('ix_introduction_community_id'))

    op.drop_table('introduction')


def _match_version_triggers() -> None:
    importlib.import_module("bot.migrations.versions.0003_match_version").create_triggers()
