"""Real Git repositories on local disk, written with dulwich (no ``git`` binary).

Bare repositories live at ``<root>/<tenant_id>/<repository_id>.git``; objects
and SHAs are Git's own, so any Git client can clone them by ``file://`` URL.
Writes to one repository are serialised twice: an asyncio.Lock per repository
(and event loop) queues a process's tasks without tying up worker threads, and
``flock`` on ``<repo>/devops.lock`` serialises threads and processes that
share the disk. Branch refs still move by compare-and-swap, so a writer
outside that lock makes a write fail rather than vanish.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import stat
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from dulwich.errors import NotTreeError
from dulwich.graph import can_fast_forward, find_merge_base
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from services.source_control.ports import (
    BranchExists,
    BranchNotFound,
    CommitIdentity,
    CommitInfo,
    CommitNotFound,
    CommitWritten,
    ConcurrentUpdate,
    DefaultBranchNotDeletable,
    FileWrite,
    InvalidChange,
    InvalidRequest,
    MergeConflict,
    NothingToMerge,
    RepositoryCreated,
    RepositoryExists,
    RepositoryNotFound,
    check_path,
    command_id_of,
    with_command_id,
)
from shared_kernel.domain.errors import InvalidValue
from shared_kernel.domain.value_objects import BranchName, CommitSha, RemoteUrl, TreeHash

T = TypeVar("T")
# A flattened tree: file path -> (mode, blob id).
Entries = dict[str, tuple[int, ObjectID]]

LOCK_FILE = "devops.lock"
INITIAL_FILE = ".gitkeep"
# How many commits back from a branch head a command's trailer is looked for.
IDEMPOTENCY_DEPTH = 200
_FILE_MODE = 0o100644
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_HEX_SHA = re.compile(r"[0-9a-f]{40}")
_IDENTITY = re.compile(r"(?P<name>.*?) <(?P<email>[^>]*)>")


class LocalGitProvider:
    """The GitProvider port over bare repositories under ``root``."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._guard = threading.Lock()
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Path, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    def repository_path(self, tenant_id: str, repository_id: str) -> Path:
        tenant = _checked_name(tenant_id, "tenant id")
        return self._root / tenant / f"{_checked_name(repository_id, 'repository id')}.git"

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
    ) -> RepositoryCreated:
        path = self.repository_path(tenant_id, repository_id)
        branch = _checked_branch(default_branch)
        stamp = _Stamp(with_command_id(message, command_id), author, committed_at)
        return await self._serialised(path, lambda: _create(path, branch, stamp, command_id), create=True)

    async def commit_exists(self, *, tenant_id: str, repository_id: str, sha: str) -> bool:
        path = self.repository_path(tenant_id, repository_id)
        return await asyncio.to_thread(_read, path, lambda repo: _commit_or_none(repo, sha) is not None)

    async def branch_head(self, *, tenant_id: str, repository_id: str, branch: str) -> CommitSha | None:
        path = self.repository_path(tenant_id, repository_id)
        ref = _ref(_checked_branch(branch))
        head = await asyncio.to_thread(_read, path, lambda repo: _head(repo, ref))
        return None if head is None else CommitSha(head.decode())

    async def create_branch(self, *, tenant_id: str, repository_id: str, branch: str, from_sha: str) -> None:
        path = self.repository_path(tenant_id, repository_id)
        name = _checked_branch(branch)
        await self._serialised(path, lambda: _create_branch(path, name, from_sha))

    async def delete_branch(self, *, tenant_id: str, repository_id: str, branch: str) -> None:
        path = self.repository_path(tenant_id, repository_id)
        name = _checked_branch(branch)
        await self._serialised(path, lambda: _delete_branch(path, name))

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
    ) -> CommitWritten:
        path = self.repository_path(tenant_id, repository_id)
        name = _checked_branch(branch)
        stamp = _Stamp(with_command_id(message, command_id), author, committed_at)
        changes = tuple(changes)
        return await self._serialised(path, lambda: _commit(path, name, changes, stamp, command_id))

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
        path = self.repository_path(tenant_id, repository_id)
        source, target = _checked_branch(source_branch), _checked_branch(target_branch)
        if source == target:
            raise InvalidRequest("cannot merge a branch into itself")
        if not _HEX_SHA.fullmatch(source_sha):
            raise InvalidRequest(f"source sha must be 40 lower-case hex digits, got {source_sha!r}")
        expected = ObjectID(source_sha.encode())
        stamp = _Stamp(with_command_id(message, command_id), author, committed_at)
        return await self._serialised(
            path,
            lambda: _merge(
                path, source=source, expected=expected, target=target, stamp=stamp, command_id=command_id
            ),
        )

    async def read_file(
        self, *, tenant_id: str, repository_id: str, ref_or_sha: str, path: str
    ) -> bytes | None:
        repo_path = self.repository_path(tenant_id, repository_id)
        file_path = check_path(path)
        return await asyncio.to_thread(
            _read,
            repo_path,
            lambda repo: _file(repo, _resolve(repo, ref_or_sha), file_path),
        )

    async def commit_info(self, *, tenant_id: str, repository_id: str, ref_or_sha: str) -> CommitInfo:
        path = self.repository_path(tenant_id, repository_id)
        return await asyncio.to_thread(_read, path, lambda repo: _info(_resolve(repo, ref_or_sha)))

    async def _serialised(self, path: Path, work: Callable[[], T], *, create: bool = False) -> T:
        async with self._lock_for(path):
            return await asyncio.to_thread(_exclusively, path, work, create)

    def _lock_for(self, path: Path) -> asyncio.Lock:
        # asyncio locks belong to one event loop; threads running their own loops
        # get their own locks and meet at the file lock instead.
        loop = asyncio.get_running_loop()
        with self._guard:
            locks = self._locks.get(loop)
            if locks is None:
                locks = self._locks[loop] = {}
            return locks.setdefault(path, asyncio.Lock())


