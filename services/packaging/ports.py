"""The ports of Packaging: a NuGet package feed and an OCI container registry.

Packaging publishes to systems it does not own (Azure Artifacts, Azure
Container Registry), so the handlers see only these protocols. Both keep
what they were given immutable, as the real ones do: a package version, once
in a feed, always holds the same bytes, and a push never moves a tag. Asking
again for what is already there is a no-op, so a redelivered message can
repeat its call safely.
"""

# Errors are named for what happened, like the domain's (TagConflict, not TagConflictError).

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})


class PackagingError(Exception):
    """Base of every error a feed or registry raises on purpose."""


class InvalidReference(PackagingError, ValueError):
    """A feed, package id, version, registry, repository, tag or digest is malformed; nothing was written."""


# Package feed


class FeedError(PackagingError):
    """Base of the errors a package feed raises."""


class InvalidPackage(FeedError, ValueError):
    """The bytes are not a NuGet package (not a zip, no single root .nuspec, malformed or mismatched
    metadata); nothing was written."""


class PackageVersionExists(FeedError):
    """The feed holds different content for this package version; versions are immutable."""


class PackageNotFound(FeedError):
    """The feed holds no such package version."""


class PackageCorrupted(FeedError):
    """The stored package no longer hashes to the sha256 recorded when it was published."""


@dataclass(frozen=True, slots=True)
class ManifestDependency:
    """A dependency from a nuspec; ``version_range`` None means any version."""

    id: str
    version_range: str | None


@dataclass(frozen=True, slots=True)
class PackageManifest:
    """What a package's nuspec declares. The version is NuGet-normalised (``1.2`` reads ``1.2.0``)."""

    id: str
    version: str
    dependencies: tuple[ManifestDependency, ...]


@dataclass(frozen=True, slots=True)
class PublishedPackage:
    """A package version as the feed holds it: sha256 (64 hex) and size of its bytes, where it lives."""

    sha256: str
    size: int
    dependencies: tuple[ManifestDependency, ...]
    location: str


class PackageFeed(Protocol):
    """NuGet feeds (Azure Artifacts): immutable package versions addressed by (feed, id, version)."""

    async def inspect(self, content: bytes) -> PackageManifest:
        """Read a .nupkg's manifest (InvalidPackage if it is not one)."""
        ...

    async def publish(self, feed: str, package_id: str, version: str, content: bytes) -> PublishedPackage:
        """Put ``content`` in ``feed`` as ``package_id`` ``version``.

        The package's nuspec must declare that id and version (InvalidPackage).
        The same bytes again are a no-op; other bytes for a version the feed
        already holds are refused with PackageVersionExists.
        """
        ...

    async def download(self, feed: str, package_id: str, version: str) -> bytes:
        """The stored bytes, checked against their recorded sha256 (PackageNotFound, PackageCorrupted)."""
        ...


# Container registry


class RegistryError(PackagingError):
    """Base of the errors a container registry raises."""


class InvalidManifest(RegistryError, ValueError):
    """The manifest is not an OCI (or Docker v2) image manifest; nothing was written."""


class LayerDigestMismatch(RegistryError):
    """A blob's bytes do not match the digest (or size) that names it; nothing was written."""


class MissingLayer(RegistryError):
    """The manifest names a blob that was neither given nor is in the registry; nothing was written."""


class TagConflict(RegistryError):
    """The tag already names another digest; a push does not move tags."""


class ManifestNotFound(RegistryError):
    """The repository has no manifest with that digest."""


class BlobNotFound(RegistryError):
    """The registry has no blob with that digest."""


class BlobCorrupted(RegistryError):
    """A stored blob or manifest no longer hashes to its digest."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor: what a manifest says about a blob it references."""

    media_type: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class PushedImage:
    """An image as the registry holds it: the manifest's digest and what the manifest references."""

    digest: str
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


class ContainerRegistry(Protocol):
    """OCI registries (Azure Container Registry): content-addressed blobs, manifests and tags."""

    async def push(
        self, registry: str, repository: str, tag: str, manifest: bytes, layers: Mapping[str, bytes]
    ) -> PushedImage:
        """Store an image manifest with its blobs (``layers``: config and layers by digest) under ``tag``.

        The digest is ``sha256:`` and the sha256 of the manifest bytes, as OCI
        defines it. Every blob the manifest names must match its digest and
        size (LayerDigestMismatch) and be given or already stored
        (MissingLayer). A tag naming another digest is refused (TagConflict);
        the same push again is a no-op.
        """
        ...

    async def resolve(self, registry: str, repository: str, tag: str) -> str | None:
        """The digest ``tag`` names in ``repository``, None if the tag does not exist."""
        ...

    async def manifest(self, registry: str, repository: str, digest: str) -> bytes:
        """A manifest of ``repository``, checked against its digest (ManifestNotFound, BlobCorrupted)."""
        ...

    async def blob(self, registry: str, digest: str) -> bytes:
        """A blob (a layer or a config), checked against its digest (BlobNotFound, BlobCorrupted)."""
        ...
