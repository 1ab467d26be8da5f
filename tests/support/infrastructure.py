"""Where the tests find RabbitMQ and PostgreSQL.

URLs come from the environment (``DEVOPS_TEST_AMQP_URL``,
``DEVOPS_TEST_POSTGRES_HOST``/``_PORT``); when unset and a Docker engine is
reachable, testcontainers starts both; otherwise the local defaults
(127.0.0.1, guest/guest, trust auth) are used.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Infrastructure:
    amqp_url: str
    postgres_host: str
    postgres_port: int
    postgres_admin_user: str
    postgres_admin_password: str

    def environment(self, prefix: str = "DEVOPS_") -> dict[str, str]:
        """Settings that point a service at this infrastructure."""
        return {
            f"{prefix}AMQP_URL": self.amqp_url,
            f"{prefix}POSTGRES_HOST": self.postgres_host,
            f"{prefix}POSTGRES_PORT": str(self.postgres_port),
            f"{prefix}POSTGRES_ADMIN_USER": self.postgres_admin_user,
            f"{prefix}POSTGRES_ADMIN_PASSWORD": self.postgres_admin_password,
        }


def _docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return False
    return True


@contextmanager
def infrastructure() -> Iterator[Infrastructure]:
    env = os.environ
    if "DEVOPS_TEST_AMQP_URL" in env or not _docker_available():
        yield Infrastructure(
            amqp_url=env.get("DEVOPS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
            postgres_host=env.get("DEVOPS_TEST_POSTGRES_HOST", "127.0.0.1"),
            postgres_port=int(env.get("DEVOPS_TEST_POSTGRES_PORT", "5432")),
            postgres_admin_user=env.get("DEVOPS_TEST_POSTGRES_USER", "postgres"),
            postgres_admin_password=env.get("DEVOPS_TEST_POSTGRES_PASSWORD", ""),
        )
        return
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    with ExitStack() as stack:
        postgres = stack.enter_context(
            PostgresContainer("postgres:15", username="postgres", password="postgres")
        )
        rabbit = stack.enter_context(RabbitMqContainer("rabbitmq:3.13-management"))
        yield Infrastructure(
            amqp_url=f"amqp://guest:guest@{rabbit.get_container_host_ip()}:{rabbit.get_exposed_port(5672)}/",
            postgres_host=postgres.get_container_host_ip(),
            postgres_port=int(postgres.get_exposed_port(5432)),
            postgres_admin_user="postgres",
            postgres_admin_password="postgres",
        )
