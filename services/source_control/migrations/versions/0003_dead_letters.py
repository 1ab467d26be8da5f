"""Source Control's dead-letter store: dead letters and their archive, for the operator role.

The dead-letter mover moves each message of ``source_control.dlq`` into
``dead_letters`` (commit, then ack); operators list, show, replay, edit and
purge them there (``devops dlq``). Purged letters move to
``dead_letters_archive``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from shared_kernel.persistence.migration_ops import create_dead_letter_store, drop_dead_letter_store

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_dead_letter_store()


def downgrade() -> None:
    drop_dead_letter_store()
