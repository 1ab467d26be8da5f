"""The local blob store keeps content under its sha256, once, and refuses damaged files.

Addresses are checked with hashlib directly, not through the adapter.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared_kernel.blobs.local import LocalBlobStore
from shared_kernel.blobs.port import BlobCorrupted, BlobNotFound, BlobReference, InvalidBlobUri

pytestmark = pytest.mark.unit

LOG = b"##[section]Starting: Build\nBuild succeeded.\n"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stored_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "sha256").rglob("*") if p.is_file())


async def test_put_addresses_the_content_by_its_sha256(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)

    reference = await store.put(LOG, "text/plain")

    digest = _digest(LOG)
    assert reference == BlobReference(
        uri=f"blob://sha256/{digest}", sha256=digest, size=len(LOG), content_type="text/plain"
    )
    path = tmp_path / "sha256" / digest[:2] / digest[2:]
    assert store.path_of(reference.uri) == path
    assert path.read_bytes() == LOG
    assert await store.get(reference.uri) == LOG
    assert await store.exists(reference.uri)


async def test_the_same_content_is_written_once(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    first = await store.put(LOG, "text/plain")
    written = os.stat(store.path_of(first.uri))

    second = await store.put(LOG, "text/plain")

    assert second.uri == first.uri
    again = os.stat(store.path_of(second.uri))
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert _stored_files(tmp_path) == [store.path_of(first.uri)]
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_different_content_gets_different_addresses(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)

    one, other, empty = [await store.put(data, "text/plain") for data in (LOG, LOG + b".", b"")]

    assert len({one.uri, other.uri, empty.uri}) == 3
    assert empty.sha256 == _digest(b"")
    assert await store.get(empty.uri) == b""
    assert len(_stored_files(tmp_path)) == 3


async def test_concurrent_puts_of_the_same_content_store_one_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    data = os.urandom(256 * 1024)

    references = await asyncio.gather(*(store.put(data, "application/octet-stream") for _ in range(32)))

    assert {r.uri for r in references} == {f"blob://sha256/{_digest(data)}"}
    assert _stored_files(tmp_path) == [store.path_of(references[0].uri)]
    assert await store.get(references[0].uri) == data
    assert list((tmp_path / "tmp").iterdir()) == []


def test_puts_from_separate_stores_and_threads_store_one_file(tmp_path: Path) -> None:
    # Separate event loops and store instances share only the directory, as processes would.
    data = os.urandom(64 * 1024)

    def put() -> str:
        return asyncio.run(LocalBlobStore(tmp_path).put(data, "text/plain")).uri

    with ThreadPoolExecutor(max_workers=8) as pool:
        uris = set(pool.map(lambda _: put(), range(16)))

    assert uris == {f"blob://sha256/{_digest(data)}"}
    assert len(_stored_files(tmp_path)) == 1
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_a_corrupted_blob_is_refused_on_read_and_repaired_by_the_next_put(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    reference = await store.put(LOG, "text/plain")
    path = store.path_of(reference.uri)
    path.chmod(0o644)
    path.write_bytes(b"tampered")

    with pytest.raises(BlobCorrupted, match=reference.sha256):
        await store.get(reference.uri)

    await store.put(LOG, "text/plain")
    assert await store.get(reference.uri) == LOG


async def test_a_missing_blob_is_not_found(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    uri = f"blob://sha256/{_digest(b'never stored')}"

    assert not await store.exists(uri)
    with pytest.raises(BlobNotFound):
        await store.get(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "blob://sha256/../../etc/passwd",
        "blob://sha256/" + "A" * 64,
        "blob://sha256/" + "0" * 63,
        "blob://md5/" + "0" * 32,
        "",
    ],
)
async def test_a_malformed_uri_is_refused(tmp_path: Path, uri: str) -> None:
    store = LocalBlobStore(tmp_path)

    with pytest.raises(InvalidBlobUri):
        await store.get(uri)
    with pytest.raises(InvalidBlobUri):
        await store.exists(uri)
