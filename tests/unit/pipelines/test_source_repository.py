"""Pipelines' read model of a repository: a Dockerfile that reached the default branch makes a service."""

from __future__ import annotations

import pytest

from services.pipelines.domain import ModuleType
from services.pipelines.domain.source_repository import RepositoryKind, SourceRepository
from tests.unit.pipelines.builders import AT

pytestmark = pytest.mark.unit

SHA = "1" * 40


def repository() -> SourceRepository:
    return SourceRepository(
        repository_id="repo-1",
        tenant_id="tenant-1",
        project_id="proj-1",
        name="orders",
        module_id="mod-orders",
        kind=RepositoryKind.SOURCE,
        default_branch="main",
        created_at=AT,
        created_by="alice",
        updated_at=AT,
        updated_by="alice",
    )


def test_a_dockerfile_on_a_branch_never_merged_does_not_make_a_service() -> None:
    known = repository()
    known.learn_from_commit("feature/try-docker", SHA, ["Dockerfile", "src/Program.cs"])
    assert known.module_type is ModuleType.LIBRARY


def test_a_dockerfile_merged_into_the_default_branch_makes_a_service() -> None:
    known = repository()
    known.learn_from_commit("feature/skeleton", SHA, ["deploy/Dockerfile"])
    known.learn_from_merge("feature/skeleton", "main", "2" * 40)
    assert known.module_type is ModuleType.SERVICE
    assert known.head_of("main") == "2" * 40


def test_a_dockerfile_committed_on_the_default_branch_makes_a_service() -> None:
    known = repository()
    known.learn_from_commit("main", SHA, ["Dockerfile"])
    assert known.module_type is ModuleType.SERVICE
    assert known.head_of("main") == SHA


def test_a_repository_survives_storage() -> None:
    known = repository()
    known.learn_from_commit("feature/a", SHA, ["Dockerfile"])
    known.learn_from_merge("feature/a", "main", "2" * 40)
    again = SourceRepository.model_validate_json(known.wire_json())
    assert again.module_type is ModuleType.SERVICE
    assert again.heads == known.heads
