"""The Source Control database: aggregate tables, inbox and outbox.

Uniqueness invariants are constraints that include the tenant; each maps to
the domain rule it backs (see ``MAPPINGS``).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, Text, UniqueConstraint, text

from services.source_control.domain import errors
from services.source_control.domain.branch import Branch
from services.source_control.domain.commit import Commit
from services.source_control.domain.pull_request import PullRequest
from services.source_control.domain.repository import Repository
from shared_kernel.persistence.store import AggregateMapping
from shared_kernel.persistence.tables import aggregate_table, service_metadata

metadata = service_metadata()

repositories = aggregate_table(
    metadata,
    "repositories",
    Column("name", Text, nullable=False),
    Column("module_id", Text, nullable=True),
    Column("kind", Text, nullable=False),
    # Azure DevOps and GitHub compare names case-insensitively: unique by the key.
    Column("name_key", Text, nullable=False),
    UniqueConstraint("tenant_id", "project_id", "name_key", name="uq_repositories_project_name"),
)
branches = aggregate_table(
    metadata,
    "branches",
    Column("repository_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("status", Text, nullable=False),
    # A deleted branch's name may be used again: unique among active branches.
    Index(
        "uq_branches_repository_name",
        "tenant_id",
        "repository_id",
        "name",
        unique=True,
        postgresql_where=text("status = 'Active'"),
    ),
)
commits = aggregate_table(
    metadata,
    "commits",
    Column("repository_id", Text, nullable=False),
    Column("sha", Text, nullable=False),
    Column("artifact_id", Text, nullable=False),
    UniqueConstraint("tenant_id", "repository_id", "sha", name="uq_commits_repository_sha"),
    Index("ix_commits_artifact", "tenant_id", "artifact_id"),
)
pull_requests = aggregate_table(
    metadata,
    "pull_requests",
    Column("repository_id", Text, nullable=False),
    Column("number", Integer, nullable=False),
    Column("source_branch", Text, nullable=False),
    Column("status", Text, nullable=False),
    UniqueConstraint("tenant_id", "repository_id", "number", name="uq_pull_requests_number"),
    Index("ix_pull_requests_source", "tenant_id", "repository_id", "source_branch", "status"),
)

AGGREGATE_TABLES = ("repositories", "branches", "commits", "pull_requests")

MAPPINGS = {
    Repository: AggregateMapping(
        Repository,
        repositories,
        columns={
            "name": lambda r: str(r.name),
            "module_id": lambda r: r.module_id,
            "kind": lambda r: str(r.kind),
            "name_key": lambda r: r.name.key,
        },
        unique_rules={
            "uq_repositories_project_name": lambda r: errors.DuplicateRepositoryName(
                r.project_id or "", str(r.name)
            )
        },
    ),
    Branch: AggregateMapping(
        Branch,
        branches,
        columns={
            "repository_id": lambda b: b.repository_id,
            "name": lambda b: str(b.name),
            "status": lambda b: str(b.status),
        },
        unique_rules={
            "uq_branches_repository_name": lambda b: errors.DuplicateBranchName(b.repository_id, str(b.name))
        },
    ),
    Commit: AggregateMapping(
        Commit,
        commits,
        columns={
            "repository_id": lambda c: c.repository_id,
            "sha": lambda c: str(c.sha),
            "artifact_id": lambda c: str(c.artifact_id),
        },
    ),
    PullRequest: AggregateMapping(
        PullRequest,
        pull_requests,
        columns={
            "repository_id": lambda p: p.repository_id,
            "number": lambda p: p.number,
            "source_branch": lambda p: str(p.source_branch),
            "status": lambda p: str(p.status),
        },
    ),
}
