"""Blob storage: the port and its local, sha256-addressed adapter."""

from shared_kernel.blobs.local import LocalBlobStore
from shared_kernel.blobs.port import (
    BlobCorrupted,
    BlobError,
    BlobNotFound,
    BlobReference,
    BlobStore,
    InvalidBlobUri,
    blob_uri,
    sha256_of_uri,
)

__all__ = [
    "BlobCorrupted",
    "BlobError",
    "BlobNotFound",
    "BlobReference",
    "BlobStore",
    "InvalidBlobUri",
    "LocalBlobStore",
    "blob_uri",
    "sha256_of_uri",
]
