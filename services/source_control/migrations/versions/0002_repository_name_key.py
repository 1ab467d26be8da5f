"""Repository names are unique case-insensitively, as on Azure DevOps and GitHub.

Adds ``repositories.name_key`` (the lower-cased name), backfilled from the
rows there are, and moves ``uq_repositories_project_name`` from the name to
the key. Names that already differ only by case stop the upgrade with a list
of them: which repository keeps the name is not a migration's call.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CONSTRAINT = "uq_repositories_project_name"


def upgrade() -> None:
    op.add_column("repositories", sa.Column("name_key", sa.Text(), nullable=True))
    # Repository names are ASCII (RepositoryName), where lower() is the domain's key.
    op.execute("UPDATE repositories SET name_key = lower(name)")
    clashes = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT tenant_id, project_id, string_agg(name, ', ' ORDER BY name) AS names"
                " FROM repositories GROUP BY tenant_id, project_id, name_key HAVING count(*) > 1"
            )
        )
        .all()
    )
    if clashes:
        listed = "; ".join(f"{row.tenant_id}/{row.project_id}: {row.names}" for row in clashes)
        raise RuntimeError(f"repository names that differ only by case must be renamed first: {listed}")
    op.alter_column("repositories", "name_key", nullable=False)
    op.drop_constraint(CONSTRAINT, "repositories", type_="unique")
    op.create_unique_constraint(CONSTRAINT, "repositories", ["tenant_id", "project_id", "name_key"])


def downgrade() -> None:
    op.drop_constraint(CONSTRAINT, "repositories", type_="unique")
    op.create_unique_constraint(CONSTRAINT, "repositories", ["tenant_id", "project_id", "name"])
    op.drop_column("repositories", "name_key")
