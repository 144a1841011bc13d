"""What each run and experiment stores, in bytes, for the storage quota; finish times indexed
for the retention sweep.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows stored before count as 0 bytes until they are deleted.
    for table in ("runs", "experiments"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("stored_bytes", sa.BigInteger(), nullable=False, server_default="0")
            )
            batch.create_index(f"ix_{table}_finished_at", ["finished_at"])


def downgrade() -> None:
    for table in ("experiments", "runs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_finished_at")
            batch.drop_column("stored_bytes")
