"""Azure DevOps service hooks, normalised into Pipelines commands.

Azure Pipelines reports a run through service-hook subscriptions: the
gateway publishes each hook body unchanged on ``devops.ingress`` with the
routing key ``azure-devops.<eventType>``, and this adapter turns it into the
canonical command the Pipelines inbox handles:

* ``build.complete`` becomes ``CompletePipelineRun``;
* ``ms.vss-pipelines.job-state-changed-event`` becomes ``RecordPipelineRunProgress``
  for the one job it reports, stamped with the hook's ``createdDate`` (the
  domain keeps the newest report per job);
* ``ms.vss-pipelines.run-state-changed-event`` (opt-in, see
  ``AzureDevOpsServiceHooks``) becomes ``CompletePipelineRun`` when the run completed.

The fleet's tenant, project and run are not Azure concepts: the platform
queues a run with the template parameters ``devopsTenantId``,
``devopsProjectId`` and ``devopsPipelineRunId``, which Azure echoes in the
build (``resource.templateParameters``) and in the run of a pipelines event
(``resource.run.templateParameters``). Build tags ``devops.<name>=<value>``
(``devops.pipelineRunId=run-42``) are the documented fallback. A hook without
them is not a run the platform queued: it is refused, never guessed.

The eventId is derived from the hook's own ``id`` and ``eventType``, so a
redelivered hook becomes the same command and the inbox drops the duplicate.
docs/azure-devops-hooks.md has the mapping tables and examples.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from contracts.base import Payload
from contracts.pipelines import CompletePipelineRun, JobStateReport, RecordPipelineRunProgress
from contracts.registry import MessageContract, registry
from shared_kernel.domain.errors import InvalidValue
from shared_kernel.domain.value_objects import Identifier, SemanticVersion
from shared_kernel.envelope import Envelope, describe_validation_error
from shared_kernel.ids import deterministic_id
from shared_kernel.messaging.ingress import InvalidIngressMessage

SOURCE = "azure-devops"
REPORTED_BY = "azure-devops"

BUILD_COMPLETE = "build.complete"
JOB_STATE_CHANGED = "ms.vss-pipelines.job-state-changed-event"
RUN_STATE_CHANGED = "ms.vss-pipelines.run-state-changed-event"

# Template parameters the platform passes when it queues a run, and the build
# tags (``devops.<tag>=<value>``) accepted in their place.
TENANT_PARAMETER = "devopsTenantId"
PROJECT_PARAMETER = "devopsProjectId"
RUN_PARAMETER = "devopsPipelineRunId"
_TAG_PREFIX = "devops."
_TAG_OF_PARAMETER = {
    TENANT_PARAMETER: "tenantId",
    PROJECT_PARAMETER: "projectId",
    RUN_PARAMETER: "pipelineRunId",
}

# Azure writes its enums in camelCase; they are matched without regard to case.
_BUILD_RESULTS = {
    "succeeded": "Succeeded",
    # Azure shows a partially succeeded build as "succeeded with issues": every
    # step ran and the outputs were published, only some steps were allowed to
    # fail (continueOnError). The run did produce its version, so it succeeded.
    "partiallySucceeded": "Succeeded",
    "failed": "Failed",
    "canceled": "Canceled",
}
_RUN_RESULTS = {"succeeded": "Succeeded", "failed": "Failed", "canceled": "Canceled"}
_JOB_STATES = {"waiting": "Pending", "inProgress": "InProgress", "completed": "Completed"}
_JOB_RESULTS = {
    "succeeded": "Succeeded",
    "succeededWithIssues": "SucceededWithIssues",
    "failed": "Failed",
    "canceled": "Canceled",
    "skipped": "Skipped",
    # A job whose check or approval was rejected never ran; Azure fails the run.
    "rejected": "Failed",
}

_P = TypeVar("_P", bound=Payload)

_COMPLETE: MessageContract = registry.get(CompletePipelineRun.__name__, 1)
_PROGRESS: MessageContract = registry.get(RecordPipelineRunProgress.__name__, 1)


@dataclass(frozen=True, slots=True)
class RunIdentity:
    """Whose run a hook reports: the fleet's ids, read from what the platform queued it with."""

    tenant_id: str
    project_id: str
    pipeline_run_id: str


