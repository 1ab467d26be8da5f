"""Fixtures for the suites that talk to RabbitMQ and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest

from services.packaging.app import DEFINITION as PACKAGING
from services.packaging.settings import PackagingSettings
from services.pipelines.app import DEFINITION as PIPELINES
from services.pipelines.settings import PipelinesSettings
from services.source_control.app import DEFINITION as SOURCE_CONTROL
from services.source_control.settings import SourceControlSettings
from shared_kernel.logging import configure_logging
from shared_kernel.messaging.topology import declare_fleet
from shared_kernel.service import ServiceRuntime
from shared_kernel.settings import ServiceSettings
from tests.support.bus import Bus
from tests.support.fleet import recreate_database, start_in_process
from tests.support.infrastructure import Infrastructure, infrastructure

# Short delays so retry paths run in seconds; the names of the retry queues follow.
TEST_TUNING = {
    "DEVOPS_RETRY_DELAYS": '["1s","2s"]',
    "DEVOPS_RELAY_POLL_INTERVAL": "200ms",
    "DEVOPS_SHUTDOWN_TIMEOUT": "5s",
    "DEVOPS_LOG_FORMAT": "json",
    # Each runtime's metrics and health endpoint on a port of its own.
    "DEVOPS_HEALTH_HOST": "127.0.0.1",
    "DEVOPS_HEALTH_PORT": "0",
}


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    with infrastructure() as found:
        yield found


@pytest.fixture(scope="session")
def fleet_environment(
    infra: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Environment for services under test (also handed to child processes)."""
    environment = {
        **infra.environment(),
        **TEST_TUNING,
        "SOURCE_CONTROL_GIT_ROOT": str(tmp_path_factory.mktemp("git")),
        "DEVOPS_BLOB_ROOT": str(tmp_path_factory.mktemp("blobs")),
        "PACKAGING_FEED_ROOT": str(tmp_path_factory.mktemp("feeds")),
        "PACKAGING_REGISTRY_ROOT": str(tmp_path_factory.mktemp("registries")),
    }
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    configure_logging(service="tests", level="INFO", fmt="json")
    yield environment
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
async def source_control_database(fleet_environment: dict[str, str]) -> SourceControlSettings:
    settings = SourceControlSettings()
    await recreate_database(settings, SOURCE_CONTROL)
    return settings


@pytest.fixture(scope="session")
async def amqp(
    infra: Infrastructure, fleet_environment: dict[str, str]
) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(infra.amqp_url)
    # The exchanges a test's capture binds to exist before any service has started.
    await declare_fleet(connection, history_retention=SourceControlSettings().history_retention)
    yield connection
    await connection.close()


async def _purge_queues(amqp: aio_pika.abc.AbstractRobustConnection, settings: ServiceSettings) -> None:
    """Empty a service's queues so a test sees only its own messages."""
    channel = await amqp.channel()
    service = settings.service_name
    queues = [f"{service}.inbox", f"{service}.dlq", "devops.unroutable"]
    queues += [f"{service}.retry.{delay}" for delay in settings.retry_delays]
    for name in queues:
        try:
            queue = await channel.declare_queue(name, passive=True)
            await queue.purge()
        except aio_pika.exceptions.ChannelClosed:
            channel = await amqp.channel()  # not declared yet: nothing to purge
    await channel.close()


@pytest.fixture
async def source_control_queues(
    amqp: aio_pika.abc.AbstractRobustConnection, source_control_database: SourceControlSettings
) -> SourceControlSettings:
    await _purge_queues(amqp, source_control_database)
    return source_control_database


@pytest.fixture(scope="session")
async def pipelines_database(fleet_environment: dict[str, str]) -> PipelinesSettings:
    settings = PipelinesSettings()
    await recreate_database(settings, PIPELINES)
    return settings


@pytest.fixture
async def pipelines_queues(
    amqp: aio_pika.abc.AbstractRobustConnection, pipelines_database: PipelinesSettings
) -> PipelinesSettings:
    await _purge_queues(amqp, pipelines_database)
    return pipelines_database


@pytest.fixture(scope="session")
async def packaging_database(fleet_environment: dict[str, str]) -> PackagingSettings:
    settings = PackagingSettings()
    await recreate_database(settings, PACKAGING)
    return settings


@pytest.fixture
async def packaging_queues(
    amqp: aio_pika.abc.AbstractRobustConnection, packaging_database: PackagingSettings
) -> PackagingSettings:
    await _purge_queues(amqp, packaging_database)
    return packaging_database


@pytest.fixture
async def bus(amqp: aio_pika.abc.AbstractRobustConnection) -> AsyncIterator[Bus]:
    opened = await Bus.open(amqp)
    yield opened
    await opened.channel.close()


@pytest.fixture
async def source_control(
    source_control_queues: SourceControlSettings, bus: Bus
) -> AsyncIterator[ServiceRuntime]:
    """Source Control running in this process, on the shared test database."""
    runtime = await start_in_process(SOURCE_CONTROL, SourceControlSettings())
    yield runtime
    await runtime.stop()


@pytest.fixture
async def pipelines(pipelines_queues: PipelinesSettings, bus: Bus) -> AsyncIterator[ServiceRuntime]:
    """Pipelines running in this process, on the shared test database."""
    runtime = await start_in_process(PIPELINES, PipelinesSettings())
    yield runtime
    await runtime.stop()


@pytest.fixture
async def packaging(packaging_queues: PackagingSettings, bus: Bus) -> AsyncIterator[ServiceRuntime]:
    """Packaging running in this process, on the shared test database."""
    runtime = await start_in_process(PACKAGING, PackagingSettings())
    yield runtime
    await runtime.stop()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path
