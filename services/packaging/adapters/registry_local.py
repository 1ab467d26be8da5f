"""An OCI registry on local disk: content-addressed blobs, repository manifests, immutable tags.

Per registry host, under ``<root>/<registry>/``:

- ``blobs/sha256/<hex>``: every blob (config, layer) and every manifest, once,
  named by the sha256 of its bytes;
- ``repositories/<repository>/_manifests/<hex>``: the manifests a repository has;
- ``repositories/<repository>/_tags/<tag>``: the digest a tag names.

The underscore directories follow the distribution registry's layout: a
repository path component never starts with '_', so a repository ``a/_tags``
cannot exist and no repository's files can be mistaken for another's.

Blobs are written to ``_uploads`` (same file system), flushed, then
hard-linked into place: linking never replaces, so concurrent writers of one
blob publish it once, and a tag is created the same way, which makes "create
the tag if it does not exist" atomic: of two pushes binding one tag to
different digests, exactly one links its file and the other is refused. A
push checks everything before it writes anything; if it then loses the tag,
its blobs stay behind unreferenced, as in any registry until garbage
collection. Reads hash what they return.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.packaging.domain.values import ImageTag, RegistryReference, RepositoryName
from services.packaging.ports import (
    MANIFEST_MEDIA_TYPES,
    BlobCorrupted,
    BlobNotFound,
    Descriptor,
    InvalidManifest,
    InvalidReference,
    LayerDigestMismatch,
    ManifestNotFound,
    MissingLayer,
    PushedImage,
    TagConflict,
)
from shared_kernel.domain import InvalidValue
from shared_kernel.durable_files import hashes_to, staged, sync_directory

_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


def parse_manifest(manifest: bytes) -> tuple[str, Descriptor, tuple[Descriptor, ...]]:
    """(media type, config, layers) of an OCI or Docker v2 image manifest; InvalidManifest otherwise."""
    try:
        document = json.loads(manifest)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidManifest(f"a manifest is a JSON document: {error}") from None
    if not isinstance(document, dict):
        raise InvalidManifest("a manifest is a JSON object")
    if document.get("schemaVersion") != 2 or isinstance(document.get("schemaVersion"), bool):
        raise InvalidManifest(f"schemaVersion must be 2, got {document.get('schemaVersion')!r}")
    media_type = document.get("mediaType")
    if media_type not in MANIFEST_MEDIA_TYPES:
        listed = ", ".join(sorted(MANIFEST_MEDIA_TYPES))
        raise InvalidManifest(f"mediaType must be one of {listed}, got {media_type!r}")
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise InvalidManifest("layers must be a list of descriptors")
    return (
        str(media_type),
        _descriptor(document.get("config"), "config"),
        tuple(_descriptor(layer, f"layers[{index}]") for index, layer in enumerate(layers)),
    )


def manifest_digest(manifest: bytes) -> str:
    """A manifest's digest as OCI defines it: the sha256 of its exact bytes."""
    return f"sha256:{hashlib.sha256(manifest).hexdigest()}"


