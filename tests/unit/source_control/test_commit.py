"""Commit: the request rules checked before Git, the recorded commit, its fixed sha."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts import registry
from services.source_control.domain import Commit, FileChange, FileOperation, FilePath, RepositoryKind
from services.source_control.domain.errors import (
    CommitShaImmutable,
    DuplicateFilePath,
    EmptyCommitMessage,
    MissingArtifactReference,
    NoFileChanges,
)
from shared_kernel.domain import InvalidValue

pytestmark = pytest.mark.unit

AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
SHA = "3" * 40
PARENT = "2" * 40
TREE = "4" * 40
CONTENT_SHA = hashlib.sha256(b"kind: Deployment\n").hexdigest()
CHANGES = [
    FileChange(path="deploy/app.yaml", operation=FileOperation.ADD, content_sha256=CONTENT_SHA),
    FileChange(path="README.md", operation=FileOperation.DELETE),
]


def record(**overrides: object) -> Commit:
    fields: dict[str, object] = {
        "commit_id": "commit-1",
        "command_id": "cmd-0f1e",
        "repository_id": "repo-1",
        "tenant_id": "tenant-1",
        "project_id": "project-1",
        "module_id": "module-1",
        "repository_kind": RepositoryKind.SOURCE,
        "branch": "feature/orders",
        "sha": SHA,
        "parent_shas": [PARENT],
        "tree_hash": TREE,
        "message": "Generate orders service",
        "artifact_id": "artifact-42",
        "authored_by": "agent-7",
        "bypassed_policy_by": None,
        "file_changes": CHANGES,
        "at": AT,
    }
    return Commit.record_created(**{**fields, **overrides})  # type: ignore[arg-type]


def test_record_created_records_commit_created() -> None:
    commit = record(bypassed_policy_by="agent-7", repository_kind=RepositoryKind.GITOPS)

    [event] = commit.pull_events()
    registry.get(event.event_type, 1).payload.model_validate(event.payload)
    assert event.event_type == "CommitCreated"
    assert event.payload == {
        "commitId": "commit-1",
        "repositoryId": "repo-1",
        "tenantId": "tenant-1",
        "projectId": "project-1",
        "moduleId": "module-1",
        "repositoryKind": "gitops",
        "branch": "feature/orders",
        "sha": SHA,
        "parentShas": [PARENT],
        "treeHash": TREE,
        "message": "Generate orders service",
        "artifactId": "artifact-42",
        "authoredBy": "agent-7",
        "bypassedPolicyBy": "agent-7",
        "fileChanges": [
            {"path": "deploy/app.yaml", "operation": "Add", "contentSha256": CONTENT_SHA},
            {"path": "README.md", "operation": "Delete", "contentSha256": None},
        ],
        "createdAt": "2025-03-01T09:30:00Z",
    }
    assert (commit.created_by, commit.command_id) == ("agent-7", "cmd-0f1e")


def test_a_valid_request_passes_the_checks() -> None:
    Commit.check_request("Generate orders service", CHANGES, "artifact-42")


@pytest.mark.parametrize(
    ("message", "changes", "artifact_id", "error"),
    [
        ("", CHANGES, "artifact-42", EmptyCommitMessage),
        ("  \n", CHANGES, "artifact-42", EmptyCommitMessage),
        ("Generate", [], "artifact-42", NoFileChanges),
        ("Generate", [CHANGES[0], CHANGES[0]], "artifact-42", DuplicateFilePath),
        ("Generate", CHANGES, None, MissingArtifactReference),
        ("Generate", CHANGES, " ", MissingArtifactReference),
    ],
)
def test_a_request_breaking_a_rule_is_refused_before_git_and_nothing_is_recorded(
    message: str, changes: list[FileChange], artifact_id: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error):
        Commit.check_request(message, changes, artifact_id)
    with pytest.raises(error):
        record(message=message, file_changes=changes, artifact_id=artifact_id)


def test_confirm_sha_accepts_the_recorded_sha_in_any_case() -> None:
    record().confirm_sha(SHA.upper())


def test_a_different_sha_for_an_existing_commit_is_refused() -> None:
    commit = record()
    commit.pull_events()

    with pytest.raises(CommitShaImmutable, match=SHA):
        commit.confirm_sha("5" * 40)
    assert commit.sha == SHA
    assert not commit.has_pending_events


def test_the_sha_cannot_be_reassigned() -> None:
    commit = record()

    with pytest.raises(ValidationError):
        commit.sha = "5" * 40  # type: ignore[misc,assignment]
    assert commit.sha == SHA


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../outside",
        "a/../../b",
        "a//b",
        "./a",
        "dir/",
        ".git/config",
        "sub/.GIT/hooks",
        "a\\b",
    ],
)
def test_a_path_outside_the_work_tree_is_invalid(path: str) -> None:
    with pytest.raises(InvalidValue):
        FilePath(path)
    with pytest.raises(ValidationError):
        FileChange(path=path, operation=FileOperation.DELETE)


def test_nested_and_dotted_paths_are_fine() -> None:
    assert FilePath(" environments/dev/orders/.gitignore ") == "environments/dev/orders/.gitignore"


@pytest.mark.parametrize(
    ("operation", "content_sha256"),
    [(FileOperation.ADD, None), (FileOperation.EDIT, None), (FileOperation.DELETE, CONTENT_SHA)],
)
def test_only_adds_and_edits_carry_a_content_hash(
    operation: FileOperation, content_sha256: str | None
) -> None:
    with pytest.raises(ValidationError):
        FileChange(path="a.txt", operation=operation, content_sha256=content_sha256)


def test_a_content_hash_is_a_sha256_hex_digest() -> None:
    with pytest.raises(ValidationError):
        FileChange(path="a.txt", operation=FileOperation.EDIT, content_sha256="sha256:" + CONTENT_SHA)
