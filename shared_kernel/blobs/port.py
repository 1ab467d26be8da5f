"""The blob store port: content-addressed storage the platform does not own.

Build logs and artifacts live in storage such as Azure Blob. Blobs are
addressed by the sha256 of their content: writing the same bytes twice gives
the same reference, and a reference names its content, not a location. Any
service may use it (Pipelines writes logs, Packaging reads artifacts).
"""

# Errors are named for what happened, like the domain's (BlobNotFound, not BlobNotFoundError).

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")

BLOB_URI_PREFIX = "blob://sha256/"


class BlobError(Exception):
    """Base of every error a blob store raises on purpose."""


class InvalidBlobUri(BlobError, ValueError):
    """The URI is not a ``blob://sha256/<64 hex>`` reference."""


class BlobNotFound(BlobError):
    """No blob with that address is stored."""


class BlobCorrupted(BlobError):
    """The stored bytes no longer hash to their address."""


def blob_uri(sha256: str) -> str:
    if not _HEX_SHA256.fullmatch(sha256):
        raise InvalidBlobUri(f"sha256 must be 64 lower-case hex digits, got {sha256!r}")
    return f"{BLOB_URI_PREFIX}{sha256}"


def sha256_of_uri(uri: str) -> str:
    """The content address a ``blob://sha256/<hex>`` URI names."""
    digest = uri.removeprefix(BLOB_URI_PREFIX)
    if not uri.startswith(BLOB_URI_PREFIX) or not _HEX_SHA256.fullmatch(digest):
        raise InvalidBlobUri(f"not a blob://sha256/<hex> reference: {uri!r}")
    return digest


@dataclass(frozen=True, slots=True)
class BlobReference:
    """Where a blob can be read back (``uri``, e.g. a BuildResult's logsUri) and what it holds."""

    uri: str
    sha256: str
    size: int
    content_type: str


class BlobStore(Protocol):
    """Content-addressed storage: the same bytes always get the same reference."""

    async def put(self, data: bytes, content_type: str) -> BlobReference: ...

    async def get(self, uri: str) -> bytes:
        """The stored bytes, checked against their address (BlobCorrupted otherwise)."""
        ...

    async def exists(self, uri: str) -> bool: ...
