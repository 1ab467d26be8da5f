from services.packaging.adapters.tables import metadata
from shared_kernel.persistence.alembic_env import run_migrations

run_migrations(metadata)