class _Stamp:
    """What makes a commit reproducible: its full message, author and date."""

    __slots__ = ("author", "committed_at", "message")

    def __init__(self, message: str, author: CommitIdentity, committed_at: datetime) -> None:
        if committed_at.utcoffset() is None:
            raise InvalidRequest("committed_at must be timezone-aware")
        self.message, self.author, self.committed_at = message, author, committed_at


# --- blocking work, run in worker threads ---------------------------------------


def _exclusively(path: Path, work: Callable[[], T], create: bool) -> T:
    if create:
        path.mkdir(parents=True, exist_ok=True)
    elif not _is_repository(path):
        raise RepositoryNotFound(f"no repository {path.parent.name}/{path.name}")
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # flock (not lockf) locks the open file description, so it also
        # excludes other threads of this process, not only other processes.
        fcntl.flock(fd, fcntl.LOCK_EX)
        return work()
    finally:
        os.close(fd)


@contextmanager
def _opened(path: Path) -> Iterator[Repo]:
    if not _is_repository(path):
        raise RepositoryNotFound(f"no repository {path.parent.name}/{path.name}")
    repo = Repo(str(path))
    try:
        yield repo
    finally:
        repo.close()


def _read(path: Path, work: Callable[[Repo], T]) -> T:
    with _opened(path) as repo:
        return work(repo)


def _create(path: Path, branch: BranchName, stamp: _Stamp, command_id: str) -> RepositoryCreated:
    if not _is_repository(path):
        Repo.init_bare(str(path), default_branch=branch.encode()).close()
    with _opened(path) as repo:
        ref = _ref(branch)
        head = _head(repo, ref)
        if head is not None:
            root = _root_commit(repo, head)
            if command_id_of(_message(root)) != command_id:
                raise RepositoryExists(f"repository {path.name} exists, made by another command")
        else:
            # An earlier attempt may have stopped between init and the first commit.
            if repo.refs.keys(base=Ref(b"refs/heads/")) or repo.refs.follow(Ref(b"HEAD"))[0][-1] != ref:
                raise RepositoryExists(f"repository {path.name} exists with other branches")
            blob = Blob.from_string(b"")
            repo.object_store.add_object(blob)
            root = _write_commit(
                repo,
                _write_tree(repo, {INITIAL_FILE: (_FILE_MODE, blob.id)}),
                [],
                stamp,
            )
            _add(repo, ref, root)
        return RepositoryCreated(
            remote_url=RemoteUrl(path.resolve().as_uri()),
            default_branch=branch,
            initial_commit_sha=CommitSha(root.id.decode()),
            tree_hash=TreeHash(root.tree.decode()),
        )


