"""Start services for tests: in-process runtimes and separate processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import asyncpg

from shared_kernel.persistence.migrations import migrate
from shared_kernel.service import ServiceDefinition, ServiceRuntime
from shared_kernel.settings import ServiceSettings

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


async def recreate_database(settings: ServiceSettings, definition: ServiceDefinition) -> None:
    """Drop the service's database and migrate a fresh one."""
    connection = await asyncpg.connect(
        host=settings.postgres_host,
        port=settings.postgres_port,
        user=settings.postgres_admin_user,
        password=settings.postgres_admin_password or None,
        database="postgres",
    )
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{settings.database_name}" WITH (FORCE)')
    finally:
        await connection.close()
    await migrate(settings, definition.migrations)


async def start_in_process(definition: ServiceDefinition, settings: ServiceSettings) -> ServiceRuntime:
    runtime = ServiceRuntime(definition, settings)
    await runtime.start()
    return runtime


class ServiceProcess:
    """``python -m services.<name>`` as a child process, for crash and e2e tests."""

    def __init__(self, module: str, environment: Mapping[str, str], log_path: Path) -> None:
        self.module = module
        self.environment = {**os.environ, **environment}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            cwd=REPOSITORY_ROOT,
            env=self.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    async def wait_started(self, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while b"service started" not in self.log_path.read_bytes():
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.module} exited: {self.log_path.read_text()[-3000:]}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self.module} did not start: {self.log_path.read_text()[-3000:]}")
            await asyncio.sleep(0.1)

    async def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while (code := self.process.poll()) is None:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self.module} did not exit in {timeout}s")
            await asyncio.sleep(0.05)
        return code

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
