"""Source Control and Pipelines together: merges generate definitions, commits start runs,
reports finish them, and build outcomes come back to pull requests as checks."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from contracts import pipelines as p
from contracts import source_control as c
from shared_kernel.blobs import LocalBlobStore
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus, Captured
from tests.support.ci import CiProvider
from tests.support.delivery import (
    MergedModule,
    approve_and_merge,
    first_run,
    generated_pipeline,
    merge_module,
)
from tests.support.scenario import Scenario, unique
from tests.support.schemas import published_schema

pytestmark = pytest.mark.integration


async def test_a_merge_generates_and_commits_the_definition_whose_commit_starts_a_ci_run(
    source_control: ServiceRuntime, pipelines: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    module = await merge_module(scenario, service=False)
    generated = await generated_pipeline(scenario, module)
    assert generated.payload["moduleId"] == module.module_id
    assert generated.payload["moduleType"] == "library"
    assert generated.payload["templateVersion"] == pipelines.settings.template_version  # type: ignore[attr-defined]
    assert [s["name"] for s in generated.payload["stages"]] == ["Build", "Test", "Pack", "Push"]
    assert generated.envelope["causationId"] == module.merged.envelope["eventId"]

    # Lineage: the commit's artifactId names the definition; the YAML is in Git.
    (committed,) = await scenario.wait("CommitCreated", artifactId=generated.payload["pipelineId"])
    assert committed.payload["branch"] == "main"
    assert committed.payload["authoredBy"] == "svc-pipelines"
    assert committed.payload["bypassedPolicyBy"] == "svc-pipelines"
    assert [f["path"] for f in committed.payload["fileChanges"]] == ["azure-pipelines.yml"]
    document = _committed_definition(source_control, scenario, module.repository_id, committed)
    assert document["resources"]["repositories"][0]["name"] == "ConnectSoft/ConnectSoft.AzurePipelines"
    assert document["resources"]["repositories"][0]["ref"] == "refs/tags/v1.5.0"
    assert [stage["stage"] for stage in document["stages"]] == ["Build", "Test", "Pack", "Push"]

    started = await first_run(scenario, generated)
    assert started.payload["reason"] == "ci"
    assert started.payload["pipelineId"] == generated.payload["pipelineId"]
    assert started.payload["buildNumber"] == "1.0.1"
    # Source Control bound build validation to the default branch.
    (bound,) = await scenario.wait("BranchPolicyBound", repositoryId=module.repository_id)
    assert bound.payload["binding"]["policyType"] == "BuildValidation"
    assert bound.payload["binding"]["settings"]["pipelineId"] == generated.payload["pipelineId"]


async def test_a_definition_regenerated_at_another_path_moves_its_yaml(
    source_control: ServiceRuntime, pipelines: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    module = await merge_module(scenario, service=False)
    first = await generated_pipeline(scenario, module)
    await scenario.wait("CommitCreated", artifactId=first.payload["pipelineId"])
    regenerate = p.GeneratePipeline(
        pipeline_id=unique("pl"),
        repository_id=module.repository_id,
        module_id=module.module_id,
        module_type="library",
        definition_path="ci/azure-pipelines.yml",
        template_version="v1.5.0",
        target_feed="connectsoft/packages",
        requested_by="alice",
    )
    await scenario.send(regenerate)
    (second,) = await scenario.wait("PipelineGenerated", pipelineId=regenerate.pipeline_id)
    assert second.payload["supersedes"] == first.payload["pipelineId"]
    (moved,) = await scenario.wait("CommitCreated", artifactId=regenerate.pipeline_id)
    assert [(f["path"], f["operation"]) for f in moved.payload["fileChanges"]] == [
        ("azure-pipelines.yml", "Delete"),
        ("ci/azure-pipelines.yml", "Add"),
    ]


async def test_a_service_module_gets_a_container_image_pipeline(
    source_control: ServiceRuntime, pipelines: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    module = await merge_module(scenario, service=True)
    generated = await generated_pipeline(scenario, module)
    assert generated.payload["moduleType"] == "service"
    assert [s["name"] for s in generated.payload["stages"]] == ["Build", "Test", "ContainerImage"]
    assert generated.payload["targetFeed"] == f"acr.devops.local/{module.module_id}"
    (committed,) = await scenario.wait("CommitCreated", artifactId=generated.payload["pipelineId"])
    document = _committed_definition(source_control, scenario, module.repository_id, committed)
    assert [stage["stage"] for stage in document["stages"]] == ["Build", "Test", "ContainerImage"]
    steps = [step for job in document["stages"][2]["jobs"] for step in job["steps"]]
    assert any(step.get("task", "").startswith("Docker@") for step in steps)


async def test_a_reported_outcome_records_the_build_result_and_logs(
    source_control: ServiceRuntime, pipelines: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    ci = CiProvider(scenario, pipelines.settings)
    module = await merge_module(scenario, service=False)
    started = await first_run(scenario, await generated_pipeline(scenario, module))
    artifacts = await ci.package_artifacts(module.module_id, "1.0.1")
    await scenario.send(ci.progress(started.payload, _at(started, 1)))
    await scenario.send(ci.completion(started.payload, artifacts=artifacts))
    (built,) = await scenario.wait("BuildCompleted", pipelineRunId=started.payload["pipelineRunId"])
    payload = built.payload
    assert payload["status"] == "Succeeded"
    assert (payload["testsPassed"], payload["testsFailed"], payload["coverage"]) == (42, 0, 81.5)
    assert payload["version"] == "1.0.1"
    assert payload["targetFeed"] == "connectsoft/packages"
    assert payload["commitSha"] == started.payload["commitSha"]
    assert payload["artifacts"] == [a.wire() for a in artifacts]
    logs = await LocalBlobStore(pipelines.settings.blob_root).get(payload["logsUri"])
    assert logs == b"build 1.0.1: Succeeded\n"
    (completed,) = await scenario.wait("PipelineRunCompleted", pipelineRunId=started.payload["pipelineRunId"])
    assert completed.payload["status"] == "Succeeded"


async def test_a_commit_to_a_gitops_repository_starts_nothing(
    source_control: ServiceRuntime, pipelines: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, _ = await scenario.provision(kind="gitops", module_id=None)
    await scenario.branch(repository_id, "env/dev")
    pull_request_id = await scenario.open_pull_request(repository_id, "env/dev")
    await scenario.commit(repository_id, "env/dev")
    await approve_and_merge(scenario, pull_request_id)
    await scenario.wait("PullRequestMerged", pullRequestId=pull_request_id)
    await scenario.commit(repository_id, "main", authored_by="svc-release")
    await bus.settled("source_control", "pipelines")
    # Pipelines heard of the repository and its commits (not a vacuous pass), and built nothing.
    pipelines_rows = Scenario(bus, pipelines.settings, tenant_id=scenario.tenant_id)
    heard = await pipelines_rows.rows(
        "SELECT event_type, outcome FROM inbox WHERE tenant_id = $1 ORDER BY event_type", scenario.tenant_id
    )
    assert {(r["event_type"], r["outcome"]) for r in heard} == {
        ("RepositoryProvisioned", "done"),
        ("CommitCreated", "done"),
        ("PullRequestMerged", "done"),
    }
    assert scenario.seen("PipelineGenerated") == []
    assert scenario.seen("PipelineRunStarted") == []


async def test_build_outcomes_on_a_source_branch_become_pull_request_checks(
    source_control: ServiceRuntime, pipelines: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    ci = CiProvider(scenario, pipelines.settings)
    module, pull_request_id = await _pull_request_under_build_validation(scenario, "feature/discounts")
    commit = await scenario.commit(module.repository_id, "feature/discounts")
    (run,) = await scenario.wait("PipelineRunStarted", commitSha=commit.payload["sha"])
    await scenario.send(ci.completion(run.payload, result="Failed"))
    (check,) = await scenario.wait("PullRequestCheckRecorded", pullRequestId=pull_request_id)
    assert (check.payload["name"], check.payload["status"]) == ("build", "Failed")
    assert check.payload["commitSha"] == commit.payload["sha"]

    # The failed build blocks the merge; a passing build of a new commit lets it through.
    await scenario.send(
        c.RecordPullRequestReview(pull_request_id=pull_request_id, reviewer="bob", vote="Approved")
    )
    await scenario.wait("PullRequestReviewRecorded", pullRequestId=pull_request_id)
    refused = await scenario.send(c.MergePullRequest(pull_request_id=pull_request_id, merged_by="bob"))
    rejection = await scenario.rejected(refused)
    assert rejection.payload["rule"] == "RequiredChecksNotPassed"

    fix = await scenario.commit(module.repository_id, "feature/discounts")
    (rerun,) = await scenario.wait("PipelineRunStarted", commitSha=fix.payload["sha"])
    await scenario.send(ci.completion(rerun.payload, version="1.0.3"))
    await scenario.wait("PullRequestCheckRecorded", pullRequestId=pull_request_id, status="Succeeded")
    await scenario.send(c.MergePullRequest(pull_request_id=pull_request_id, merged_by="bob"))
    await scenario.wait("PullRequestMerged", pullRequestId=pull_request_id)


async def test_a_build_of_an_older_commit_does_not_speak_for_the_pull_request(
    source_control: ServiceRuntime, pipelines: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    ci = CiProvider(scenario, pipelines.settings)
    module, pull_request_id = await _pull_request_under_build_validation(scenario, "feature/tax")
    older = await scenario.commit(module.repository_id, "feature/tax")
    newer = await scenario.commit(module.repository_id, "feature/tax")
    (older_run,) = await scenario.wait("PipelineRunStarted", commitSha=older.payload["sha"])
    (newer_run,) = await scenario.wait("PipelineRunStarted", commitSha=newer.payload["sha"])
    # The head's build passes first; the older commit's failing build finishes later.
    await scenario.send(ci.completion(newer_run.payload, version="1.0.3"))
    await scenario.wait("PullRequestCheckRecorded", pullRequestId=pull_request_id, status="Succeeded")
    await scenario.send(ci.completion(older_run.payload, result="Failed", version="1.0.2"))
    await scenario.wait("BuildCompleted", pipelineRunId=older_run.payload["pipelineRunId"], status="Failed")
    await bus.settled("source_control")
    assert [c.payload["status"] for c in scenario.seen("PullRequestCheckRecorded")] == ["Succeeded"]
    await approve_and_merge(scenario, pull_request_id)
    await scenario.wait("PullRequestMerged", pullRequestId=pull_request_id)


async def test_out_of_order_and_duplicate_reports_end_as_in_order_delivery(
    source_control: ServiceRuntime, pipelines: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    ci = CiProvider(scenario, pipelines.settings)
    module = await merge_module(scenario, service=False)
    generated = await generated_pipeline(scenario, module)
    await first_run(scenario, generated)

    runs = {}
    at = datetime.now(UTC)
    for label in ("in-order", "shuffled"):
        run_id = unique(f"run-{label}")
        await scenario.send(
            p.RunPipeline(
                pipeline_run_id=run_id,
                pipeline_id=generated.payload["pipelineId"],
                branch="main",
                requested_by="alice",
            ),
            occurred_at=at,  # both runs start at one instant, so their reports can be alike
        )
        (started,) = await scenario.wait("PipelineRunStarted", pipelineRunId=run_id)
        runs[label] = started.payload
    reports = {label: _reports(ci, started) for label, started in runs.items()}
    for report in reports["in-order"]:
        await scenario.send(report)
        await bus.settled("pipelines")
    shuffled = reports["shuffled"] + reports["shuffled"][:3]  # three delivered twice
    random.Random(7).shuffle(shuffled)
    for report in shuffled:
        await scenario.send(report)
    for run_id in (r["pipelineRunId"] for r in runs.values()):
        await scenario.wait("BuildCompleted", pipelineRunId=run_id)
    await bus.settled("pipelines")

    states = {}
    pipelines_rows = Scenario(bus, pipelines.settings, tenant_id=scenario.tenant_id)
    for label, started in runs.items():
        rows = await pipelines_rows.rows(
            "SELECT r.state AS run, b.state AS build FROM pipeline_runs r JOIN build_results b "
            "ON b.tenant_id = r.tenant_id AND b.pipeline_run_id = r.id WHERE r.tenant_id = $1 AND r.id = $2",
            scenario.tenant_id,
            started["pipelineRunId"],
        )
        (row,) = rows
        states[label] = (_comparable(row["run"]), _comparable(row["build"]))
    for shuffled_state, in_order_state in zip(states["shuffled"], states["in-order"], strict=True):
        differing = {
            key: (shuffled_state.get(key), in_order_state.get(key))
            for key in shuffled_state.keys() | in_order_state.keys()
            if shuffled_state.get(key) != in_order_state.get(key)
        }
        assert differing == {}
    for run_id in (r["pipelineRunId"] for r in runs.values()):
        assert len(scenario.seen("BuildCompleted", pipelineRunId=run_id)) == 1


async def test_an_outcome_reported_before_its_run_started_is_kept_until_it_has(
    source_control: ServiceRuntime, pipelines: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    ci = CiProvider(scenario, pipelines.settings)
    module = await merge_module(scenario, service=False)
    generated = await generated_pipeline(scenario, module)
    await first_run(scenario, generated)
    run_id = unique("run-early")
    at = datetime.now(UTC)
    early = {
        "pipelineRunId": run_id,
        "startedAt": at.isoformat(),
        "stageRuns": [
            {"name": stage["name"], "jobs": [{"name": job} for job in stage["jobs"]]}
            for stage in generated.payload["stages"]
        ],
    }
    await scenario.send(ci.completion(early, at=at + timedelta(minutes=3)))
    await asyncio.sleep(0.3)
    assert scenario.seen("BuildCompleted", pipelineRunId=run_id) == []
    await scenario.send(
        p.RunPipeline(
            pipeline_run_id=run_id,
            pipeline_id=generated.payload["pipelineId"],
            branch="main",
            requested_by="alice",
        ),
        occurred_at=at,
    )
    (built,) = await scenario.wait("BuildCompleted", pipelineRunId=run_id, timeout=20)
    assert built.payload["status"] == "Succeeded"


# -- helpers ---------------------------------------------------------------------------


async def _pull_request_under_build_validation(scenario: Scenario, branch: str) -> tuple[MergedModule, str]:
    """A library module with its pipeline (build validation bound), and a pull request from ``branch``."""
    module = await merge_module(scenario, service=False)
    await first_run(scenario, await generated_pipeline(scenario, module))
    await scenario.wait("BranchPolicyBound", repositoryId=module.repository_id)
    await scenario.branch(module.repository_id, branch)
    return module, await scenario.open_pull_request(module.repository_id, branch)


def _at(started: Any, minutes: int) -> datetime:
    return datetime.fromisoformat(started.payload["startedAt"]) + timedelta(minutes=minutes)


def _reports(ci: CiProvider, started: dict[str, Any]) -> list[Any]:
    """Job by job: each goes InProgress then Completed; then the run's completion."""
    begin = datetime.fromisoformat(started["startedAt"])
    reports: list[Any] = []
    minute = 1
    for stage in started["stageRuns"]:
        for job in stage["jobs"]:
            for status, result in (("InProgress", None), ("Completed", "Succeeded")):
                at = begin + timedelta(minutes=minute)
                minute += 1
                reports.append(
                    p.RecordPipelineRunProgress(
                        pipeline_run_id=started["pipelineRunId"],
                        jobs=[
                            p.JobStateReport(
                                stage=stage["name"],
                                job=job["name"],
                                status=status,
                                result=result,
                                started_at=begin,
                                finished_at=at if status == "Completed" else None,
                            )
                        ],
                        reported_at=at,
                        reported_by="azure-pipelines",
                    )
                )
    completion = ci.completion(started, at=begin + timedelta(minutes=minute))
    reports.append(completion.model_copy(update={"jobs": []}))  # like build.complete: no job detail
    return reports


