"""slack installations and OAuth states

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 14:05:25.987501

Workspaces installed through OAuth (bot token, ids, the community each belongs to) and the one-time OAuth
``state`` values, shared by every process of a deployment.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

import bot.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_oauth_state",
        sa.Column("state", AutoString(length=100), nullable=False),
        sa.Column("expires_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state"),
    )
    op.create_table(
        "slack_installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", AutoString(length=40), nullable=False),
        sa.Column("enterprise_id", AutoString(length=40), nullable=True),
        sa.Column("team_name", AutoString(), nullable=False),
        sa.Column("app_id", AutoString(), nullable=False),
        sa.Column("bot_token", AutoString(), nullable=False),
        sa.Column("bot_id", AutoString(), nullable=False),
        sa.Column("bot_user_id", AutoString(), nullable=False),
        sa.Column("bot_scopes", AutoString(), nullable=False),
        sa.Column("installer_user_id", AutoString(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("installed_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id"),
    )
    with op.batch_alter_table("slack_installation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_slack_installation_community_id"), ["community_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("slack_installation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slack_installation_community_id"))

    op.drop_table("slack_installation")
    op.drop_table("slack_oauth_state")