def _create_branch(path: Path, branch: BranchName, from_sha: str) -> None:
    with _opened(path) as repo:
        start = _commit_or_none(repo, from_sha)
        if start is None:
            raise CommitNotFound(f"no commit {from_sha!r}")
        ref = _ref(branch)
        current = _head(repo, ref)
        if current == start.id:
            return
        if current is not None:
            raise BranchExists(f"branch {branch} exists at {current.decode()}")
        # Refs are files: "a" and "a/b" cannot both be branches.
        names = (name.decode() for name in repo.refs.keys(base=Ref(b"refs/heads/")))
        nested = (n for n in names if n.startswith(f"{branch}/") or branch.startswith(f"{n}/"))
        clash = next(nested, None)
        if clash is not None:
            raise BranchExists(f"branch {branch} clashes with branch {clash}")
        _add(repo, ref, start)


def _delete_branch(path: Path, branch: BranchName) -> None:
    with _opened(path) as repo:
        ref = _ref(branch)
        head = _head(repo, ref)
        if head is None:
            return
        if repo.refs.follow(Ref(b"HEAD"))[0][-1] == ref:
            raise DefaultBranchNotDeletable(f"branch {branch} is the default branch of {path.name}")
        try:
            removed = repo.refs.remove_if_equals(ref, head)
        except FileExistsError:  # ref.lock held by a writer outside our lock
            removed = False
        if not removed:
            raise ConcurrentUpdate(f"{ref.decode()} moved during the delete")


def _commit(
    path: Path,
    branch: BranchName,
    changes: Sequence[FileWrite],
    stamp: _Stamp,
    command_id: str,
) -> CommitWritten:
    with _opened(path) as repo:
        ref = _ref(branch)
        head = _require_head(repo, branch)
        earlier = _find_command(repo, head, command_id)
        if earlier is not None:
            return _written(earlier)
        entries, blobs = _apply(_entries(repo, _commit_or_raise(repo, head).tree), changes)
        for blob in blobs:
            repo.object_store.add_object(blob)
        written = _write_commit(repo, _write_tree(repo, entries), [head], stamp)
        _move(repo, ref, head, written)
        return _written(written)


def _merge(
    path: Path,
    *,
    source: BranchName,
    expected: ObjectID,
    target: BranchName,
    stamp: _Stamp,
    command_id: str,
) -> CommitWritten:
    with _opened(path) as repo:
        ours, theirs = _require_head(repo, target), _require_head(repo, source)
        earlier = _find_command(repo, ours, command_id)
        if earlier is not None:
            return _written(earlier)
        if theirs != expected:
            # The caller checked another commit than the one it would merge.
            raise ConcurrentUpdate(f"{source} is at {theirs.decode()}, not {expected.decode()}")
        if can_fast_forward(repo, theirs, ours):
            raise NothingToMerge(f"{source} is already merged into {target}")
        theirs_tree = _commit_or_raise(repo, theirs).tree
        if can_fast_forward(repo, ours, theirs):
            tree = theirs_tree
        else:
            # One merge base, as `git merge -s resolve` picks; criss-cross histories
            # may conflict where a recursive merge would not, never the reverse.
            bases = find_merge_base(repo, [ours, theirs])
            base = _entries(repo, _commit_or_raise(repo, bases[0]).tree) if bases else {}
            merged = _merge_entries(
                base,
                _entries(repo, _commit_or_raise(repo, ours).tree),
                _entries(repo, theirs_tree),
            )
            tree = _write_tree(repo, merged)
        written = _write_commit(repo, tree, [ours, theirs], stamp)
        _move(repo, _ref(target), ours, written)
        return _written(written)


# --- trees ------------------------------------------------------------------------


def _entries(repo: Repo, tree: ObjectID) -> Entries:
    return {
        entry.path.decode("utf-8", "surrogateescape"): (entry.mode, entry.sha)
        for entry in repo.object_store.iter_tree_contents(tree)
    }


