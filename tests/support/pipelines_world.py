"""Pipelines' world for tests that drive Pipelines alone: Source Control's announcements
played by the test, a definition generated and a run started by command."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contracts import pipelines as p
from contracts import source_control as sc
from tests.support.bus import Captured
from tests.support.scenario import Scenario, unique

SHA = "a" * 40
START = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


async def provisioned_repository(scenario: Scenario, kind: str = "source") -> str:
    repository_id = unique("repo")
    await scenario.send(
        sc.RepositoryProvisioned(
            repository_id=repository_id,
            tenant_id=scenario.tenant_id,
            project_id=scenario.project_id,
            module_id="mod-orders",
            name=unique("orders"),
            kind=kind,
            provider="AzureDevOps",
            remote_url="file:///var/git/orders.git",
            default_branch="main",
            visibility="Private",
            initial_commit_sha=SHA,
            default_branch_policy=sc.BranchPolicyTerms(),
            created_at=START,
            provisioned_by="alice",
        )
    )
    return repository_id


def generate_command(repository_id: str, **overrides: Any) -> p.GeneratePipeline:
    fields: dict[str, Any] = {
        "pipeline_id": unique("pl"),
        "repository_id": repository_id,
        "module_id": "mod-orders",
        "module_type": "library",
        "definition_path": "azure-pipelines.yml",
        "template_version": "v1.5.0",
        "target_feed": "connectsoft/packages",
        "requested_by": "alice",
        **overrides,
    }
    return p.GeneratePipeline(**fields)


async def generated_definition(scenario: Scenario, repository_id: str, **overrides: Any) -> Captured:
    command = generate_command(repository_id, **overrides)
    await scenario.send(command)
    (generated,) = await scenario.wait("PipelineGenerated", pipelineId=command.pipeline_id)
    return generated


async def started_run(scenario: Scenario, pipeline_id: str) -> Captured:
    run_id = unique("run")
    await scenario.send(
        p.RunPipeline(
            pipeline_run_id=run_id,
            pipeline_id=pipeline_id,
            branch="main",
            commit_sha=SHA,
            requested_by="alice",
        ),
        occurred_at=START,
    )
    (started,) = await scenario.wait("PipelineRunStarted", pipelineRunId=run_id)
    return started


async def run_of_a_new_definition(scenario: Scenario) -> Captured:
    """A repository, a library definition in it, and a run of that definition started."""
    repository_id = await provisioned_repository(scenario)
    definition = await generated_definition(scenario, repository_id)
    return await started_run(scenario, definition.payload["pipelineId"])
