"""items: archived_at, set by the archive_item task

Revision ID: 0003
Revises: {{ "0002" if cookiecutter.auth == "jwt" else "0001" }}
Create Date: 2026-01-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
# After the account mail migration where it exists (auth=jwt).
down_revision: str | None = "{{ "0002" if cookiecutter.auth == "jwt" else "0001" }}"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch_op:
        batch_op.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch_op:
        batch_op.drop_column("archived_at")
