"""``python -m services.<name> migrate``: database, roles, then Alembic to head.

Migrations run as the database owner (the admin URL). The consumer connects
as ``devops_<service>_app``, the relay as ``devops_<service>_relay`` and the
dead-letter mover and operator tools as ``devops_<service>_operator``: none
is a superuser or owns a table, so row-level security applies to all, and
grants limit each to what it needs. Creating the database and roles is idempotent; in a managed
PostgreSQL a DBA may create them beforehand and this step skips them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

from shared_kernel.logging import get_logger
from shared_kernel.persistence.database import asyncpg_dsn
from shared_kernel.settings import ServiceSettings

log = get_logger(__name__)


async def ensure_database_and_roles(settings: ServiceSettings) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(settings.admin_database_url, "postgres"))
    try:
        exists = await connection.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", settings.database_name
        )
        if not exists:
            await _execute_formatted(connection, "CREATE DATABASE %I", settings.database_name)
            log.info("database created", database=settings.database_name)
        for role, password in (
            (settings.app_role, settings.app_role_password),
            (settings.relay_role, settings.relay_role_password),
            (settings.operator_role, settings.operator_role_password),
        ):
            if not await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await _execute_formatted(
                    connection, "CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE", role
                )
                log.info("role created", role=role)
            if password:
                await _execute_formatted(connection, "ALTER ROLE %I PASSWORD %L", role, password)
            await _execute_formatted(
                connection, "GRANT CONNECT ON DATABASE %I TO %I", settings.database_name, role
            )
    finally:
        await connection.close()


async def _execute_formatted(connection: asyncpg.Connection, template: str, *values: str) -> None:
    """DDL takes no bind parameters: let PostgreSQL quote identifiers and literals."""
    placeholders = ", ".join(f"${index}::text" for index in range(1, len(values) + 1))
    statement = await connection.fetchval(f"SELECT format('{template}', {placeholders})", *values)
    await connection.execute(statement)


def alembic_config(settings: ServiceSettings, migrations: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["database_url"] = settings.admin_database_url
    config.attributes["app_role"] = settings.app_role
    config.attributes["relay_role"] = settings.relay_role
    config.attributes["operator_role"] = settings.operator_role
    return config


async def migrate(settings: ServiceSettings, migrations: Path) -> None:
    await ensure_database_and_roles(settings)
    # Alembic's env runs its own event loop: give it a thread.
    await asyncio.to_thread(command.upgrade, alembic_config(settings, migrations), "head")
    log.info("migrated", database=settings.database_name)
