"""Replication runs refer to their experiment's scenario: their own overrides, no copy.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from asyncflow_backend.experiments.paths import with_overrides

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("scenario", existing_type=JSONDocument, nullable=True)
        batch.add_column(sa.Column("overrides", JSONDocument, nullable=True))


def downgrade() -> None:
    # Give every replication its own copy of its point's scenario back, as 0002 kept them.
    runs = sa.table(
        "runs",
        sa.column("id", sa.String),
        sa.column("experiment_id", sa.String),
        sa.column("scenario", JSONDocument),
        sa.column("overrides", JSONDocument),
    )
    experiments = sa.table(
        "experiments", sa.column("id", sa.String), sa.column("spec", JSONDocument)
    )
    bind = op.get_bind()
    # A replication's missing scenario may be SQL NULL or JSON null: both read back as None.
    rows = bind.execute(
        sa.select(runs.c.id, runs.c.scenario, runs.c.overrides, experiments.c.spec).join(
            experiments, experiments.c.id == runs.c.experiment_id
        )
    )
    for run_id, stored, overrides, spec in rows.all():
        if stored is not None:
            continue
        scenario = with_overrides(spec["scenario"], overrides or {})
        bind.execute(sa.update(runs).where(runs.c.id == run_id).values(scenario=scenario))
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("overrides")
        batch.alter_column("scenario", existing_type=JSONDocument, nullable=False)
