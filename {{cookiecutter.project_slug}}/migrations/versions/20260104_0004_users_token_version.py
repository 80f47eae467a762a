"""users: token_version, which access tokens carry and a new password bumps

Revision ID: 0004
Revises: {{ "0003" if cookiecutter.tasks == "taskiq" else "0002" }}
Create Date: 2026-01-04 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
# After the items migration where it exists (tasks=taskiq).
down_revision: str | None = "{{ "0003" if cookiecutter.tasks == "taskiq" else "0002" }}"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Accounts that exist already start at 0; access tokens issued before this migration
    # carry no version at all and are refused (auth/tokens.py requires the claim).
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("token_version", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("token_version")