def _apply(
    entries: Mapping[str, tuple[int, ObjectID]], changes: Sequence[FileWrite]
) -> tuple[Entries, list[Blob]]:
    """The tree after ``changes``, checked whole before any object is written."""
    if not changes:
        raise InvalidChange("a commit needs at least one change")
    result, blobs = dict(entries), list[Blob]()
    refused: list[tuple[str, str]] = []
    seen: set[str] = set()
    for change in changes:
        current = result.get(change.path)
        if change.path in seen:
            refused.append((change.path, "changed twice"))
        elif change.operation == "Add" and current is not None:
            refused.append((change.path, "Add of an existing file"))
        elif change.operation != "Add" and current is None:
            refused.append((change.path, f"{change.operation} of a missing file"))
        elif current is not None and not (stat.S_ISREG(current[0]) or stat.S_ISLNK(current[0])):
            refused.append((change.path, "not a regular file"))
        elif change.content is None:
            del result[change.path]
        else:
            blob = Blob.from_string(change.content)
            result[change.path] = (current[0] if current else _FILE_MODE, blob.id)
            blobs.append(blob)
        seen.add(change.path)
    refused += [(p, "both a file and a directory") for p in _clashes(result)]
    if refused:
        reasons = "; ".join(f"{path}: {reason}" for path, reason in refused)
        raise InvalidChange(reasons, sorted({path for path, _ in refused}))
    return result, blobs


def _merge_entries(
    base: Mapping[str, tuple[int, ObjectID]],
    ours: Mapping[str, tuple[int, ObjectID]],
    theirs: Mapping[str, tuple[int, ObjectID]],
) -> Entries:
    """Path-level three-way merge: a path changed on one side only takes that side."""
    merged: Entries = {}
    conflicts: list[str] = []
    for path in base.keys() | ours.keys() | theirs.keys():
        was, mine, other = base.get(path), ours.get(path), theirs.get(path)
        if other in (mine, was):
            pick = mine
        elif mine == was:
            pick = other
        else:
            conflicts.append(path)
            continue
        if pick is not None:
            merged[path] = pick
    conflicts += _clashes(merged)
    if conflicts:
        raise MergeConflict(conflicts)
    return merged


def _clashes(entries: Mapping[str, object]) -> list[str]:
    directories = {path.rsplit("/", i)[0] for path in entries for i in range(1, path.count("/") + 1)}
    return sorted(path for path in entries if path in directories)


def _write_tree(repo: Repo, entries: Mapping[str, tuple[int, ObjectID]]) -> ObjectID:
    tree, subtrees = Tree(), dict[str, Entries]()
    for path, (mode, sha) in entries.items():
        name, slash, rest = path.partition("/")
        if slash:
            subtrees.setdefault(name, {})[rest] = (mode, sha)
        else:
            tree.add(name.encode("utf-8", "surrogateescape"), mode, sha)
    for name, nested in subtrees.items():
        tree.add(
            name.encode("utf-8", "surrogateescape"),
            stat.S_IFDIR,
            _write_tree(repo, nested),
        )
    repo.object_store.add_object(tree)
    return tree.id


# --- commits and refs ----------------------------------------------------------------


def _write_commit(repo: Repo, tree: ObjectID, parents: list[ObjectID], stamp: _Stamp) -> Commit:
    offset = stamp.committed_at.utcoffset() or timedelta()
    commit = Commit()
    commit.tree = tree
    commit.parents = parents
    commit.author = commit.committer = f"{stamp.author.name} <{stamp.author.email}>".encode()
    commit.author_time = commit.commit_time = int(stamp.committed_at.timestamp())
    commit.author_timezone = commit.commit_timezone = int(offset.total_seconds())
    commit.message = stamp.message.encode()
    repo.object_store.add_object(commit)
    return commit


def _move(repo: Repo, ref: Ref, old: ObjectID, new: Commit) -> None:
    try:
        moved = repo.refs.set_if_equals(ref, old, new.id)
    except FileExistsError:  # ref.lock held by a writer outside our lock
        moved = False
    if not moved:
        raise ConcurrentUpdate(f"{ref.decode()} moved during the write")


def _add(repo: Repo, ref: Ref, new: Commit) -> None:
    try:
        added = repo.refs.add_if_new(ref, new.id)
    except FileExistsError:  # ref.lock held by a writer outside our lock
        added = False
    if not added:
        raise ConcurrentUpdate(f"{ref.decode()} appeared during the write")


