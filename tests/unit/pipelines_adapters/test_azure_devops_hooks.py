"""Azure DevOps service hooks become Pipelines commands, or are refused naming the field.

The sample hooks in ``hooks/`` follow the payloads Microsoft documents for
``build.complete``, ``ms.vss-pipelines.job-state-changed-event`` and
``ms.vss-pipelines.run-state-changed-event``, with the template parameters
the platform queues its runs with.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from contracts import registry
from contracts.pipelines import CompletePipelineRun, RecordPipelineRunProgress
from services.pipelines.adapters.azure_devops_hooks import AzureDevOpsServiceHooks, _payload
from shared_kernel.envelope import Envelope
from shared_kernel.ids import deterministic_id
from shared_kernel.messaging.ingress import IngressAdapter, InvalidIngressMessage

pytestmark = pytest.mark.unit

HOOKS = Path(__file__).parent / "hooks"
RUN_ID = "run-2f1c9a7e"
IDENTITY = {
    "devopsTenantId": "acme",
    "devopsProjectId": "project-payments",
    "devopsPipelineRunId": RUN_ID,
}


def sample(name: str) -> dict[str, Any]:
    hook: dict[str, Any] = json.loads((HOOKS / f"{name}.json").read_text(encoding="utf-8"))
    return hook


def body(hook: dict[str, Any]) -> bytes:
    return orjson.dumps(hook)


def decode(hook: dict[str, Any], adapter: IngressAdapter | None = None) -> Envelope:
    envelope = (adapter or AzureDevOpsServiceHooks()).decode(body(hook))
    assert envelope is not None
    return envelope


def refused(hook: dict[str, Any], adapter: IngressAdapter | None = None) -> str:
    with pytest.raises(InvalidIngressMessage) as caught:
        (adapter or AzureDevOpsServiceHooks()).decode(body(hook))
    return str(caught.value)


def job_event(state: str, result: str | None = None) -> dict[str, Any]:
    hook = sample("job-state-changed")
    job = hook["resource"]["job"]
    job["state"] = state
    if result is None:
        job.pop("result")
    else:
        job["result"] = result
    return hook


# --- the adapter -----------------------------------------------------------------------


def test_it_takes_build_completion_and_job_state_changes_on_the_ingress_exchange() -> None:
    adapter: IngressAdapter = AzureDevOpsServiceHooks()

    assert adapter.routing_keys == (
        "azure-devops.build.complete",
        "azure-devops.ms.vss-pipelines.job-state-changed-event",
    )


def test_run_state_changes_are_taken_only_when_asked_for() -> None:
    adapter = AzureDevOpsServiceHooks(run_state_changed=True)

    assert adapter.routing_keys[-1] == "azure-devops.ms.vss-pipelines.run-state-changed-event"
    reason = refused(sample("run-state-changed"))
    assert "eventType 'ms.vss-pipelines.run-state-changed-event' is not taken here" in reason


# --- build.complete --------------------------------------------------------------------


def test_a_completed_build_becomes_complete_pipeline_run() -> None:
    hook = sample("build-complete")

    envelope = decode(hook)

    assert envelope.event_type == "CompletePipelineRun"
    assert envelope.is_command
    assert envelope.schema_version == 1
    assert envelope.source == "azure-devops"
    assert envelope.tenant_id == "acme"
    assert envelope.project_id == "project-payments"
    assert envelope.event_id == deterministic_id("cmd", "azure-devops", "build.complete", hook["id"])
    assert envelope.occurred_at.isoformat() == "2025-03-14T09:19:52.663041+00:00"
    assert envelope.payload == {
        "pipelineRunId": RUN_ID,
        "result": "Succeeded",
        "jobs": [],
        "version": "1.0.7",
        "testsPassed": None,
        "testsFailed": None,
        "coverage": None,
        "artifacts": [],
        "logs": None,
        "logsUri": (
            "https://dev.azure.com/contoso/8a1d6c3b-0e2f-4f4a-b7c9-5d3e2a1f0b64/_apis/build/builds/4711/logs"
        ),
        "finishedAt": "2025-03-14T09:19:47.935610Z",
        "reportedBy": "azure-devops",
    }


def test_the_command_is_a_valid_envelope_of_its_registered_contract() -> None:
    envelope = decode(sample("build-complete"))

    wire = Envelope.from_json(envelope.to_json())
    contract = registry.get(wire.event_type, wire.schema_version)
    assert contract.payload is CompletePipelineRun
    assert contract.payload.model_validate(wire.payload).wire() == envelope.payload


@pytest.mark.parametrize(
    ("azure", "fleet"),
    [
        ("succeeded", "Succeeded"),
        ("partiallySucceeded", "Succeeded"),
        ("failed", "Failed"),
        ("canceled", "Canceled"),
    ],
)
def test_build_results_map_to_run_results(azure: str, fleet: str) -> None:
    hook = sample("build-complete")
    hook["resource"]["result"] = azure

    assert decode(hook).payload["result"] == fleet


def test_an_unknown_build_result_is_refused_naming_it() -> None:
    hook = sample("build-complete")
    hook["resource"]["result"] = "none"

    assert "resource.result 'none' is not one of succeeded, partiallySucceeded, failed, canceled" in refused(
        hook
    )


def test_a_build_number_that_is_not_a_semantic_version_is_refused() -> None:
    hook = sample("build-complete")
    hook["resource"]["buildNumber"] = "20250314.3"

    assert "resource.buildNumber '20250314.3' is not a semantic version" in refused(hook)


def test_a_build_without_finish_time_is_refused() -> None:
    hook = sample("build-complete")
    del hook["resource"]["finishTime"]

    assert "resource.finishTime is missing" in refused(hook)


@pytest.mark.parametrize("logs", [None, {"id": 0, "type": "Container"}, {"url": "http://tfs.local/logs"}])
def test_without_an_https_logs_address_the_completion_has_no_logs_uri(logs: dict[str, Any] | None) -> None:
    hook = sample("build-complete")
    hook["resource"]["logs"] = logs

    assert decode(hook).payload["logsUri"] is None


# --- ms.vss-pipelines.job-state-changed-event ------------------------------------------


def test_a_job_state_change_becomes_record_pipeline_run_progress() -> None:
    hook = sample("job-state-changed")

    envelope = decode(hook)

    assert envelope.event_type == "RecordPipelineRunProgress"
    assert envelope.tenant_id == "acme"
    assert envelope.project_id == "project-payments"
    assert envelope.event_id == deterministic_id(
        "cmd", "azure-devops", "ms.vss-pipelines.job-state-changed-event", hook["id"]
    )
    assert envelope.payload == {
        "pipelineRunId": RUN_ID,
        "jobs": [
            {
                "stage": "Test",
                "job": "Test",
                "status": "Completed",
                "result": "Succeeded",
                "startedAt": "2025-03-14T09:14:31.220339Z",
                "finishedAt": "2025-03-14T09:17:05.881042Z",
            }
        ],
        # The hook's createdDate: the domain keeps the newest report per job.
        "reportedAt": "2025-03-14T09:17:06.412775Z",
        "reportedBy": "azure-devops",
    }
    RecordPipelineRunProgress.model_validate(envelope.payload)


@pytest.mark.parametrize(
    ("state", "status"),
    [("waiting", "Pending"), ("inProgress", "InProgress"), ("completed", "Completed")],
)
def test_job_states_map_to_item_statuses(state: str, status: str) -> None:
    hook = job_event(state, "succeeded")

    [report] = decode(hook).payload["jobs"]

    assert report["status"] == status
    # Before it completes, a job has no result, whatever the hook says.
    assert report["result"] == ("Succeeded" if status == "Completed" else None)


def test_azure_enums_are_read_whatever_their_case() -> None:
    [report] = decode(job_event("Completed", "SucceededWithIssues")).payload["jobs"]

    assert (report["status"], report["result"]) == ("Completed", "SucceededWithIssues")


def test_a_waiting_job_reports_no_times() -> None:
    hook = job_event("waiting")
    hook["resource"]["job"].update(startTime=None, finishTime=None)

    [report] = decode(hook).payload["jobs"]

    assert report == {
        "stage": "Test",
        "job": "Test",
        "status": "Pending",
        "result": None,
        "startedAt": None,
        "finishedAt": None,
    }


@pytest.mark.parametrize(
    ("azure", "fleet"),
    [
        ("succeeded", "Succeeded"),
        ("succeededWithIssues", "SucceededWithIssues"),
        ("failed", "Failed"),
        ("canceled", "Canceled"),
        ("skipped", "Skipped"),
        ("rejected", "Failed"),
    ],
)
def test_job_results_map_to_job_results(azure: str, fleet: str) -> None:
    [report] = decode(job_event("completed", azure)).payload["jobs"]

    assert report["result"] == fleet


def test_an_unknown_job_state_is_refused_naming_it() -> None:
    assert "resource.job.state 'paused' is not one of" in refused(job_event("paused"))


def test_an_unknown_job_result_is_refused_naming_it() -> None:
    assert "resource.job.result 'abandoned' is not one of" in refused(job_event("completed", "abandoned"))


def test_a_completed_job_without_result_is_refused() -> None:
    assert "resource.job.result is missing" in refused(job_event("completed"))


@pytest.mark.parametrize(
    ("part", "name"),
    [("stage", "__default"), ("job", "Build and test")],
)
def test_stage_and_job_names_must_be_identifiers(part: str, name: str) -> None:
    hook = sample("job-state-changed")
    hook["resource"][part]["name"] = name

    assert f"resource.{part}.name: Identifier must be" in refused(hook)


def test_the_display_name_is_not_used() -> None:
    hook = sample("job-state-changed")
    hook["resource"]["stage"]["displayName"] = "Test with coverage"

    assert decode(hook).payload["jobs"][0]["stage"] == "Test"


def test_a_job_event_without_its_run_is_refused() -> None:
    hook = sample("job-state-changed")
    del hook["resource"]["run"]

    assert "resource.run is missing or not an object" in refused(hook)


# --- ms.vss-pipelines.run-state-changed-event (opt-in) ---------------------------------


def test_a_completed_run_becomes_complete_pipeline_run_when_taken() -> None:
    adapter = AzureDevOpsServiceHooks(run_state_changed=True)

    envelope = decode(sample("run-state-changed"), adapter)

    assert envelope.event_type == "CompletePipelineRun"
    assert envelope.payload == {
        "pipelineRunId": RUN_ID,
        "result": "Failed",
        "jobs": [],
        "version": "1.0.7",
        "testsPassed": None,
        "testsFailed": None,
        "coverage": None,
        "artifacts": [],
        "logs": None,
        "logsUri": None,
        "finishedAt": "2025-03-14T09:19:47.935610Z",
        "reportedBy": "azure-devops",
    }


def test_a_run_that_has_not_completed_is_refused() -> None:
    hook = sample("run-state-changed")
    hook["resource"]["run"].update(state="inProgress", result=None, finishedDate=None)

    reason = refused(hook, AzureDevOpsServiceHooks(run_state_changed=True))

    assert "resource.run.state is 'inProgress'" in reason


# --- identifying the run ---------------------------------------------------------------


def test_a_hook_without_the_platforms_template_parameters_is_refused_naming_them() -> None:
    hook = sample("build-complete")
    del hook["resource"]["templateParameters"]

    reason = refused(hook)

    assert "resource.templateParameters lacks devopsTenantId, devopsProjectId, devopsPipelineRunId" in reason
    assert "not a run the platform queued" in reason


def test_blank_template_parameters_of_a_run_azure_started_itself_are_missing_ones() -> None:
    hook = sample("job-state-changed")
    hook["resource"]["run"]["templateParameters"] = dict.fromkeys(IDENTITY, "")

    assert "resource.run.templateParameters lacks devopsTenantId, devopsProjectId" in refused(hook)


def test_a_job_event_without_the_run_id_is_refused_naming_it() -> None:
    hook = sample("job-state-changed")
    del hook["resource"]["run"]["templateParameters"]["devopsPipelineRunId"]

    assert "resource.run.templateParameters lacks devopsPipelineRunId " in refused(hook)


def test_devops_tags_stand_in_for_the_template_parameters() -> None:
    tagged = sample("build-complete")
    del tagged["resource"]["templateParameters"]
    tagged["resource"]["tags"] = [
        "release-candidate",
        "devops.tenantId=acme",
        "devops.projectId=project-payments",
        f"devops.pipelineRunId={RUN_ID}",
    ]

    assert decode(tagged) == decode(sample("build-complete"))


def test_a_tag_that_contradicts_a_template_parameter_is_refused() -> None:
    hook = sample("build-complete")
    hook["resource"]["tags"] = ["devops.pipelineRunId=run-other"]

    assert "disagree" in refused(hook)


def test_template_parameters_are_found_whatever_the_case_of_their_key() -> None:
    hook = sample("job-state-changed")
    run = hook["resource"]["run"]
    run["TemplateParameters"] = run.pop("templateParameters")

    assert decode(hook).payload["pipelineRunId"] == RUN_ID


@pytest.mark.parametrize(
    ("parameter", "value", "named"),
    [
        ("devopsTenantId", "acme corp", "tenantId"),
        ("devopsProjectId", "payments team", "templateParameters.devopsProjectId"),
        ("devopsPipelineRunId", "run 42", "templateParameters.devopsPipelineRunId"),
        ("devopsPipelineRunId", 42, "templateParameters.devopsPipelineRunId"),
    ],
)
def test_ids_that_the_fleet_cannot_use_are_refused(parameter: str, value: object, named: str) -> None:
    hook = sample("build-complete")
    hook["resource"]["templateParameters"][parameter] = value

    assert named in refused(hook)


# --- redelivery and what is not a hook -------------------------------------------------


def test_a_redelivered_hook_is_the_same_command() -> None:
    hook = sample("job-state-changed")
    again = copy.deepcopy(hook)
    again["notificationId"] = 234  # a retried delivery, or a second subscription

    first, second = decode(hook), decode(again)

    assert first.event_id == second.event_id
    assert first == second


def test_another_event_is_another_command() -> None:
    hook = sample("job-state-changed")
    later = copy.deepcopy(hook)
    later["id"] = "0d2f4b6a-8c1e-4a3d-9f5b-7e1c3a5d9b20"

    assert decode(hook).event_id != decode(later).event_id


def test_a_canonical_envelope_is_not_a_hook() -> None:
    envelope = Envelope.new(
        kind_prefix="cmd",
        event_type="CompletePipelineRun",
        schema_version=1,
        payload=decode(sample("build-complete")).payload,
        source="cli",
        tenant_id="acme",
    )

    assert AzureDevOpsServiceHooks().decode(envelope.to_json()) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"not json at all",
        b"",
        b'["build.complete"]',
        b'{"eventType": "build.complete", "resource": {}}',  # no publisherId: not a hook
    ],
)
def test_a_body_that_is_not_a_service_hook_is_left_to_the_canonical_decoder(raw: bytes) -> None:
    assert AzureDevOpsServiceHooks().decode(raw) is None


def test_a_hook_of_an_event_not_taken_is_refused_naming_it() -> None:
    hook = {"id": "e1", "eventType": "git.push", "publisherId": "tfs", "resource": {}}

    assert "eventType 'git.push' is not taken here" in refused(hook)


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("resource", "resource is missing or not an object"),
        ("id", "id is missing"),
        ("createdDate", "createdDate is missing"),
    ],
)
def test_a_hook_missing_its_frame_is_refused_naming_the_field(field: str, reason: str) -> None:
    hook = sample("build-complete")
    del hook[field]

    assert reason in refused(hook)


def test_a_timestamp_without_offset_is_refused() -> None:
    hook = sample("build-complete")
    hook["createdDate"] = "2025-03-14T09:19:52"

    assert "createdDate '2025-03-14T09:19:52' has no UTC offset" in refused(hook)


def test_a_contract_violation_becomes_a_readable_refusal() -> None:
    with pytest.raises(InvalidIngressMessage) as caught:
        _payload(RecordPipelineRunProgress, pipeline_run_id=RUN_ID, jobs=[], reported_by="azure-devops")

    reason = str(caught.value)
    assert reason.startswith("the hook does not make a valid RecordPipelineRunProgress: ")
    assert "jobs" in reason
    assert "reportedAt" in reason or "reported_at" in reason
