"""The local Git provider writes real, reproducible, idempotent Git history.

SHAs are checked independently of the adapter: objects are re-read with a
fresh dulwich Repo and re-hashed with hashlib, and, where a ``git`` binary
exists, ``git fsck`` and ``git cat-file`` must agree.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from dulwich.objects import Commit, ShaFile, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from services.source_control.adapters.git_local import LocalGitProvider
from services.source_control.ports import (
    BranchExists,
    BranchNotFound,
    CommitIdentity,
    CommitNotFound,
    CommitWritten,
    ConcurrentUpdate,
    DefaultBranchNotDeletable,
    FileWrite,
    GitProvider,
    InvalidChange,
    InvalidPath,
    InvalidRequest,
    MergeConflict,
    NothingToMerge,
    RepositoryCreated,
    RepositoryExists,
    RepositoryNotFound,
)

pytestmark = pytest.mark.unit

GIT = shutil.which("git")
PROJECT_ROOT = Path(__file__).resolve().parents[3]
AUTHOR = CommitIdentity(name="Release Bot", email="release-bot@example.test")
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TENANT, REPO = "tenant-a", "payments"


def ids(repo: str = REPO) -> dict[str, str]:
    return {"tenant_id": TENANT, "repository_id": repo}


async def create(provider: GitProvider, repo: str = REPO) -> RepositoryCreated:
    return await provider.create_repository(
        **ids(repo),
        default_branch="main",
        message="Create repository",
        author=AUTHOR,
        committed_at=AT,
        command_id="cmd-create",
    )


async def commit(
    provider: GitProvider,
    command_id: str,
    *changes: FileWrite,
    branch: str = "main",
    minutes: int = 1,
) -> CommitWritten:
    return await provider.commit(
        **ids(),
        branch=branch,
        changes=changes,
        message=f"Apply {command_id}",
        author=AUTHOR,
        committed_at=AT + timedelta(minutes=minutes),
        command_id=command_id,
    )


async def merge(
    provider: GitProvider, source: str, command_id: str = "cmd-merge", source_sha: str | None = None
) -> CommitWritten:
    """Merge ``source`` into main: its current head unless ``source_sha`` says which commit."""
    if source_sha is None:
        head = await provider.branch_head(**ids(), branch=source)
        source_sha = "0" * 40 if head is None else head
    return await provider.merge(
        **ids(),
        source_branch=source,
        source_sha=source_sha,
        target_branch="main",
        message=f"Merge {source}",
        author=AUTHOR,
        committed_at=AT + timedelta(hours=1),
        command_id=command_id,
    )


def add(path: str, content: bytes) -> FileWrite:
    return FileWrite(path=path, operation="Add", content=content)


def edit(path: str, content: bytes) -> FileWrite:
    return FileWrite(path=path, operation="Edit", content=content)


def delete(path: str) -> FileWrite:
    return FileWrite(path=path, operation="Delete")


@pytest.fixture
def provider(tmp_path: Path) -> LocalGitProvider:
    return LocalGitProvider(tmp_path / "git")


def repo_path(provider: LocalGitProvider) -> Path:
    return provider.repository_path(TENANT, REPO)


def reopen(provider: LocalGitProvider) -> Repo:
    return Repo(str(repo_path(provider)))


def rehash(obj: ShaFile) -> str:
    """Git's object id computed from the raw bytes, not by dulwich."""
    raw = obj.as_raw_string()
    header = f"{obj.type_name.decode()} {len(raw)}\0".encode()
    return hashlib.sha1(header + raw, usedforsecurity=False).hexdigest()


def files_at(provider: LocalGitProvider, sha: str) -> dict[str, bytes]:
    with reopen(provider) as repo:
        commit_obj = repo[sha.encode()]
        assert isinstance(commit_obj, Commit)
        return {
            entry.path.decode(): repo[entry.sha].as_raw_string()
            for entry in repo.object_store.iter_tree_contents(commit_obj.tree)
        }


def first_parent_chain(provider: LocalGitProvider, branch: str = "main") -> list[Commit]:
    with reopen(provider) as repo:
        sha = repo.refs[Ref(f"refs/heads/{branch}".encode())]
        chain = []
        while True:
            obj = repo[sha]
            assert isinstance(obj, Commit)
            chain.append(obj)
            if not obj.parents:
                return chain[::-1]
            sha = obj.parents[0]


