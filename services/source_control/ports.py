"""The Git provider port of Source Control.

Source Control drives Git hosting it does not own (Azure DevOps in
production, bare repositories on disk locally), so the handlers see only this
protocol. Operations are provider-neutral and idempotent: every write carries
the id of the command that asked for it, recorded in the commit as a
``Command-Id`` trailer, and takes its commit date from the command, so a
redelivered command finds its commit instead of making a second one.
"""

# Errors are named for what happened, like the domain's (BranchExists, not BranchExistsError).

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from shared_kernel.domain.value_objects import BranchName, CommitSha, RemoteUrl, TreeHash

ChangeOperation = Literal["Add", "Edit", "Delete"]

COMMAND_ID_TRAILER = "Command-Id"


class GitError(Exception):
    """Base of every error a Git provider raises on purpose."""


class InvalidRequest(GitError, ValueError):
    """The request is malformed (a name, an identity, a command id); nothing was written."""


class InvalidChange(InvalidRequest):
    """A file change cannot apply to the branch as it is; nothing was written."""

    def __init__(self, message: str, paths: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.paths = tuple(paths)


class InvalidPath(InvalidChange):
    """A path is absolute, escapes the repository or is otherwise unsafe."""


class RepositoryNotFound(GitError):
    """No repository with that id exists for the tenant."""


class RepositoryExists(GitError):
    """The repository exists but was not created by this command."""


class BranchNotFound(GitError):
    """The branch does not exist."""


class BranchExists(GitError):
    """The branch exists and points elsewhere than asked, or a branch nests with its name."""


class DefaultBranchNotDeletable(GitError):
    """The branch is the repository's default branch (its HEAD); nothing was deleted."""


class CommitNotFound(GitError):
    """No commit with that id (or ref) exists in the repository."""


class MergeConflict(GitError):
    """Both sides changed the same paths differently; nothing was written."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = tuple(sorted(paths))
        super().__init__(f"merge conflict in {', '.join(self.paths)}")


class NothingToMerge(GitError):
    """The source branch is already contained in the target branch."""


class ConcurrentUpdate(GitError):
    """The branch moved under the write (a writer outside the provider's lock), or a
    merge's source branch no longer points at the commit the caller checked."""


_UNSAFE_PATH_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
_COMMAND_ID = re.compile(r"\S{1,255}")


def check_path(path: str) -> str:
    """Refuse paths that are absolute, empty, or could escape the work tree."""
    segments = path.split("/")
    unsafe = (
        not path
        or path.startswith("/")
        or _UNSAFE_PATH_CHARS.search(path) is not None
        or any(seg in ("", ".", "..") or seg.lower() == ".git" for seg in segments)
    )
    if unsafe:
        raise InvalidPath(f"unsafe repository path {path!r}", [path])
    return path


def check_command_id(command_id: str) -> str:
    """A command id must fit on one trailer line."""
    if not _COMMAND_ID.fullmatch(command_id):
        raise InvalidRequest(f"command id must be 1..255 non-blank characters, got {command_id!r}")
    return command_id


def with_command_id(message: str, command_id: str) -> str:
    """The commit message as written: the caller's text, then the ``Command-Id`` trailer."""
    trailer = f"{COMMAND_ID_TRAILER}: {check_command_id(command_id)}\n"
    body = message.strip()
    return f"{body}\n\n{trailer}" if body else trailer


def command_id_of(message: str) -> str | None:
    """The command id a commit records: its message's last line, if that is the trailer."""
    lines = message.rstrip().splitlines()
    prefix = f"{COMMAND_ID_TRAILER}: "
    if lines and lines[-1].startswith(prefix):
        return lines[-1].removeprefix(prefix).strip() or None
    return None


@dataclass(frozen=True, slots=True)
class FileWrite:
    """One change to one file; ``content`` is required for Add/Edit, absent for Delete."""

    path: str
    operation: ChangeOperation
    content: bytes | None = None

    def __post_init__(self) -> None:
        check_path(self.path)
        if self.operation not in ("Add", "Edit", "Delete"):
            raise InvalidChange(f"unknown operation {self.operation!r}", [self.path])
        if (self.operation == "Delete") != (self.content is None):
            raise InvalidChange(
                f"{self.operation} of {self.path!r} must "
                f"{'not carry' if self.operation == 'Delete' else 'carry'} content",
                [self.path],
            )


@dataclass(frozen=True, slots=True)
class CommitIdentity:
    """Author and committer of a commit (Git records both as ``name <email>``)."""

    name: str
    email: str

    def __post_init__(self) -> None:
        for value in (self.name, self.email):
            if not value.strip() or any(ch in value for ch in "<>\n\r\x00"):
                raise InvalidRequest(f"invalid commit identity part {value!r}")


@dataclass(frozen=True, slots=True)
class RepositoryCreated:
    remote_url: RemoteUrl
    default_branch: BranchName
    initial_commit_sha: CommitSha
    tree_hash: TreeHash


@dataclass(frozen=True, slots=True)
class CommitWritten:
    """A commit on a branch, written now or found from an earlier delivery."""

    sha: CommitSha
    tree_hash: TreeHash
    parent_shas: tuple[CommitSha, ...]


@dataclass(frozen=True, slots=True)
class CommitInfo:
    sha: CommitSha
    tree_hash: TreeHash
    parent_shas: tuple[CommitSha, ...]
    message: str
    author: CommitIdentity
    committed_at: datetime
    command_id: str | None


class GitProvider(Protocol):
    """Git hosting as Source Control uses it. Every write is idempotent by ``command_id``."""

    async def create_repository(
        self,
        *,
        tenant_id: str,
        repository_id: str,
        default_branch: str,
        message: str,
        author: CommitIdentity,
        committed_at: datetime,
        command_id: str,
    ) -> RepositoryCreated: ...

    async def commit_exists(self, *, tenant_id: str, repository_id: str, sha: str) -> bool: ...

    async def branch_head(self, *, tenant_id: str, repository_id: str, branch: str) -> CommitSha | None: ...

    async def create_branch(
        self, *, tenant_id: str, repository_id: str, branch: str, from_sha: str
    ) -> None: ...

    async def delete_branch(self, *, tenant_id: str, repository_id: str, branch: str) -> None:
        """Remove the branch ref; a branch that does not exist is already deleted."""
        ...

    async def commit(
        self,
        *,
        tenant_id: str,
        repository_id: str,
        branch: str,
        changes: Sequence[FileWrite],
        message: str,
        author: CommitIdentity,
        committed_at: datetime,
        command_id: str,
    ) -> CommitWritten: ...

    async def merge(
        self,
        *,
        tenant_id: str,
        repository_id: str,
        source_branch: str,
        source_sha: str,
        target_branch: str,
        message: str,
        author: CommitIdentity,
        committed_at: datetime,
        command_id: str,
    ) -> CommitWritten:
        """Merge ``source_sha``, which must still be the source branch's head
        (ConcurrentUpdate otherwise), so the commit merged is the one checked."""
        ...

    async def read_file(
        self, *, tenant_id: str, repository_id: str, ref_or_sha: str, path: str
    ) -> bytes | None: ...

    async def commit_info(self, *, tenant_id: str, repository_id: str, ref_or_sha: str) -> CommitInfo: ...