class AzureDevOpsServiceHooks:
    """The IngressAdapter for Azure DevOps service hooks (Pipelines commands).

    ``run_state_changed`` also takes ``ms.vss-pipelines.run-state-changed-event``
    as the completion of a run. It is off by default: ``build.complete`` reports
    the same completion with the logs' address, and a run completed twice is
    refused by the domain, so an organisation subscribes to one of the two.
    """

    def __init__(self, *, run_state_changed: bool = False) -> None:
        self._decoders = {
            BUILD_COMPLETE: _build_complete,
            JOB_STATE_CHANGED: _job_state_changed,
        }
        if run_state_changed:
            self._decoders[RUN_STATE_CHANGED] = _run_state_changed

    @property
    def routing_keys(self) -> tuple[str, ...]:
        return tuple(f"{SOURCE}.{event_type}" for event_type in self._decoders)

    def decode(self, body: bytes) -> Envelope | None:
        hook = _service_hook(body)
        if hook is None:
            return None
        event_type = hook["eventType"]
        decoder = self._decoders.get(event_type)
        if decoder is None:
            raise InvalidIngressMessage(
                f"eventType {event_type!r} is not taken here (takes {', '.join(self._decoders)})"
            )
        return decoder(hook)


# --- recognising a hook ----------------------------------------------------------------


def _service_hook(body: bytes) -> dict[str, Any] | None:
    """The hook in ``body``; None when ``body`` is not an Azure DevOps service hook at all.

    A hook is a JSON object with a string ``eventType`` and ``publisherId``; a
    canonical envelope (it has an ``eventId``) and anything that is not JSON
    are left to the canonical decoder, which says what is wrong with them.
    """
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict) or "eventId" in raw:
        return None
    if not isinstance(raw.get("eventType"), str) or not isinstance(raw.get("publisherId"), str):
        return None
    return raw


# --- the events ------------------------------------------------------------------------


def _build_complete(hook: Mapping[str, Any]) -> Envelope:
    build = _object(hook, "resource", "resource")
    status = build.get("status")
    if status is not None and str(status).casefold() != "completed":
        raise InvalidIngressMessage(
            f"resource.status is {status!r}: build.complete reports a completed build"
        )
    identity = _identity(build, "resource")
    command = _payload(
        CompletePipelineRun,
        pipeline_run_id=identity.pipeline_run_id,
        result=_mapped(build, "result", _BUILD_RESULTS, "resource.result"),
        version=_version(build, "buildNumber", "resource.buildNumber"),
        logs_uri=_logs_uri(build),
        finished_at=_time(build, "finishTime", "resource.finishTime"),
        reported_by=REPORTED_BY,
    )
    return _envelope(hook, _COMPLETE, command, identity)


def _job_state_changed(hook: Mapping[str, Any]) -> Envelope:
    resource = _object(hook, "resource", "resource")
    job = _object(resource, "job", "resource.job")
    stage = _object(resource, "stage", "resource.stage")
    identity = _identity(_object(resource, "run", "resource.run"), "resource.run")
    status = _mapped(job, "state", _JOB_STATES, "resource.job.state")
    # Azure sets a job's result when it completes; before that it means nothing.
    result = _mapped(job, "result", _JOB_RESULTS, "resource.job.result") if status == "Completed" else None
    report = _payload(
        JobStateReport,
        # The names, not the display names: the stage and job ids of the YAML.
        stage=_identifier(stage, "name", "resource.stage.name"),
        job=_identifier(job, "name", "resource.job.name"),
        status=status,
        result=result,
        started_at=_optional_time(job, "startTime", "resource.job.startTime"),
        finished_at=_optional_time(job, "finishTime", "resource.job.finishTime"),
    )
    command = _payload(
        RecordPipelineRunProgress,
        pipeline_run_id=identity.pipeline_run_id,
        jobs=[report],
        reported_at=_time(hook, "createdDate", "createdDate"),
        reported_by=REPORTED_BY,
    )
    return _envelope(hook, _PROGRESS, command, identity)


