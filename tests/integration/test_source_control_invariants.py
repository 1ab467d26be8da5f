"""Every invariant of Repository, Branch, Commit and PullRequest, broken through the broker.

Each refusal test sends the command that breaks one rule and checks two
things: the rule is named (a CommandRejected on devops.events, an AuditRecord
on devops.audit, the inbox row's outcome) and no aggregate state changed (the
rows with their versions, and the Git branch heads on disk). A command that
arrives before what it needs is not refused but retried, then dead-lettered
with the reason; a check reported after its pull request closed is stale.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dulwich.repo import Repo

from contracts import source_control as c
from contracts.base import Payload
from services.source_control.handlers import default_branch_id
from services.source_control.settings import SourceControlSettings
from shared_kernel.envelope import Envelope
from shared_kernel.service import ServiceRuntime
from tests.support.bus import Bus, Captured
from tests.support.dead_letters import stored_dead_letters
from tests.support.refusals import inbox_outcome, refuse
from tests.support.scenario import Scenario, unique

pytestmark = pytest.mark.integration

MAIN = "main"
FEATURE = "feature/skeleton"
AUTHOR = "agent-1"  # opens the pull requests (Scenario.open_pull_request) and authors commits
REVIEWER = "bob"

Row = tuple[str, str]  # (table, aggregate id)


# -- what a test looks at ------------------------------------------------------------------


def git_path(scenario: Scenario, repository_id: str) -> Path:
    return SourceControlSettings().git_root / scenario.tenant_id / f"{repository_id}.git"


def git_head(scenario: Scenario, repository_id: str, branch: str) -> bytes | None:
    """A branch head in the bare repository on disk (None: no such repository or branch)."""
    path = git_path(scenario, repository_id)
    if not path.exists():
        return None
    repo = Repo(str(path))
    try:
        return repo.refs[f"refs/heads/{branch}".encode()]
    except KeyError:
        return None
    finally:
        repo.close()


@dataclass(frozen=True)
class Watch:
    """What a refused command must leave alone: rows, rows it must not create, branch heads."""

    repository_id: str
    rows: Sequence[Row] = ()
    absent: Sequence[Row] = ()
    heads: Sequence[str] = (MAIN,)

    async def read(self, scenario: Scenario) -> dict[str, Any]:
        seen = {f"{t}/{i}": await scenario.state_of(t, i) for t, i in [*self.rows, *self.absent]}
        seen |= {f"refs/heads/{b}": git_head(scenario, self.repository_id, b) for b in self.heads}
        return seen


# -- building blocks ------------------------------------------------------------------------


async def caused(scenario: Scenario, command: Envelope, event_type: str) -> Captured:
    """The ``event_type`` event ``command`` caused."""
    (event,) = await scenario.bus.capture.wait_for(
        event_type, where=lambda m: m.envelope.get("causationId") == command.event_id
    )
    return event


async def repository_with_feature(scenario: Scenario, **provision: Any) -> tuple[str, Captured, Captured]:
    """A repository, a feature branch off its default branch and one commit on that branch."""
    repository_id, _ = await scenario.provision(**provision)
    branch = await scenario.branch(repository_id, FEATURE)
    commit = await scenario.commit(repository_id, FEATURE)
    return repository_id, branch, commit


async def open_pull_request(scenario: Scenario, **provision: Any) -> tuple[str, str, Captured]:
    """An open pull request from the feature branch (one commit ahead) into main."""
    repository_id, _, commit = await repository_with_feature(scenario, **provision)
    return repository_id, await scenario.open_pull_request(repository_id, FEATURE), commit


async def vote(scenario: Scenario, pull_request_id: str, reviewer: str, verdict: str = "Approved") -> None:
    review = c.RecordPullRequestReview(pull_request_id=pull_request_id, reviewer=reviewer, vote=verdict)
    await caused(scenario, await scenario.send(review), "PullRequestReviewRecorded")


def check(
    pull_request_id: str, status: str, commit_sha: str, name: str = "build"
) -> c.RecordPullRequestCheck:
    return c.RecordPullRequestCheck(
        pull_request_id=pull_request_id,
        name=name,
        status=status,
        commit_sha=commit_sha,
        reported_by="svc-pipelines",
    )


async def report(scenario: Scenario, pull_request_id: str, status: str, commit_sha: str) -> None:
    command = await scenario.send(check(pull_request_id, status, commit_sha))
    await caused(scenario, command, "PullRequestCheckRecorded")


# How a pull request is closed: the command, its fields and the event it causes when applied.
CLOSE: dict[str, tuple[type[Payload], dict[str, str], str]] = {
    "merge": (c.MergePullRequest, {"merged_by": REVIEWER}, "PullRequestMerged"),
    "abandon": (c.AbandonPullRequest, {"abandoned_by": AUTHOR}, "PullRequestAbandoned"),
}


def close_command(action: str, pull_request_id: str) -> Payload:
    contract, fields, _ = CLOSE[action]
    return contract(pull_request_id=pull_request_id, **fields)


async def closed_pull_request(scenario: Scenario, action: str) -> tuple[str, str, Captured]:
    """An approved pull request, then merged or abandoned."""
    repository_id, pull_request_id, commit = await open_pull_request(scenario)
    await vote(scenario, pull_request_id, REVIEWER)
    command = await scenario.send(close_command(action, pull_request_id))
    await caused(scenario, command, CLOSE[action][2])
    return repository_id, pull_request_id, commit


def random_sha() -> str:
    return secrets.token_hex(20)


# -- Repository -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "asked"),
    [("orders", "orders"), ("Orders", "orders"), ("orders", "ORDERS"), ("Orders.Api", "orders.api")],
    ids=["same name", "lower case of it", "upper case of it", "mixed case of it"],
)
async def test_a_repository_name_is_unique_in_its_project(
    source_control: ServiceRuntime, bus: Bus, held: str, asked: str
) -> None:
    # Azure DevOps and GitHub compare repository names case-insensitively.
    scenario = Scenario(bus, source_control.settings)
    suffix = unique("-")
    taken, provisioned = await scenario.provision(name=held + suffix)
    assert provisioned.payload["name"] == held + suffix  # the name keeps its case
    second = unique("repo")
    command = c.ProvisionRepository(
        repository_id=second,
        name=asked + suffix,
        kind="gitops",
        provider="GitHub",
        requested_by="carol",
    )
    watch = Watch(
        taken,
        rows=[("repositories", taken), ("branches", default_branch_id(taken, MAIN))],
        absent=[("repositories", second), ("branches", default_branch_id(second, MAIN))],
    )
    await refuse(scenario, command, "DuplicateRepositoryName", watch)
    assert not git_path(scenario, second).exists()  # refused before anything was written to Git


@pytest.mark.parametrize(("provider", "requested"), [("AzureDevOps", "GitHub"), ("GitHub", "AzureDevOps")])
async def test_a_repository_provider_cannot_change_after_provisioning(
    source_control: ServiceRuntime, bus: Bus, provider: str, requested: str
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, provisioned = await scenario.provision(provider=provider)
    again = c.ProvisionRepository(
        repository_id=repository_id,
        name=provisioned.payload["name"],
        module_id="mod-orders",
        kind="source",
        provider=requested,
        requested_by="alice",
    )
    watch = Watch(
        repository_id,
        rows=[("repositories", repository_id), ("branches", default_branch_id(repository_id, MAIN))],
    )
    await refuse(scenario, again, "ProviderImmutable", watch)


async def test_a_commit_is_refused_while_the_default_branch_is_missing(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    # Provisioning always creates the default branch and no message deletes it (it is
    # protected, and the Git adapter refuses to delete a repository's HEAD). The provider,
    # Git's source of truth, can lose it though: remove the ref on disk, as an out-of-band
    # deletion would.
    scenario = Scenario(bus, source_control.settings)
    repository_id, _, _ = await repository_with_feature(scenario)
    repo = Repo(str(git_path(scenario, repository_id)))
    try:
        assert repo.refs.remove_if_equals(f"refs/heads/{MAIN}".encode(), None)
    finally:
        repo.close()
    command = scenario.commit_command(repository_id, FEATURE)
    watch = Watch(
        repository_id,
        rows=[("repositories", repository_id)],
        absent=[("commits", command.commit_id)],
        heads=[MAIN, FEATURE],
    )
    await refuse(scenario, command, "DefaultBranchMissing", watch)


# -- Branch ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [MAIN, FEATURE])
async def test_a_branch_name_is_unique_in_its_repository(
    source_control: ServiceRuntime, bus: Bus, name: str
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, feature, _ = await repository_with_feature(scenario)
    existing = {MAIN: default_branch_id(repository_id, MAIN), FEATURE: feature.payload["branchId"]}[name]
    command = c.CreateBranch(
        branch_id=unique("br"), repository_id=repository_id, name=name, from_branch=MAIN, created_by=AUTHOR
    )
    watch = Watch(
        repository_id,
        rows=[("branches", existing)],
        absent=[("branches", command.branch_id)],
        heads=[MAIN, FEATURE],
    )
    await refuse(scenario, command, "DuplicateBranchName", watch)


@pytest.mark.parametrize(
    "name", ["feature", f"{FEATURE}/v2"], ids=["parent of a branch", "child of a branch"]
)
async def test_a_branch_name_that_nests_with_another_branch_is_refused(
    source_control: ServiceRuntime, bus: Bus, name: str
) -> None:
    # Git keeps refs as files: "feature" and "feature/skeleton" cannot both be branches.
    scenario = Scenario(bus, source_control.settings)
    repository_id, feature, _ = await repository_with_feature(scenario)
    command = c.CreateBranch(
        branch_id=unique("br"), repository_id=repository_id, name=name, from_branch=MAIN, created_by=AUTHOR
    )
    watch = Watch(
        repository_id,
        rows=[("branches", feature.payload["branchId"])],
        absent=[("branches", command.branch_id)],
        heads=[MAIN, FEATURE, name],
    )
    await refuse(scenario, command, "BranchNameConflict", watch)


@pytest.mark.parametrize("again", [FEATURE, "feature"], ids=["same name", "name that nested with it"])
async def test_a_deleted_branch_s_name_can_be_created_again(
    source_control: ServiceRuntime, bus: Bus, again: str
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, feature, _ = await repository_with_feature(scenario)
    old_id = feature.payload["branchId"]
    deleted = await scenario.send(c.DeleteBranch(branch_id=old_id, deleted_by=AUTHOR))
    await caused(scenario, deleted, "BranchDeleted")
    assert git_head(scenario, repository_id, FEATURE) is None  # the ref went with the branch

    created = await scenario.branch(repository_id, again)

    new_id = created.payload["branchId"]
    main_head = git_head(scenario, repository_id, MAIN)
    assert main_head is not None
    assert created.payload["fromCommitSha"] == main_head.decode()
    assert git_head(scenario, repository_id, again) == main_head
    old, new = await scenario.state_of("branches", old_id), await scenario.state_of("branches", new_id)
    assert old is not None
    assert new is not None
    assert (old["state"]["status"], new["state"]["status"]) == ("Deleted", "Active")
    assert (old["state"]["name"], new["state"]["name"]) == (FEATURE, again)
    await scenario.commit(repository_id, again)  # and the new branch takes commits


async def test_a_protected_branch_cannot_be_deleted(source_control: ServiceRuntime, bus: Bus) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, _, _ = await repository_with_feature(scenario)
    main_id = default_branch_id(repository_id, MAIN)
    command = c.DeleteBranch(branch_id=main_id, deleted_by=AUTHOR)
    watch = Watch(repository_id, rows=[("branches", main_id)], heads=[MAIN, FEATURE])
    await refuse(scenario, command, "ProtectedBranchCannotBeDeleted", watch)


@pytest.mark.parametrize("branch", [MAIN, "release/1.0"])
async def test_a_protected_branch_is_updated_only_through_a_pull_request(
    source_control: ServiceRuntime, bus: Bus, branch: str
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, _ = await scenario.provision()
    if branch != MAIN:
        await scenario.branch(repository_id, branch, is_protected=True)
    command = scenario.commit_command(repository_id, branch, authored_by=AUTHOR)  # not a bypass identity
    watch = Watch(
        repository_id,
        rows=[("repositories", repository_id)],
        absent=[("commits", command.commit_id)],
        heads=[MAIN, branch],
    )
    await refuse(scenario, command, "ProtectedBranchRequiresPullRequest", watch)


@pytest.mark.parametrize("base", ["unknown sha", "commit of another repository", "tree, not a commit"])
async def test_a_branch_base_commit_must_exist(source_control: ServiceRuntime, bus: Bus, base: str) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, provisioned = await scenario.provision()
    if base == "unknown sha":
        sha = random_sha()
    elif base == "commit of another repository":
        _, other = await scenario.provision()
        sha = other.payload["initialCommitSha"]
    else:
        repo = Repo(str(git_path(scenario, repository_id)))
        try:
            sha = repo[provisioned.payload["initialCommitSha"].encode()].tree.decode()
        finally:
            repo.close()
    command = c.CreateBranch(
        branch_id=unique("br"),
        repository_id=repository_id,
        name=FEATURE,
        from_commit_sha=sha,
        created_by=AUTHOR,
    )
    watch = Watch(repository_id, absent=[("branches", command.branch_id)], heads=[MAIN, FEATURE])
    await refuse(scenario, command, "BaseCommitNotFound", watch)


# -- Commit ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_fields", "rule"),
    [
        ({"message": ""}, "EmptyCommitMessage"),
        ({"message": " \n\t"}, "EmptyCommitMessage"),
        ({"file_changes": []}, "NoFileChanges"),
        ({"artifact_id": None}, "MissingArtifactReference"),
    ],
    ids=["empty message", "blank message", "no file changes", "no artifactId"],
)
async def test_a_commit_request_must_be_complete(
    source_control: ServiceRuntime, bus: Bus, request_fields: dict[str, Any], rule: str
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, feature, _ = await repository_with_feature(scenario)
    command = scenario.commit_command(repository_id, FEATURE, **request_fields)
    watch = Watch(
        repository_id,
        rows=[("branches", feature.payload["branchId"])],
        absent=[("commits", command.commit_id)],
        heads=[MAIN, FEATURE],
    )
    await refuse(scenario, command, rule, watch)


async def test_a_commit_sha_cannot_change_once_committed(source_control: ServiceRuntime, bus: Bus) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, _, committed = await repository_with_feature(scenario)
    commit_id = committed.payload["commitId"]
    reuse = scenario.commit_command(
        repository_id,
        FEATURE,
        commit_id=commit_id,
        message="Regenerate the skeleton",
        file_changes=[{"path": "src/Other.cs", "operation": "Add", "content": "// other\n"}],
    )
    watch = Watch(repository_id, rows=[("commits", commit_id)], heads=[MAIN, FEATURE])
    await refuse(scenario, reuse, "CommitShaImmutable", watch)
    assert (await scenario.state_of("commits", commit_id) or {})["state"]["sha"] == committed.payload["sha"]


# -- PullRequest ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target"),
    [(MAIN, MAIN), (FEATURE, FEATURE), (f"refs/heads/{FEATURE}", FEATURE)],
    ids=["default branch", "feature branch", "full ref name"],
)
async def test_a_pull_request_source_differs_from_its_target(
    source_control: ServiceRuntime, bus: Bus, source: str, target: str
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, _, _ = await repository_with_feature(scenario)
    command = c.OpenPullRequest(
        pull_request_id=unique("pr"),
        repository_id=repository_id,
        source_branch=source,
        target_branch=target,
        title="Into itself",
        created_by=AUTHOR,
    )
    watch = Watch(repository_id, absent=[("pull_requests", command.pull_request_id)], heads=[MAIN, FEATURE])
    await refuse(scenario, command, "SameSourceAndTarget", watch)


@pytest.mark.parametrize("status", [None, "Pending", "Failed"], ids=["never reported", "pending", "failed"])
async def test_a_pull_request_cannot_merge_until_its_required_checks_pass(
    source_control: ServiceRuntime, bus: Bus, status: str | None
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, pull_request_id, commit = await open_pull_request(
        scenario, default_branch_policy={"required_checks": ["build"]}
    )
    await vote(scenario, pull_request_id, REVIEWER)  # the reviewer policy passes; only the check holds it
    if status is not None:
        await report(scenario, pull_request_id, status, commit.payload["sha"])
    watch = Watch(repository_id, rows=[("pull_requests", pull_request_id)], heads=[MAIN, FEATURE])
    await refuse(scenario, close_command("merge", pull_request_id), "RequiredChecksNotPassed", watch)


@pytest.mark.parametrize("passed_on", ["older source commit", "unknown sha"])
async def test_a_check_that_passed_on_another_commit_does_not_let_the_source_head_merge(
    source_control: ServiceRuntime, bus: Bus, passed_on: str
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, pull_request_id, commit = await open_pull_request(
        scenario, default_branch_policy={"required_checks": ["build"]}
    )
    await vote(scenario, pull_request_id, REVIEWER)
    if passed_on == "older source commit":
        await report(scenario, pull_request_id, "Succeeded", commit.payload["sha"])
        await scenario.commit(repository_id, FEATURE)  # the source head moves on, untested
    else:
        await report(scenario, pull_request_id, "Succeeded", random_sha())
    watch = Watch(repository_id, rows=[("pull_requests", pull_request_id)], heads=[MAIN, FEATURE])
    refused = await refuse(
        scenario, close_command("merge", pull_request_id), "RequiredChecksNotPassed", watch
    )
    head = git_head(scenario, repository_id, FEATURE)
    assert head is not None
    (rejection,) = scenario.seen("CommandRejected", commandId=refused.event_id)
    assert f"not the source head {head.decode()}" in rejection.payload["reason"]

    # Once the check passes on the source head itself, the pull request merges it.
    await report(scenario, pull_request_id, "Succeeded", head.decode())
    merged = await caused(
        scenario, await scenario.send(close_command("merge", pull_request_id)), "PullRequestMerged"
    )
    assert merged.payload["policyEvaluation"]["passedChecks"] == ["build"]
    assert git_head(scenario, repository_id, FEATURE) == head
    main_head = git_head(scenario, repository_id, MAIN)
    assert main_head is not None
    assert main_head.decode() == merged.payload["mergeCommitSha"]


async def test_a_pull_request_whose_source_branch_was_deleted_cannot_merge(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, pull_request_id, _ = await open_pull_request(scenario)
    await vote(scenario, pull_request_id, REVIEWER)
    (feature,) = scenario.seen("BranchCreated", repositoryId=repository_id, name=FEATURE)
    deleted = await scenario.send(c.DeleteBranch(branch_id=feature.payload["branchId"], deleted_by=AUTHOR))
    await caused(scenario, deleted, "BranchDeleted")
    watch = Watch(repository_id, rows=[("pull_requests", pull_request_id)], heads=[MAIN, FEATURE])
    await refuse(scenario, close_command("merge", pull_request_id), "SourceBranchMissing", watch)


@pytest.mark.parametrize(
    "votes",
    [
        [],
        [(AUTHOR, "Approved")],
        [(REVIEWER, "Approved"), ("carol", "Rejected")],
        [(REVIEWER, "Approved"), (REVIEWER, "WaitingForAuthor")],
    ],
    ids=["no reviewer", "only the author approves", "another reviewer rejects", "approval withdrawn"],
)
async def test_a_pull_request_merges_only_when_its_policy_passes(
    source_control: ServiceRuntime, bus: Bus, votes: list[tuple[str, str]]
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, pull_request_id, _ = await open_pull_request(scenario)
    for reviewer, verdict in votes:
        await vote(scenario, pull_request_id, reviewer, verdict)
    watch = Watch(repository_id, rows=[("pull_requests", pull_request_id)], heads=[MAIN, FEATURE])
    await refuse(scenario, close_command("merge", pull_request_id), "PolicyNotSatisfied", watch)


@pytest.mark.parametrize(
    ("first", "then"),
    [("abandon", "merge"), ("merge", "abandon"), ("abandon", "abandon"), ("merge", "merge")],
)
async def test_a_pull_request_status_only_moves_forward(
    source_control: ServiceRuntime, bus: Bus, first: str, then: str
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, pull_request_id, _ = await closed_pull_request(scenario, first)
    watch = Watch(repository_id, rows=[("pull_requests", pull_request_id)], heads=[MAIN, FEATURE])
    await refuse(scenario, close_command(then, pull_request_id), "PullRequestNotOpen", watch)


# -- stale and too early --------------------------------------------------------------------


@pytest.mark.parametrize("closed_by", ["merge", "abandon"])
async def test_a_check_reported_after_the_pull_request_closed_is_stale(
    source_control: ServiceRuntime, bus: Bus, closed_by: str
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, pull_request_id, commit = await closed_pull_request(scenario, closed_by)
    watch = Watch(repository_id, rows=[("pull_requests", pull_request_id)], heads=[MAIN, FEATURE])
    before = await watch.read(scenario)
    late = await scenario.send(check(pull_request_id, "Succeeded", commit.payload["sha"]))
    assert await inbox_outcome(scenario, late) == "stale"
    await asyncio.sleep(0.5)  # the relay polls every 200ms: anything published would be here by now
    assert [
        m.event_type for m in bus.capture.messages if m.envelope.get("causationId") == late.event_id
    ] == []
    assert await watch.read(scenario) == before


@pytest.mark.parametrize(
    ("missing", "prerequisite"),
    [("repository", "RepositoryNotProvisionedYet"), ("branch", "BranchNotFoundYet")],
)
async def test_a_commit_whose_prerequisite_never_arrives_is_retried_then_dead_lettered(
    source_control: ServiceRuntime, bus: Bus, missing: str, prerequisite: str
) -> None:
    # A commit to a branch that does not exist is how "the default branch must exist
    # before commits are accepted" shows through messages alone: too early, not refused.
    scenario = Scenario(bus, source_control.settings)
    if missing == "repository":
        repository_id = unique("repo")
    else:
        repository_id, _ = await scenario.provision()
    command = scenario.commit_command(repository_id, "feature/never-created")
    watch = Watch(
        repository_id, absent=[("commits", command.commit_id)], heads=[MAIN, "feature/never-created"]
    )
    before = await watch.read(scenario)
    sent = await scenario.send(command, correlation_id=unique("corr"))

    (dead,) = await stored_dead_letters(source_control.settings, message_id=sent.event_id)
    headers = dead.headers
    retry_delays = source_control.settings.retry_delays
    assert headers["x-exception-type"] == prerequisite
    assert repository_id in str(headers["x-exception-message"])
    assert headers["x-attempts"] == len(retry_delays) + 1
    assert headers["x-service"] == "source_control"
    assert headers["x-failure-outcome"] == "exhausted"
    assert str(headers["x-first-failure-at"]) < str(headers["x-last-failure-at"])
    assert dead.correlation_id == sent.correlation_id
    assert Envelope.from_json(dead.body).event_id == sent.event_id  # the original body
    # Never refused, nothing committed.
    assert scenario.seen("CommandRejected", commandId=sent.event_id) == []
    assert await inbox_outcome(scenario, sent, within=0) is None
    assert await watch.read(scenario) == before


async def test_a_policy_bound_after_the_pull_request_opened_applies_at_merge(
    source_control: ServiceRuntime, bus: Bus
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, pull_request_id, commit = await open_pull_request(scenario)
    await vote(scenario, pull_request_id, REVIEWER)
    # A pipeline now exists: build validation is bound on the target branch.
    bound = await scenario.send(
        c.BindBranchPolicy(
            repository_id=repository_id,
            branch=MAIN,
            binding=c.PolicyBinding(
                binding_id="build-validation",
                policy_type="BuildValidation",
                settings=c.PolicyBindingSettings(check_name="build", pipeline_id="pipe-1"),
            ),
            bound_by="svc-pipelines",
        )
    )
    await caused(scenario, bound, "BranchPolicyBound")
    watch = Watch(repository_id, rows=[("pull_requests", pull_request_id)], heads=[MAIN, FEATURE])
    await refuse(scenario, close_command("merge", pull_request_id), "RequiredChecksNotPassed", watch)

    await report(scenario, pull_request_id, "Succeeded", commit.payload["sha"])
    merged = await caused(
        scenario, await scenario.send(close_command("merge", pull_request_id)), "PullRequestMerged"
    )
    assert merged.payload["policyEvaluation"]["passedChecks"] == ["build"]


@pytest.mark.parametrize("action", ["open", "merge"])
async def test_an_archived_repository_takes_no_pull_request_and_no_merge(
    source_control: ServiceRuntime, bus: Bus, action: str
) -> None:
    scenario = Scenario(bus, source_control.settings)
    repository_id, pull_request_id, _ = await open_pull_request(scenario)
    await vote(scenario, pull_request_id, REVIEWER)
    archived = await scenario.send(
        c.ArchiveRepository(repository_id=repository_id, reason="retired", archived_by="alice")
    )
    await caused(scenario, archived, "RepositoryArchived")
    watch = Watch(repository_id, rows=[("pull_requests", pull_request_id)], heads=[MAIN, FEATURE])
    command: Payload = (
        close_command("merge", pull_request_id)
        if action == "merge"
        else c.OpenPullRequest(
            pull_request_id=unique("pr"),
            repository_id=repository_id,
            source_branch=FEATURE,
            target_branch=MAIN,
            title="After the archive",
            created_by="agent-1",
        )
    )
    await refuse(scenario, command, "RepositoryNotActive", watch)