def object_ids(provider: LocalGitProvider) -> set[bytes]:
    with reopen(provider) as repo:
        return set(repo.object_store)


def git(provider: LocalGitProvider, *args: str) -> str:
    assert GIT is not None
    return subprocess.run(
        [GIT, "-C", str(repo_path(provider)), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.mark.asyncio
async def test_create_repository_makes_a_real_bare_repository_once(
    provider: LocalGitProvider,
) -> None:
    created = await create(provider)

    assert created.remote_url == repo_path(provider).resolve().as_uri()
    assert created.remote_url.startswith("file://")
    with reopen(provider) as repo:
        assert repo.bare
        assert repo.refs.read_ref(Ref(b"HEAD")) == b"ref: refs/heads/main"
        initial = repo[created.initial_commit_sha.encode()]
        assert isinstance(initial, Commit)
        assert rehash(initial) == created.initial_commit_sha
        assert initial.parents == []
        assert initial.tree.decode() == created.tree_hash
        assert rehash(repo[initial.tree]) == created.tree_hash
        assert initial.message.decode().endswith("\n\nCommand-Id: cmd-create\n")

    assert await create(provider) == created  # redelivery: same answer
    with pytest.raises(RepositoryExists):
        await provider.create_repository(
            **ids(),
            default_branch="main",
            message="Create repository",
            author=AUTHOR,
            committed_at=AT,
            command_id="another-command",
        )
    # Same command, same date, different disk: the same commit, bit for bit.
    elsewhere = LocalGitProvider(repo_path(provider).parents[2] / "elsewhere")
    assert (await create(elsewhere)).initial_commit_sha == created.initial_commit_sha


@pytest.mark.asyncio
async def test_commit_writes_git_objects_that_hash_independently(
    provider: LocalGitProvider,
) -> None:
    created = await create(provider)

    written = await commit(
        provider,
        "cmd-1",
        add("README.md", b"# Payments\n"),
        add("deploy/helm/values.yaml", b"replicas: 2\n"),
        delete(".gitkeep"),
    )

    assert written.parent_shas == (created.initial_commit_sha,)
    assert await provider.branch_head(**ids(), branch="main") == written.sha
    assert await provider.commit_exists(**ids(), sha=written.sha)
    with reopen(provider) as repo:
        commit_obj = repo[written.sha.encode()]
        assert isinstance(commit_obj, Commit)
        assert rehash(commit_obj) == written.sha
        tree = repo[commit_obj.tree]
        assert isinstance(tree, Tree)
        assert commit_obj.tree.decode() == written.tree_hash == rehash(tree)
        assert Tree.from_string(tree.as_raw_string()).id.decode() == written.tree_hash
        assert commit_obj.author == commit_obj.committer == (b"Release Bot <release-bot@example.test>")
        assert (
            commit_obj.commit_time == commit_obj.author_time == int((AT + timedelta(minutes=1)).timestamp())
        )
    assert files_at(provider, written.sha) == {
        "README.md": b"# Payments\n",
        "deploy/helm/values.yaml": b"replicas: 2\n",
    }
    assert await provider.read_file(**ids(), ref_or_sha="main", path="deploy/helm/values.yaml") == (
        b"replicas: 2\n"
    )
    assert await provider.read_file(**ids(), ref_or_sha=written.sha, path="nope") is None
    info = await provider.commit_info(**ids(), ref_or_sha=written.sha)
    assert (info.sha, info.tree_hash, info.parent_shas) == (
        written.sha,
        written.tree_hash,
        written.parent_shas,
    )
    assert (info.author, info.committed_at, info.command_id) == (
        AUTHOR,
        AT + timedelta(minutes=1),
        "cmd-1",
    )

    if GIT is not None:
        git(provider, "fsck", "--strict", "--no-dangling")
        printed = git(provider, "cat-file", "-p", written.sha)
        assert printed.startswith(f"tree {written.tree_hash}\n")
        assert f"parent {created.initial_commit_sha}\n" in printed
        assert git(provider, "rev-parse", "main^{tree}").strip() == written.tree_hash
        assert git(provider, "show", "main:deploy/helm/values.yaml") == "replicas: 2\n"


@pytest.mark.asyncio
async def test_redelivered_commit_returns_the_same_commit_and_leaves_the_branch(
    provider: LocalGitProvider,
) -> None:
    await create(provider)
    first = await commit(provider, "cmd-1", add("a.txt", b"a"))
    objects_before = object_ids(provider)

    # The redelivery would now be an invalid Add; it must find its commit first.
    again = await commit(provider, "cmd-1", add("a.txt", b"a"))

    assert again == first
    assert await provider.branch_head(**ids(), branch="main") == first.sha
    assert object_ids(provider) == objects_before
    assert len(first_parent_chain(provider)) == 2


@pytest.mark.asyncio
async def test_two_commands_make_two_commits_in_order(
    provider: LocalGitProvider,
) -> None:
    created = await create(provider)

    one = await commit(provider, "cmd-1", add("a.txt", b"1"))
    two = await commit(provider, "cmd-2", edit("a.txt", b"2"), minutes=2)

    assert two.parent_shas == (one.sha,)
    assert [c.id.decode() for c in first_parent_chain(provider)] == [
        created.initial_commit_sha,
        one.sha,
        two.sha,
    ]
    assert await provider.read_file(**ids(), ref_or_sha=one.sha, path="a.txt") == b"1"
    assert await provider.read_file(**ids(), ref_or_sha="main", path="a.txt") == b"2"


@pytest.mark.asyncio
async def test_concurrent_commits_from_tasks_are_serialised_and_none_is_lost(
    provider: LocalGitProvider,
) -> None:
    await create(provider)

    results = await asyncio.gather(
        *(commit(provider, f"cmd-{n}", add(f"files/{n}.txt", b"%d" % n)) for n in range(20))
    )

    chain = first_parent_chain(provider)
    assert len(chain) == 21
    assert {c.id.decode() for c in chain[1:]} == {r.sha for r in results}
    head = await provider.branch_head(**ids(), branch="main")
    assert head is not None
    assert set(files_at(provider, head)) == {".gitkeep"} | {f"files/{n}.txt" for n in range(20)}


def test_concurrent_commits_from_threads_and_another_process_are_serialised(
    provider: LocalGitProvider,
) -> None:
    asyncio.run(create(provider))
    root = repo_path(provider).parents[1]
    other_process = subprocess.Popen(
        [sys.executable, "-c", OTHER_PROCESS, str(root), TENANT, REPO],
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stderr=subprocess.PIPE,
    )
    # One thread shares the provider, the other has its own (as a second worker would).
    providers = {"t1": provider, "t2": LocalGitProvider(root)}

    async def commits(name: str) -> None:
        await asyncio.gather(
            *(commit(providers[name], f"{name}-{n}", add(f"{name}/{n}", b"x")) for n in range(10))
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(asyncio.run, commits(name)) for name in providers]
        for run in runs:
            run.result()  # re-raises a thread's failure here
    _, stderr = other_process.communicate(timeout=60)

    assert other_process.returncode == 0, stderr.decode()
    chain = first_parent_chain(provider)
    assert len(chain) == 31
    head = chain[-1].id.decode()
    assert set(files_at(provider, head)) == {".gitkeep"} | {
        f"{who}/{n}" for who in ("t1", "t2", "proc") for n in range(10)
    }


OTHER_PROCESS = """
import asyncio, sys
from datetime import datetime, timezone
from pathlib import Path
from services.source_control.adapters.git_local import LocalGitProvider
from services.source_control.ports import CommitIdentity, FileWrite

root, tenant, repo = sys.argv[1:]
provider = LocalGitProvider(Path(root))

async def main():
    await asyncio.gather(*(
        provider.commit(
            tenant_id=tenant, repository_id=repo, branch="main",
            changes=[FileWrite(f"proc/{n}", "Add", b"x")], message="from another process",
            author=CommitIdentity("Other", "other@example.test"),
            committed_at=datetime(2024, 5, 2, tzinfo=timezone.utc), command_id=f"proc-{n}",
        )
        for n in range(10)
    ))

asyncio.run(main())
"""


@pytest.mark.asyncio
async def test_merge_of_a_branch_ahead_takes_its_tree_in_a_two_parent_commit(
    provider: LocalGitProvider,
) -> None:
    created = await create(provider)
    await provider.create_branch(**ids(), branch="release/1.0", from_sha=created.initial_commit_sha)
    feature = await commit(provider, "cmd-f", add("chart/values.yaml", b"tag: 1.0\n"), branch="release/1.0")

    merged = await merge(provider, "release/1.0")

    assert merged.parent_shas == (created.initial_commit_sha, feature.sha)
    assert merged.tree_hash == feature.tree_hash
    assert await provider.branch_head(**ids(), branch="main") == merged.sha
    assert await provider.branch_head(**ids(), branch="release/1.0") == feature.sha
    assert await merge(provider, "release/1.0") == merged  # redelivery
    with pytest.raises(NothingToMerge):
        await merge(provider, "release/1.0", command_id="cmd-merge-again")
    if GIT is not None:
        git(provider, "fsck", "--strict", "--no-dangling")
        assert git(provider, "rev-list", "--parents", "-n1", "main").split() == [
            merged.sha,
            *merged.parent_shas,
        ]


@pytest.mark.asyncio
async def test_merge_of_diverged_branches_combines_both_sides(
    provider: LocalGitProvider,
) -> None:
    await create(provider)
    base = await commit(
        provider,
        "cmd-base",
        add("app/config.yaml", b"v1\n"),
        add("app/old.txt", b"old\n"),
        add("docs/readme.md", b"doc\n"),
    )
    await provider.create_branch(**ids(), branch="feature", from_sha=base.sha)
    ours = await commit(provider, "cmd-main", edit("docs/readme.md", b"doc 2\n"))
    theirs = await commit(
        provider,
        "cmd-feature",
        edit("app/config.yaml", b"v2\n"),
        delete("app/old.txt"),
        add("app/new/new.txt", b"new\n"),
        branch="feature",
    )

    merged = await merge(provider, "feature")

    assert merged.parent_shas == (ours.sha, theirs.sha)
    assert files_at(provider, merged.sha) == {
        ".gitkeep": b"",
        "app/config.yaml": b"v2\n",
        "app/new/new.txt": b"new\n",
        "docs/readme.md": b"doc 2\n",
    }
    with reopen(provider) as repo:
        commit_obj = repo[merged.sha.encode()]
        assert rehash(commit_obj) == merged.sha
        assert rehash(repo[merged.tree_hash.encode()]) == merged.tree_hash
    if GIT is not None:
        git(provider, "fsck", "--strict", "--no-dangling")
        # Git's own merge of the same commits agrees on the tree.
        tree = git(provider, "merge-tree", "--write-tree", ours.sha, theirs.sha)
        assert tree.split()[0] == merged.tree_hash


@pytest.mark.asyncio
async def test_conflicting_merge_raises_and_moves_nothing(
    provider: LocalGitProvider,
) -> None:
    await create(provider)
    base = await commit(provider, "cmd-base", add("a.txt", b"a\n"), add("b.txt", b"b\n"))
    await provider.create_branch(**ids(), branch="feature", from_sha=base.sha)
    ours = await commit(provider, "cmd-main", edit("a.txt", b"main\n"), delete("b.txt"))
    theirs = await commit(
        provider,
        "cmd-feature",
        edit("a.txt", b"feature\n"),
        edit("b.txt", b"feature\n"),
        add("c.txt", b"c\n"),
        branch="feature",
    )
    objects_before = object_ids(provider)

    with pytest.raises(MergeConflict) as raised:
        await merge(provider, "feature")

    assert raised.value.paths == ("a.txt", "b.txt")
    assert await provider.branch_head(**ids(), branch="main") == ours.sha
    assert await provider.branch_head(**ids(), branch="feature") == theirs.sha
    assert object_ids(provider) == objects_before


@pytest.mark.asyncio
async def test_merge_takes_only_the_source_commit_the_caller_checked(
    provider: LocalGitProvider,
) -> None:
    created = await create(provider)
    await provider.create_branch(**ids(), branch="feature", from_sha=created.initial_commit_sha)
    checked = await commit(provider, "cmd-1", add("a.txt", b"a"), branch="feature")
    moved_on = await commit(provider, "cmd-2", add("b.txt", b"b"), branch="feature", minutes=2)
    objects_before = object_ids(provider)

    with pytest.raises(ConcurrentUpdate, match=moved_on.sha):
        await merge(provider, "feature", source_sha=checked.sha)
    with pytest.raises(InvalidRequest):
        await merge(provider, "feature", source_sha="feature")

    assert await provider.branch_head(**ids(), branch="main") == created.initial_commit_sha
    assert object_ids(provider) == objects_before
    merged = await merge(provider, "feature", source_sha=moved_on.sha)
    assert merged.parent_shas == (created.initial_commit_sha, moved_on.sha)
    # A redelivery finds its merge, whatever the source head is by now.
    assert await merge(provider, "feature", source_sha=checked.sha) == merged


@pytest.mark.asyncio
async def test_delete_branch_removes_the_ref_idempotently_and_frees_the_name(
    provider: LocalGitProvider,
) -> None:
    created = await create(provider)
    await provider.create_branch(**ids(), branch="feature/x", from_sha=created.initial_commit_sha)
    feature = await commit(provider, "cmd-1", add("a.txt", b"a"), branch="feature/x")
    with pytest.raises(BranchExists):  # "feature" nests with "feature/x"
        await provider.create_branch(**ids(), branch="feature", from_sha=created.initial_commit_sha)

    await provider.delete_branch(**ids(), branch="feature/x")
    await provider.delete_branch(**ids(), branch="feature/x")  # already gone
    await provider.delete_branch(**ids(), branch="never-created")

    assert await provider.branch_head(**ids(), branch="feature/x") is None
    assert not (repo_path(provider) / "refs" / "heads" / "feature").exists()
    # Both the name and a name that nested with it can be created again.
    await provider.create_branch(**ids(), branch="feature", from_sha=feature.sha)
    await provider.delete_branch(**ids(), branch="feature")
    await provider.create_branch(**ids(), branch="feature/x", from_sha=created.initial_commit_sha)
    assert await provider.branch_head(**ids(), branch="feature/x") == created.initial_commit_sha
    with pytest.raises(DefaultBranchNotDeletable):
        await provider.delete_branch(**ids(), branch="main")
    assert await provider.branch_head(**ids(), branch="main") == created.initial_commit_sha
    with pytest.raises(RepositoryNotFound):
        await provider.delete_branch(**ids("other"), branch="feature/x")
    if GIT is not None:
        git(provider, "fsck", "--strict")
        assert git(provider, "for-each-ref", "--format=%(refname)", "refs/heads").split() == [
            "refs/heads/feature/x",
            "refs/heads/main",
        ]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("changes", "paths"),
    [
        ([add("a.txt", b"again")], ("a.txt",)),
        ([edit("missing.txt", b"x")], ("missing.txt",)),
        ([delete("missing.txt")], ("missing.txt",)),
        ([add("new.txt", b"ok"), delete("missing.txt")], ("missing.txt",)),
        ([add("b.txt", b"1"), edit("b.txt", b"2")], ("b.txt",)),
        ([add("a.txt/inner", b"x")], ("a.txt",)),
        ([delete("dir")], ("dir",)),
        ([add("dir", b"x")], ("dir",)),
        ([], ()),
    ],
)
async def test_invalid_changes_are_refused_before_anything_is_written(
    provider: LocalGitProvider, changes: list[FileWrite], paths: tuple[str, ...]
) -> None:
    await create(provider)
    head = await commit(provider, "cmd-1", add("a.txt", b"a"), add("dir/f", b"f"))
    objects_before = object_ids(provider)

    with pytest.raises(InvalidChange) as raised:
        await commit(provider, "cmd-2", *changes)

    assert raised.value.paths == paths
    assert await provider.branch_head(**ids(), branch="main") == head.sha
    assert object_ids(provider) == objects_before


@pytest.mark.parametrize(
    "path",
    ["../escape", "/etc/passwd", "a/../../b", "a//b", "./a", "a/", ".git/config",
     "x/.GIT/hooks", "a\\b", "", "nul\0byte"],
)  # fmt: skip
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(InvalidPath):
        add(path, b"x")


@pytest.mark.asyncio
async def test_unsafe_names_and_inputs_are_refused(provider: LocalGitProvider) -> None:
    await create(provider)
    with pytest.raises(InvalidPath):
        await provider.read_file(**ids(), ref_or_sha="main", path="../../etc/passwd")
    with pytest.raises(InvalidRequest):
        await provider.branch_head(tenant_id="..", repository_id=REPO, branch="main")
    with pytest.raises(InvalidRequest):
        await provider.branch_head(**ids("../other"), branch="main")
    with pytest.raises(InvalidRequest):
        await provider.create_branch(**ids(), branch="bad..name", from_sha="0" * 40)
    with pytest.raises(InvalidRequest):
        await commit(provider, "two words", add("x", b"x"))
    with pytest.raises(InvalidRequest):
        await provider.commit(
            **ids(),
            branch="main",
            changes=[add("x", b"x")],
            message="naive date",
            author=AUTHOR,
            committed_at=datetime(2024, 5, 1),  # naive: the point of the test
            command_id="cmd-naive",
        )
    with pytest.raises(InvalidChange):
        FileWrite(path="x", operation="Delete", content=b"x")
    with pytest.raises(InvalidChange):
        FileWrite(path="x", operation="Add")
    with pytest.raises(InvalidRequest):
        CommitIdentity(name="Eve <evil>", email="e@example.test")


@pytest.mark.asyncio
async def test_branches_are_created_idempotently_from_existing_commits(
    provider: LocalGitProvider,
) -> None:
    created = await create(provider)
    later = await commit(provider, "cmd-1", add("a.txt", b"a"))

    await provider.create_branch(**ids(), branch="dev", from_sha=created.initial_commit_sha)
    await provider.create_branch(**ids(), branch="dev", from_sha=created.initial_commit_sha)

    assert await provider.branch_head(**ids(), branch="dev") == created.initial_commit_sha
    with pytest.raises(BranchExists):
        await provider.create_branch(**ids(), branch="dev", from_sha=later.sha)
    with pytest.raises(BranchExists):
        await provider.create_branch(**ids(), branch="dev/sub", from_sha=later.sha)
    await provider.create_branch(**ids(), branch="x/y", from_sha=later.sha)
    with pytest.raises(BranchExists):
        await provider.create_branch(**ids(), branch="x", from_sha=later.sha)
    with pytest.raises(CommitNotFound):
        await provider.create_branch(**ids(), branch="other", from_sha="f" * 40)
    with pytest.raises(CommitNotFound):  # a tree is not a commit
        await provider.create_branch(**ids(), branch="other", from_sha=later.tree_hash)
    assert await provider.branch_head(**ids(), branch="other") is None
    assert not await provider.commit_exists(**ids(), sha=later.tree_hash)
    assert not await provider.commit_exists(**ids(), sha="main")
    with pytest.raises(BranchNotFound):
        await commit(provider, "cmd-2", add("b", b"b"), branch="nope")
    with pytest.raises(CommitNotFound):
        await provider.read_file(**ids(), ref_or_sha="nope", path="a.txt")


@pytest.mark.asyncio
async def test_missing_repository_is_reported_and_not_created(
    provider: LocalGitProvider,
) -> None:
    with pytest.raises(RepositoryNotFound):
        await commit(provider, "cmd-1", add("a", b"a"))
    with pytest.raises(RepositoryNotFound):
        await provider.branch_head(**ids(), branch="main")
    assert not repo_path(provider).exists()


@pytest.mark.asyncio
async def test_commit_dates_keep_their_offset(provider: LocalGitProvider) -> None:
    await create(provider)
    when = datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    written = await provider.commit(
        **ids(),
        branch="main",
        changes=[add("a", b"a")],
        message="dated",
        author=AUTHOR,
        committed_at=when,
        command_id="cmd-dated",
    )
    info = await provider.commit_info(**ids(), ref_or_sha=written.sha)
    assert info.committed_at == when
    assert info.committed_at.utcoffset() == timedelta(hours=2)
    assert info.message == "dated\n\nCommand-Id: cmd-dated\n"