def _find_command(repo: Repo, head: ObjectID, command_id: str) -> Commit | None:
    """The commit a command already wrote, searched breadth-first from ``head``."""
    queue, seen = deque([head]), {head}
    for _ in range(IDEMPOTENCY_DEPTH):
        if not queue:
            break
        commit = _commit_or_raise(repo, queue.popleft())
        if command_id_of(_message(commit)) == command_id:
            return commit
        for parent in commit.parents:
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    return None


def _root_commit(repo: Repo, head: ObjectID) -> Commit:
    commit = _commit_or_raise(repo, head)
    while commit.parents:
        commit = _commit_or_raise(repo, commit.parents[0])
    return commit


def _head(repo: Repo, ref: Ref) -> ObjectID | None:
    try:
        return repo.refs[ref]
    except KeyError:
        return None


def _require_head(repo: Repo, branch: BranchName) -> ObjectID:
    head = _head(repo, _ref(branch))
    if head is None:
        raise BranchNotFound(f"no branch {branch}")
    return head


def _commit_or_none(repo: Repo, sha: str) -> Commit | None:
    if not _HEX_SHA.fullmatch(sha):
        return None
    oid = ObjectID(sha.encode())
    if oid not in repo.object_store:
        return None
    obj = repo.object_store[oid]
    return obj if isinstance(obj, Commit) else None


def _commit_or_raise(repo: Repo, oid: ObjectID) -> Commit:
    commit = _commit_or_none(repo, oid.decode())
    if commit is None:
        raise CommitNotFound(f"no commit {oid.decode()}")
    return commit


def _resolve(repo: Repo, ref_or_sha: str) -> Commit:
    """A commit by full SHA, branch name or full ref name."""
    commit = _commit_or_none(repo, ref_or_sha.lower())
    if commit is not None:
        return commit
    name = ref_or_sha if ref_or_sha.startswith("refs/") else f"refs/heads/{ref_or_sha}"
    try:
        oid = repo.refs[Ref(name.encode())]
    except (KeyError, ValueError):
        raise CommitNotFound(f"no commit or ref {ref_or_sha!r}") from None
    return _commit_or_raise(repo, oid)


def _file(repo: Repo, commit: Commit, path: str) -> bytes | None:
    tree = repo.object_store[commit.tree]
    assert isinstance(tree, Tree)
    try:
        _, oid = tree.lookup_path(repo.object_store.__getitem__, path.encode())
    except (KeyError, NotTreeError):
        return None
    blob = repo.object_store[oid]
    return blob.data if isinstance(blob, Blob) else None


def _info(commit: Commit) -> CommitInfo:
    identity = _IDENTITY.fullmatch(commit.author.decode("utf-8", "replace"))
    name, email = (identity["name"], identity["email"]) if identity else (commit.author.decode(), "")
    zone = timezone(timedelta(seconds=commit.author_timezone))
    message = _message(commit)
    return CommitInfo(
        sha=CommitSha(commit.id.decode()),
        tree_hash=TreeHash(commit.tree.decode()),
        parent_shas=tuple(CommitSha(p.decode()) for p in commit.parents),
        message=message,
        author=CommitIdentity(name=name, email=email),
        committed_at=datetime.fromtimestamp(commit.author_time, zone),
        command_id=command_id_of(message),
    )


def _written(commit: Commit) -> CommitWritten:
    return CommitWritten(
        sha=CommitSha(commit.id.decode()),
        tree_hash=TreeHash(commit.tree.decode()),
        parent_shas=tuple(CommitSha(p.decode()) for p in commit.parents),
    )


# --- names -------------------------------------------------------------------------


def _message(commit: Commit) -> str:
    message: bytes = commit.message
    return message.decode("utf-8", "replace")


def _ref(branch: BranchName) -> Ref:
    return Ref(branch.ref.encode())


def _is_repository(path: Path) -> bool:
    return (path / "HEAD").is_file()


def _checked_name(value: str, what: str) -> str:
    # Names become directory names, so they must not climb out of the root.
    if not _NAME.fullmatch(value) or value.endswith(".lock"):
        raise InvalidRequest(f"{what} must be letters, digits, '.', '_' or '-', got {value!r}")
    return value


def _checked_branch(value: str) -> BranchName:
    try:
        return BranchName(value)
    except InvalidValue as error:
        raise InvalidRequest(str(error)) from error
