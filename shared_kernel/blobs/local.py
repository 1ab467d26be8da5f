"""Blobs on local disk, addressed by the sha256 of their content.

A blob lives at ``<root>/sha256/<first two hex>/<remaining 62 hex>`` and is
referred to as ``blob://sha256/<hex>``, a name for the content rather than the
place, so a reference in an event stays valid wherever the store is mounted.
A write goes to a temporary file in ``<root>/tmp`` (same file system), is
flushed to disk, then hard-linked into place: linking never replaces, so of
several writers of the same content exactly one publishes and the others find
its file. A file that no longer hashes to its name is refused on read and
replaced on the next write of the right content.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from shared_kernel.blobs.port import (
    BlobCorrupted,
    BlobNotFound,
    BlobReference,
    blob_uri,
    sha256_of_uri,
)
from shared_kernel.durable_files import hashes_to, staged, sync_directory


class LocalBlobStore:
    """The BlobStore port over a directory."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def path_of(self, uri: str) -> Path:
        digest = sha256_of_uri(uri)
        return self._root / "sha256" / digest[:2] / digest[2:]

    async def put(self, data: bytes, content_type: str) -> BlobReference:
        digest = hashlib.sha256(data).hexdigest()
        uri = blob_uri(digest)
        await asyncio.to_thread(_store, self.path_of(uri), self._root / "tmp", data, digest)
        return BlobReference(uri=uri, sha256=digest, size=len(data), content_type=content_type)

    async def get(self, uri: str) -> bytes:
        path, digest = self.path_of(uri), sha256_of_uri(uri)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {uri}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise BlobCorrupted(f"{path} no longer hashes to {digest}")
        return data

    async def exists(self, uri: str) -> bool:
        return await asyncio.to_thread(self.path_of(uri).is_file)


def _store(path: Path, staging: Path, data: bytes, digest: str) -> None:
    if hashes_to(path, digest):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = str(staged(staging, data, prefix=f"{digest[:16]}."))
    try:
        try:
            os.link(temporary, path)
        except FileExistsError:
            # Another writer published first, or a damaged file sits at the address.
            if not hashes_to(path, digest):
                os.replace(temporary, path)
                temporary = ""
        sync_directory(path.parent)
    finally:
        if temporary:
            os.unlink(temporary)