class LocalContainerRegistry:
    """The ContainerRegistry port over a directory, one subdirectory per registry host."""

    def __init__(self, root: Path) -> None:
        self._root = root

    async def push(
        self, registry: str, repository: str, tag: str, manifest: bytes, layers: Mapping[str, bytes]
    ) -> PushedImage:
        return await asyncio.to_thread(self._push, registry, repository, tag, manifest, layers)

    async def resolve(self, registry: str, repository: str, tag: str) -> str | None:
        return await asyncio.to_thread(self._resolve, registry, repository, tag)

    async def manifest(self, registry: str, repository: str, digest: str) -> bytes:
        return await asyncio.to_thread(self._manifest, registry, repository, digest)

    async def blob(self, registry: str, digest: str) -> bytes:
        return await asyncio.to_thread(self._blob, registry, digest)

    def _push(
        self, registry: str, repository: str, tag: str, manifest: bytes, layers: Mapping[str, bytes]
    ) -> PushedImage:
        base, repository_dir = self._repository(registry, repository)
        tag_path = repository_dir / "_tags" / _tag(tag)
        media_type, config, described = parse_manifest(manifest)
        digest = manifest_digest(manifest)
        _ensure_tag_names(tag_path, digest)
        blobs = _checked_blobs(base, (config, *described), layers)
        staging = base / "_uploads"
        for hex_digest, data in blobs.items():
            _store_blob(_blob_path(base, hex_digest), staging, data, hex_digest)
        hex_digest = digest.removeprefix("sha256:")
        _store_blob(_blob_path(base, hex_digest), staging, manifest, hex_digest)
        _create_if_absent(repository_dir / "_manifests" / hex_digest, staging, digest.encode())
        if not _create_if_absent(tag_path, staging, digest.encode()):
            _ensure_tag_names(tag_path, digest)
        return PushedImage(digest=digest, media_type=media_type, config=config, layers=described)

    def _resolve(self, registry: str, repository: str, tag: str) -> str | None:
        _, repository_dir = self._repository(registry, repository)
        return _read_tag(repository_dir / "_tags" / _tag(tag))

    def _manifest(self, registry: str, repository: str, digest: str) -> bytes:
        base, repository_dir = self._repository(registry, repository)
        hex_digest = _hex(digest)
        if not (repository_dir / "_manifests" / hex_digest).is_file():
            raise ManifestNotFound(f"{registry}/{repository} has no manifest {digest}")
        try:
            return _read_verified(_blob_path(base, hex_digest), hex_digest)
        except BlobNotFound:
            raise ManifestNotFound(f"{registry}/{repository} lists {digest}, but its blob is gone") from None

    def _blob(self, registry: str, digest: str) -> bytes:
        hex_digest = _hex(digest)
        return _read_verified(_blob_path(self._base(registry), hex_digest), hex_digest)

    def _base(self, registry: str) -> Path:
        try:
            return self._root / RegistryReference(registry)
        except InvalidValue as error:
            raise InvalidReference(str(error)) from None

    def _repository(self, registry: str, repository: str) -> tuple[Path, Path]:
        base = self._base(registry)
        try:
            return base, base / "repositories" / RepositoryName(repository)
        except InvalidValue as error:
            raise InvalidReference(str(error)) from None


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise InvalidManifest(f"{where} must be a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise InvalidManifest(f"{where}.mediaType must be a non-empty string")
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidManifest(f"{where}.digest must be sha256:<64 lower-case hex>, got {digest!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidManifest(f"{where}.size must be a non-negative integer, got {size!r}")
    return Descriptor(media_type=media_type, digest=digest, size=size)


def _checked_blobs(
    base: Path, descriptors: tuple[Descriptor, ...], given: Mapping[str, bytes]
) -> dict[str, bytes]:
    """The given blobs the manifest references, by hex digest, each checked; referenced ones not given
    must already be stored. Given blobs the manifest does not reference are not stored."""
    blobs: dict[str, bytes] = {}
    for descriptor in descriptors:
        hex_digest = descriptor.digest.removeprefix("sha256:")
        data = given.get(descriptor.digest)
        if data is None:
            stored = _blob_path(base, hex_digest)
            if not hashes_to(stored, hex_digest):
                raise MissingLayer(f"blob {descriptor.digest} ({descriptor.media_type}) was not given")
            size = stored.stat().st_size
        else:
            if hashlib.sha256(data).hexdigest() != hex_digest:
                raise LayerDigestMismatch(f"the bytes given as {descriptor.digest} have another sha256")
            size = len(data)
            blobs[hex_digest] = data
        if size != descriptor.size:
            raise LayerDigestMismatch(
                f"blob {descriptor.digest} is {size} bytes; the manifest says {descriptor.size}"
            )
    return blobs


def _ensure_tag_names(tag_path: Path, digest: str) -> None:
    bound = _read_tag(tag_path)
    if bound is not None and bound != digest:
        raise TagConflict(f"tag {tag_path.name} names {bound}; a push does not move it to {digest}")


def _read_tag(tag_path: Path) -> str | None:
    try:
        bound = tag_path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    if not _DIGEST.fullmatch(bound):
        raise BlobCorrupted(f"tag file {tag_path} holds no digest")
    return bound


def _tag(tag: str) -> str:
    try:
        return ImageTag(tag)
    except InvalidValue as error:
        raise InvalidReference(str(error)) from None


def _hex(digest: str) -> str:
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise InvalidReference(f"a digest is sha256:<64 lower-case hex>, got {digest!r}")
    return match[1]


def _blob_path(base: Path, hex_digest: str) -> Path:
    return base / "blobs" / "sha256" / hex_digest


def _read_verified(path: Path, hex_digest: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BlobNotFound(f"no blob sha256:{hex_digest}") from None
    if hashlib.sha256(data).hexdigest() != hex_digest:
        raise BlobCorrupted(f"{path} no longer hashes to sha256:{hex_digest}")
    return data


def _store_blob(path: Path, staging: Path, data: bytes, hex_digest: str) -> None:
    """Publish ``data`` at its address once; a damaged file there is replaced by the right bytes."""
    if hashes_to(path, hex_digest):
        return
    temporary = staged(staging, data)
    moved = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(temporary, path)
        except FileExistsError:
            # Another writer published first, or a damaged file sits at the address.
            if not hashes_to(path, hex_digest):
                os.replace(temporary, path)
                moved = True
        sync_directory(path.parent)
    finally:
        if not moved:
            temporary.unlink()


def _create_if_absent(path: Path, staging: Path, data: bytes) -> bool:
    """Write ``path`` with ``data`` unless it exists; True if this call created it. Atomic: hard links
    never replace, so of concurrent callers exactly one creates the file and the rest see it whole."""
    temporary = staged(staging, data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        sync_directory(path.parent)
        return True
    finally:
        temporary.unlink()
