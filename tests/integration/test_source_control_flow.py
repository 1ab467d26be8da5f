"""The commands for one module, through the broker, give the expected events and rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage
from dulwich.repo import Repo

from contracts import source_control as c
from services.source_control.settings import SourceControlSettings
from shared_kernel.envelope import Envelope
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus
from tests.support.scenario import Scenario

pytestmark = pytest.mark.integration


async def test_one_module_from_repository_to_merged_pull_request(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, provisioned = await scenario.provision()
    default_branch = provisioned.payload["defaultBranch"]
    await scenario.branch(repository_id, "feature/skeleton")
    commit_command = scenario.commit_command(repository_id, "feature/skeleton")
    commit_envelope = await scenario.send(commit_command, correlation_id="corr-module-1")
    (commit,) = await scenario.wait("CommitCreated", commitId=commit_command.commit_id)
    pull_request_id = await scenario.open_pull_request(repository_id, "feature/skeleton")
    await scenario.send(
        c.RecordPullRequestReview(pull_request_id=pull_request_id, reviewer="bob", vote="Approved")
    )
    await scenario.wait("PullRequestReviewRecorded", pullRequestId=pull_request_id)
    merge = await scenario.send(
        c.MergePullRequest(pull_request_id=pull_request_id, merged_by="bob"), correlation_id="corr-merge"
    )
    (merged,) = await scenario.wait("PullRequestMerged", pullRequestId=pull_request_id)

    # The envelope: ids, versions, correlation carried, causation set, AMQP mirrored.
    envelope = Envelope.model_validate(commit.envelope)
    assert envelope.event_id.startswith("evt-")
    assert envelope.causation_id == commit_envelope.event_id
    assert envelope.correlation_id == "corr-module-1"
    assert envelope.trace_id == commit_envelope.trace_id
    assert envelope.source == "devops.source-control"
    assert (envelope.aggregate_type, envelope.aggregate_id, envelope.aggregate_version) == (
        "Commit",
        commit_command.commit_id,
        1,
    )
    assert commit.routing_key == "source-control.commit-created.v1"
    assert commit.properties.message_id == envelope.event_id
    assert commit.properties.type == "CommitCreated"
    assert commit.properties.correlation_id == "corr-module-1"
    assert commit.properties.content_type == "application/json"
    assert commit.properties.delivery_mode == 2
    assert commit.properties.headers["x-tenant-id"] == scenario.tenant_id
    assert commit.properties.headers["x-causation-id"] == commit_envelope.event_id
    assert commit.properties.headers["x-schema-version"] == 1
    assert merged.envelope["causationId"] == merge.event_id
    assert merged.envelope["correlationId"] == "corr-merge"

    # Git: the recorded sha and tree are Git's own, in the repository on disk.
    settings = SourceControlSettings()
    git = Repo(str(settings.git_root / scenario.tenant_id / f"{repository_id}.git"))
    recorded = git[commit.payload["sha"].encode()]
    assert recorded.tree.decode() == commit.payload["treeHash"]
    assert commit.payload["artifactId"] == commit_command.artifact_id
    merge_commit = git[merged.payload["mergeCommitSha"].encode()]
    assert git.refs[f"refs/heads/{default_branch}".encode()] == merge_commit.id
    assert commit.payload["sha"].encode() in merge_commit.parents

    # The rows.
    repository = await scenario.state_of("repositories", repository_id)
    assert repository is not None
    assert repository["state"]["status"] == "Active"
    stored_commit = await scenario.state_of("commits", commit_command.commit_id)
    assert stored_commit is not None
    assert stored_commit["state"]["sha"] == commit.payload["sha"]
    pull_request = await scenario.state_of("pull_requests", pull_request_id)
    assert pull_request is not None
    assert pull_request["state"]["status"] == "Merged"
    assert pull_request["version"] == 3  # opened, reviewed, merged
    outbox = await scenario.rows("SELECT count(*) AS n FROM outbox WHERE tenant_id = $1", scenario.tenant_id)
    assert outbox[0]["n"] == 0  # all published


async def test_a_gitops_commit_records_its_repository_kind(source_control: ServiceRuntime, bus: Bus) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, _ = await scenario.provision(kind="gitops")
    commit = await scenario.commit(
        repository_id,
        "main",
        authored_by="svc-release",  # the platform's own identity may bypass the protected branch
        file_changes=[
            {
                "path": "environments/dev/orders/kustomization.yaml",
                "operation": "Add",
                "content": "resources: []\n",
            }
        ],
    )
    assert commit.payload["repositoryKind"] == "gitops"
    assert commit.payload["bypassedPolicyBy"] == "svc-release"


async def test_a_late_subscriber_reads_the_past_from_the_event_history_stream(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    started = datetime.now(UTC) - timedelta(seconds=5)
    repository_id, _ = await scenario.provision()

    # A subscriber that was not listening replays the stream from a point in time.
    channel = bus.channel
    await channel.set_qos(prefetch_count=500)
    stream = await channel.declare_queue("devops.events.history", passive=True)
    replayed: list[str] = []
    done = asyncio.Event()

    async def read(message: AbstractIncomingMessage) -> None:
        body = orjson.loads(message.body)
        if body.get("tenantId") == scenario.tenant_id:
            replayed.append(body["eventType"])
            if len(replayed) >= 2:
                done.set()
        await message.ack()

    tag = await stream.consume(read, arguments={"x-stream-offset": started})
    await asyncio.wait_for(done.wait(), 15)
    await stream.cancel(tag)
    assert sorted(replayed) == ["BranchCreated", "RepositoryProvisioned"], repository_id