def _run_state_changed(hook: Mapping[str, Any]) -> Envelope:
    resource = _object(hook, "resource", "resource")
    run = _object(resource, "run", "resource.run")
    state = run.get("state")
    if not isinstance(state, str) or state.casefold() != "completed":
        raise InvalidIngressMessage(
            f"resource.run.state is {state!r}: only a completed run is taken "
            "(filter the subscription with runStateId Completed)"
        )
    identity = _identity(run, "resource.run")
    command = _payload(
        CompletePipelineRun,
        pipeline_run_id=identity.pipeline_run_id,
        result=_mapped(run, "result", _RUN_RESULTS, "resource.run.result"),
        # A run's name is its build number.
        version=_version(run, "name", "resource.run.name"),
        finished_at=_time(run, "finishedDate", "resource.run.finishedDate"),
        reported_by=REPORTED_BY,
    )
    return _envelope(hook, _COMPLETE, command, identity)


# --- the fleet's ids -------------------------------------------------------------------


def _identity(holder: Mapping[str, Any], where: str) -> RunIdentity:
    """The fleet's ids from ``holder``'s template parameters, or else its ``devops.*`` tags."""
    parameters = _member(holder, "templateParameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidIngressMessage(f"{where}.templateParameters is not an object")
    tags = _devops_tags(holder, where)
    found: dict[str, str] = {}
    missing: list[str] = []
    for parameter, tag in _TAG_OF_PARAMETER.items():
        given = (parameters or {}).get(parameter)
        if given is not None and not isinstance(given, str):
            raise InvalidIngressMessage(f"{where}.templateParameters.{parameter} is not a string")
        if given is not None and not given.strip():
            # The declared default: a run Azure started by itself (a CI trigger).
            given = None
        tagged = tags.get(tag)
        if given is not None and tagged is not None and given.strip() != tagged:
            raise InvalidIngressMessage(
                f"{where}.templateParameters.{parameter} ({given!r}) and tag {_TAG_PREFIX}{tag} "
                f"({tagged!r}) disagree"
            )
        value = given.strip() if given is not None else tagged
        if value is None:
            missing.append(parameter)
        else:
            found[parameter] = value
    if missing:
        raise InvalidIngressMessage(
            f"{where}.templateParameters lacks {', '.join(missing)} (and no {_TAG_PREFIX}* tag gives "
            "it): not a run the platform queued"
        )
    for parameter in (PROJECT_PARAMETER, RUN_PARAMETER):
        _check_identifier(found[parameter], f"{where}.templateParameters.{parameter}")
    return RunIdentity(
        tenant_id=found[TENANT_PARAMETER],
        project_id=found[PROJECT_PARAMETER],
        pipeline_run_id=found[RUN_PARAMETER],
    )


def _devops_tags(holder: Mapping[str, Any], where: str) -> dict[str, str]:
    """``devops.<name>=<value>`` tags by name; a name given two values is refused."""
    tags = holder.get("tags")
    if not isinstance(tags, list):
        return {}
    found: dict[str, str] = {}
    for tag in tags:
        if not isinstance(tag, str) or not tag.startswith(_TAG_PREFIX) or "=" not in tag:
            continue
        name, _, value = tag[len(_TAG_PREFIX) :].partition("=")
        value = value.strip()
        if not value:
            continue
        if found.get(name, value) != value:
            raise InvalidIngressMessage(f"{where}.tags give {_TAG_PREFIX}{name} two values")
        found[name] = value
    return found


def _member(holder: Mapping[str, Any], name: str) -> Any:
    """``holder[name]``, the key matched without regard to case (Azure's serialisers differ)."""
    if name in holder:
        return holder[name]
    folded = name.casefold()
    return next((value for key, value in holder.items() if key.casefold() == folded), None)


# --- reading fields --------------------------------------------------------------------


def _object(holder: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = holder.get(key)
    if not isinstance(value, dict):
        raise InvalidIngressMessage(f"{where} is missing or not an object")
    return value


def _text(holder: Mapping[str, Any], key: str, where: str) -> str:
    value = holder.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidIngressMessage(f"{where} is missing or not a non-blank string")
    return value.strip()


def _mapped(holder: Mapping[str, Any], key: str, mapping: Mapping[str, str], where: str) -> str:
    value = _text(holder, key, where)
    folded = value.casefold()
    mapped = next((fleet for azure, fleet in mapping.items() if azure.casefold() == folded), None)
    if mapped is None:
        raise InvalidIngressMessage(f"{where} {value!r} is not one of {', '.join(mapping)}")
    return mapped


def _identifier(holder: Mapping[str, Any], key: str, where: str) -> str:
    value = _text(holder, key, where)
    _check_identifier(value, where)
    return value


def _check_identifier(value: str, where: str) -> None:
    try:
        Identifier(value)
    except InvalidValue as error:
        raise InvalidIngressMessage(f"{where}: {error}") from error


def _version(holder: Mapping[str, Any], key: str, where: str) -> str:
    value = _text(holder, key, where)
    try:
        return str(SemanticVersion(value))
    except InvalidValue as error:
        raise InvalidIngressMessage(
            f"{where} {value!r} is not a semantic version (generated definitions are named "
            "$(versionPrefix).$(Rev:r), such as 1.0.7)"
        ) from error


def _time(holder: Mapping[str, Any], key: str, where: str) -> datetime:
    value = _optional_time(holder, key, where)
    if value is None:
        raise InvalidIngressMessage(f"{where} is missing")
    return value


def _optional_time(holder: Mapping[str, Any], key: str, where: str) -> datetime | None:
    value = holder.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidIngressMessage(f"{where} is not an RFC 3339 timestamp")
    try:
        # Python 3.11 reads Azure's seven fractional digits (truncated to microseconds).
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise InvalidIngressMessage(f"{where} {value!r} is not an RFC 3339 timestamp") from error
    if parsed.tzinfo is None:
        raise InvalidIngressMessage(f"{where} {value!r} has no UTC offset")
    return parsed


def _logs_uri(build: Mapping[str, Any]) -> str | None:
    """The build's logs address at Azure, when it gives one over https.

    The address is a convenience for people reading the run: a completion is
    not refused for lacking it.
    """
    logs = build.get("logs")
    url = logs.get("url") if isinstance(logs, dict) else None
    if isinstance(url, str) and url.startswith("https://") and not any(c.isspace() for c in url):
        return url
    return None


# --- building the command --------------------------------------------------------------


def _payload(model: type[_P], **fields: Any) -> _P:
    try:
        return model(**fields)
    except ValidationError as error:
        raise InvalidIngressMessage(
            f"the hook does not make a valid {model.__name__}: {describe_validation_error(error)}"
        ) from error


def _envelope(
    hook: Mapping[str, Any], contract: MessageContract, command: Payload, identity: RunIdentity
) -> Envelope:
    event_type = _text(hook, "eventType", "eventType")
    hook_id = _text(hook, "id", "id")
    envelope = Envelope.new(
        kind_prefix=contract.id_prefix,
        event_type=contract.message_type,
        schema_version=contract.version,
        payload=command.wire(),
        source=SOURCE,
        tenant_id=identity.tenant_id,
        project_id=identity.project_id,
        # Derived from Azure's event id, so a redelivered hook is the same
        # command, down to its trace.
        event_id=deterministic_id(contract.id_prefix, SOURCE, event_type, hook_id),
        trace_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{SOURCE}/{event_type}/{hook_id}/trace").hex,
        occurred_at=_time(hook, "createdDate", "createdDate"),
    )
    # Envelope.new trusts its parts; these came from outside (the tenant id above all).
    try:
        Envelope.model_validate(envelope.model_dump())
    except ValidationError as error:
        raise InvalidIngressMessage(
            f"the hook does not make a valid envelope: {describe_validation_error(error)} "
            f"(tenantId and projectId come from {TENANT_PARAMETER} and {PROJECT_PARAMETER})"
        ) from error
    return envelope
