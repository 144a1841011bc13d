"""Experiments, their replications as runs, and what each replication measured.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec", JSONDocument, nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("replications_done", sa.Integer(), nullable=False),
        sa.Column("replications_planned", sa.Integer(), nullable=False),
        sa.Column("report", JSONDocument, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
    )
    op.create_index("ix_experiments_status", "experiments", ["status"])
    op.create_index("ix_experiments_owner", "experiments", ["owner"])
    op.create_index("ix_experiments_created_at", "experiments", ["created_at"])

    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("experiment_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("point_key", sa.Text(), nullable=True))
        batch.add_column(sa.Column("replication", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_runs_experiment_id_experiments",
            "experiments",
            ["experiment_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_runs_experiment_id", ["experiment_id"])
        # One run per replication of a point, whoever plans it first.
        batch.create_unique_constraint(
            "uq_runs_experiment_id_point_key_replication",
            ["experiment_id", "point_key", "replication"],
        )

    op.create_table(
        "replication_results",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("point_key", sa.Text(), nullable=False),
        sa.Column("replication", sa.Integer(), nullable=False),
        sa.Column("document", JSONDocument, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_replication_results_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name="fk_replication_results_experiment_id_experiments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_replication_results"),
    )
    op.create_index(
        "ix_replication_results_experiment_id", "replication_results", ["experiment_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_replication_results_experiment_id", table_name="replication_results")
    op.drop_table("replication_results")
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("uq_runs_experiment_id_point_key_replication", type_="unique")
        batch.drop_index("ix_runs_experiment_id")
        batch.drop_constraint("fk_runs_experiment_id_experiments", type_="foreignkey")
        batch.drop_column("replication")
        batch.drop_column("point_key")
        batch.drop_column("experiment_id")
    op.drop_index("ix_experiments_created_at", table_name="experiments")
    op.drop_index("ix_experiments_owner", table_name="experiments")
    op.drop_index("ix_experiments_status", table_name="experiments")
    op.drop_table("experiments")
