"""The delivery chain's first steps, for tests: a module merged, its pipeline generated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts import source_control as c
from tests.support.bus import Captured
from tests.support.scenario import Scenario, unique

DOCKERFILE = (
    'FROM mcr.microsoft.com/dotnet/aspnet:8.0\nCOPY app/ /app\nENTRYPOINT ["dotnet", "/app/Orders.dll"]\n'
)


@dataclass(frozen=True)
class MergedModule:
    repository_id: str
    module_id: str
    pull_request_id: str
    merged: Captured


async def merge_module(scenario: Scenario, *, service: bool, module_id: str | None = None) -> MergedModule:
    """Provision a repository, commit the module's generated skeleton on a branch, merge it."""
    module = module_id or unique("mod-orders")
    repository_id, _ = await scenario.provision(module_id=module)
    await scenario.branch(repository_id, "feature/skeleton")
    changes: list[dict[str, Any]] = [
        {"path": "src/Orders/Orders.cs", "operation": "Add", "content": "namespace Orders;\n"}
    ]
    if service:
        changes.append({"path": "Dockerfile", "operation": "Add", "content": DOCKERFILE})
    await scenario.commit(repository_id, "feature/skeleton", file_changes=changes)
    pull_request_id = await scenario.open_pull_request(repository_id, "feature/skeleton")
    await approve_and_merge(scenario, pull_request_id)
    (merged,) = await scenario.wait("PullRequestMerged", pullRequestId=pull_request_id)
    return MergedModule(repository_id, module, pull_request_id, merged)


async def approve_and_merge(scenario: Scenario, pull_request_id: str) -> None:
    await scenario.send(
        c.RecordPullRequestReview(pull_request_id=pull_request_id, reviewer="bob", vote="Approved")
    )
    await scenario.wait("PullRequestReviewRecorded", pullRequestId=pull_request_id)
    await scenario.send(c.MergePullRequest(pull_request_id=pull_request_id, merged_by="bob"))


async def generated_pipeline(scenario: Scenario, module: MergedModule, timeout: float = 20.0) -> Captured:
    (generated,) = await scenario.wait(
        "PipelineGenerated", repositoryId=module.repository_id, timeout=timeout
    )
    return generated


async def first_run(scenario: Scenario, generated: Captured, timeout: float = 20.0) -> Captured:
    """The CI run the definition's own commit starts."""
    (committed,) = await scenario.wait(
        "CommitCreated", artifactId=generated.payload["pipelineId"], timeout=timeout
    )
    (started,) = await scenario.wait(
        "PipelineRunStarted", commitSha=committed.payload["sha"], timeout=timeout
    )
    return started
