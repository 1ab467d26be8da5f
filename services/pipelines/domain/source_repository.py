"""Pipelines' read model of Source Control's repositories.

Pipelines generates a definition for a module when a pull request is merged
into its repository, and needs to know the repository's name, module, kind and
default branch to do so: it keeps them from RepositoryProvisioned, never
reading Source Control's database. The module's type is inferred from what
its commits added: a ``Dockerfile`` on the default branch (committed there,
or on a branch merged into it) makes a service (it ships a container image),
anything else a library (it ships a package); a Dockerfile on a branch that
was never merged does not count. A GeneratePipeline command can always state
the type instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from services.pipelines.domain.values import ModuleType
from shared_kernel.domain import ReadModel
from shared_kernel.domain.value_objects import BranchName, CommitSha, Identifier


class RepositoryKind(StrEnum):
    SOURCE = "source"
    GITOPS = "gitops"


def _is_dockerfile(path: str) -> bool:
    return path.rsplit("/", 1)[-1] == "Dockerfile"


class SourceRepository(ReadModel):
    """A repository as Source Control announced it, and what Pipelines learned from its commits."""

    aggregate_type = "SourceRepository"
    id_field = "repository_id"

    repository_id: Identifier
    name: str
    module_id: Identifier | None
    kind: RepositoryKind
    default_branch: BranchName
    # Branches that hold a Dockerfile: added there, or merged in from a branch that held one.
    dockerfile_branches: tuple[str, ...] = ()
    # The last commit Pipelines heard of on each branch (a manual run builds it by default).
    heads: dict[str, CommitSha] = {}

    @property
    def module_type(self) -> ModuleType:
        return ModuleType.SERVICE if self.default_branch in self.dockerfile_branches else ModuleType.LIBRARY

    @property
    def builds(self) -> bool:
        """Only source repositories are built; a GitOps repository's commits start nothing."""
        return self.kind is RepositoryKind.SOURCE

    def learn_from_commit(self, branch: str, sha: str, paths: Iterable[str]) -> None:
        """A commit landed on ``branch``: it is the branch's head, and may bring a Dockerfile."""
        self.heads = {**self.heads, branch: CommitSha(sha)}
        if any(_is_dockerfile(path) for path in paths):
            self._holds_dockerfile(branch)

    def learn_from_merge(self, source_branch: str, target_branch: str, merge_sha: str) -> None:
        """``source_branch`` was merged into ``target_branch``, whose head is now the merge commit."""
        self.heads = {**self.heads, target_branch: CommitSha(merge_sha)}
        if source_branch in self.dockerfile_branches:
            self._holds_dockerfile(target_branch)

    def _holds_dockerfile(self, branch: str) -> None:
        if branch not in self.dockerfile_branches:
            self.dockerfile_branches = (*self.dockerfile_branches, branch)

    def head_of(self, branch: str) -> CommitSha | None:
        return self.heads.get(branch)
