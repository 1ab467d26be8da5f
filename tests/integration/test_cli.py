"""The operator's command line against the running Source Control consumer."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from typer.testing import CliRunner

from fleet.cli import app
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus
from tests.support.scenario import Scenario, unique

pytestmark = pytest.mark.integration


async def test_publish_by_hand_reaches_the_service_and_answers_with_its_event(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id = unique("repo")
    payload = {
        "repositoryId": repository_id,
        "name": unique("orders"),
        "kind": "source",
        "provider": "AzureDevOps",
        "requestedBy": "operator",
    }
    arguments = [
        "publish",
        "ProvisionRepository",
        "--tenant",
        scenario.tenant_id,
        "--project",
        "proj-1",
        "--payload",
        orjson.dumps(payload).decode(),
        "--amqp-url",
        source_control.settings.amqp_url,
    ]
    result = await asyncio.to_thread(CliRunner().invoke, app, arguments)
    assert result.exit_code == 0, result.output
    command_id = result.stdout.strip()
    assert command_id.startswith("cmd-")
    (provisioned,) = await scenario.wait("RepositoryProvisioned", repositoryId=repository_id)
    assert provisioned.envelope["causationId"] == command_id


def test_publish_refuses_a_payload_that_does_not_fit_the_contract() -> None:
    result = CliRunner().invoke(
        app, ["publish", "ProvisionRepository", "--tenant", "t", "--payload", '{"name": "x"}']
    )
    assert result.exit_code == 2
    assert "repositoryId" in result.output


def test_contracts_lists_every_routing_key() -> None:
    result = CliRunner().invoke(app, ["contracts", "--json"])
    assert result.exit_code == 0
    keys = {row["routingKey"] for row in orjson.loads(result.stdout)}
    assert "source-control.provision-repository.v1" in keys
    assert "<context>.command-rejected.v1" in keys