def _comparable(state: Any) -> Any:
    """A stored state without what differs between two runs by construction: ids, the
    concurrency version (duplicates are saves too), and the audit stamp of the last change."""
    import orjson

    document = orjson.loads(state) if isinstance(state, str | bytes) else state
    for key in ("pipelineRunId", "buildResultId", "buildNumber", "version", "updatedAt", "updatedBy"):
        document.pop(key, None)
    return document


def _committed_definition(
    runtime: ServiceRuntime, scenario: Scenario, repository_id: str, committed: Captured
) -> Any:
    """The pipeline YAML as committed to Git, checked against Microsoft's schema, parsed."""
    blob = _git_file(runtime, scenario, repository_id, committed.payload["sha"], "azure-pipelines.yml")
    # The schema types every scalar as a string: validate the document read without YAML's typing.
    validator = Draft7Validator(published_schema("azure-pipelines.schema.json"))
    errors = [e.message[:200] for e in validator.iter_errors(yaml.load(blob, Loader=yaml.BaseLoader))]
    assert errors == []
    return yaml.safe_load(blob)


def _git_file(runtime: ServiceRuntime, scenario: Scenario, repository_id: str, sha: str, path: str) -> str:
    from dulwich.repo import Repo

    git_root = runtime.settings.git_root  # type: ignore[attr-defined]
    repository = Repo(str(git_root / scenario.tenant_id / f"{repository_id}.git"))
    tree = repository[repository[sha.encode()].tree]
    _, blob_id = tree.lookup_path(repository.object_store.__getitem__, path.encode())
    return repository[blob_id].data.decode()
