"""A NuGet feed on local disk, laid out like NuGet's flat container.

A version lives at ``<root>/<feed>/<id>/<version>/<id>.<version>.nupkg`` with
the sha256 of its bytes beside it (``….nupkg.sha256``), everything lower-case
and the version NuGet-normalised without build metadata (NuGet's own identity
of a version). A project-scoped feed ``project/feed`` is one directory,
``project%2Ffeed``, so no feed's directory can hold another's.

A version's directory appears whole or not at all: both files are written
and flushed in a staging directory, which is then renamed into place.
Renaming onto a directory that exists and is not empty fails, so of several
publishers of one version exactly one wins and the others compare their bytes
with the winner's: equal is the no-op of a repeated publish, different is
PackageVersionExists. Reads check the bytes against the recorded sha256.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import quote
from xml.etree import ElementTree

from services.packaging.domain.values import FeedReference, PackageId, VersionRange
from services.packaging.ports import (
    InvalidPackage,
    InvalidReference,
    ManifestDependency,
    PackageCorrupted,
    PackageManifest,
    PackageNotFound,
    PackageVersionExists,
    PublishedPackage,
)
from shared_kernel.domain import InvalidValue
from shared_kernel.durable_files import hashes_to, sync_directory

# A nuspec is a few kilobytes; anything far larger is not one (and is not read into memory).
MAX_NUSPEC_BYTES = 1 << 20
_STAGING = ".staging"  # a feed name never starts with '.', so this is never a feed's directory

_NUGET_VERSION = re.compile(
    r"(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?(?:\.(?P<revision>\d+))?"
    r"(?:-(?P<prerelease>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<metadata>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


def normalise_version(raw: str) -> str:
    """A NuGet version in NuGet's normalised form: ``1.2`` → ``1.2.0``, ``01.2.3.0`` → ``1.2.3``.

    Build metadata is kept (the nuspec's version as declared); see ``version_key``.
    """
    match = _NUGET_VERSION.fullmatch(raw.strip())
    if match is None:
        raise ValueError(f"{raw!r} is not a NuGet version")
    parts = [int(match[name] or 0) for name in ("major", "minor", "patch")]
    revision = int(match["revision"] or 0)
    text = ".".join(str(part) for part in parts) + (f".{revision}" if revision else "")
    if match["prerelease"]:
        text += f"-{match['prerelease']}"
    if match["metadata"]:
        text += f"+{match['metadata']}"
    return text


def version_key(raw: str) -> str:
    """A version's identity in a feed: normalised, lower-case, without build metadata."""
    return normalise_version(raw).split("+", 1)[0].lower()


def read_manifest(content: bytes) -> PackageManifest:
    """The id, version and dependencies a .nupkg's root .nuspec declares.

    Namespaces differ between nuspec schema versions, so elements are matched
    by local name. Dependencies of every target-framework group are listed
    once each (the same id with the same range in two groups is one entry).
    """
    metadata = _metadata(_nuspec(content))
    package_id = _text(metadata, "id")
    raw_version = _text(metadata, "version")
    try:
        PackageId(package_id)
        version = normalise_version(raw_version)
    except (InvalidValue, ValueError) as error:
        raise InvalidPackage(f"the nuspec's id or version is malformed: {error}") from None
    return PackageManifest(id=package_id, version=version, dependencies=_dependencies(metadata))


class LocalPackageFeed:
    """The PackageFeed port over a directory."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def path_of(self, feed: str, package_id: str, version: str) -> Path:
        """Where the package file of ``package_id`` ``version`` in ``feed`` is (or would be) stored."""
        feed_ref, package, key = _names(feed, package_id, version)
        directory = self._root / quote(feed_ref.key, safe="") / package.key / key
        return directory / f"{package.key}.{key}.nupkg"

    async def inspect(self, content: bytes) -> PackageManifest:
        return await asyncio.to_thread(read_manifest, content)

    async def publish(self, feed: str, package_id: str, version: str, content: bytes) -> PublishedPackage:
        return await asyncio.to_thread(self._publish, feed, package_id, version, content)

    async def download(self, feed: str, package_id: str, version: str) -> bytes:
        return await asyncio.to_thread(self._download, feed, package_id, version)

    def _publish(self, feed: str, package_id: str, version: str, content: bytes) -> PublishedPackage:
        path = self.path_of(feed, package_id, version)
        manifest = read_manifest(content)
        declared = (PackageId(manifest.id).key, version_key(manifest.version))
        if declared != (PackageId(package_id).key, version_key(version)):
            found = f"{manifest.id} {manifest.version}"
            raise InvalidPackage(f"the package is {found}, not {package_id} {version}")
        digest = hashlib.sha256(content).hexdigest()
        published = PublishedPackage(
            sha256=digest, size=len(content), dependencies=manifest.dependencies, location=path.as_uri()
        )
        if not path.parent.exists():
            staging = self._stage(path.name, content, digest)
            try:
                path.parent.parent.mkdir(parents=True, exist_ok=True)
                os.rename(staging, path.parent)
            except OSError as error:
                shutil.rmtree(staging, ignore_errors=True)
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                # Another publisher's directory won the rename: compare with it below.
            else:
                sync_directory(path.parent.parent)
                return published
        self._keep_existing(path, content, digest)
        return published

    def _stage(self, name: str, content: bytes, digest: str) -> Path:
        """A directory holding the package and its sha256, flushed to disk, ready to be renamed into place."""
        staging_root = self._root / _STAGING
        staging_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=staging_root, prefix=f"{digest[:16]}."))
        _write(staging / name, content)
        _write(staging / f"{name}.sha256", digest.encode())
        sync_directory(staging)
        return staging

    def _keep_existing(self, path: Path, content: bytes, digest: str) -> None:
        """The version exists: the same bytes are a no-op (a damaged copy is repaired), others refused."""
        recorded = _recorded_sha256(path)
        if recorded != digest:
            raise PackageVersionExists(
                f"{path.name} is already in the feed with sha256 {recorded}; this package's is {digest}"
            )
        if not hashes_to(path, digest):
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".repair.")
            with os.fdopen(handle, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
            sync_directory(path.parent)

    def _download(self, feed: str, package_id: str, version: str) -> bytes:
        path = self.path_of(feed, package_id, version)
        if not path.parent.exists():
            raise PackageNotFound(f"feed {feed} has no {package_id} {version}")
        recorded = _recorded_sha256(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise PackageCorrupted(f"{path} is missing beside its recorded sha256") from None
        if hashlib.sha256(data).hexdigest() != recorded:
            raise PackageCorrupted(f"{path} no longer hashes to its recorded sha256 {recorded}")
        return data


def _names(feed: str, package_id: str, version: str) -> tuple[FeedReference, PackageId, str]:
    try:
        return FeedReference(feed), PackageId(package_id), version_key(version)
    except (InvalidValue, ValueError) as error:
        raise InvalidReference(str(error)) from None


def _nuspec(content: bytes) -> bytes:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise InvalidPackage("a package must be a zip archive (.nupkg)") from None
    with archive:
        found = [
            info
            for info in archive.infolist()
            if "/" not in info.filename and info.filename.lower().endswith(".nuspec")
        ]
        if len(found) != 1:
            names = ", ".join(info.filename for info in found) or "none"
            raise InvalidPackage(f"a package has exactly one .nuspec at its root, this one: {names}")
        if found[0].file_size > MAX_NUSPEC_BYTES:
            raise InvalidPackage(f"{found[0].filename} is larger than {MAX_NUSPEC_BYTES} bytes")
        try:
            return archive.read(found[0])
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise InvalidPackage(f"{found[0].filename} cannot be read: {error}") from None


def _metadata(nuspec: bytes) -> ElementTree.Element:
    # A nuspec has no document type; refusing one keeps entity expansion out of the parser.
    if re.search(rb"<!DOCTYPE", nuspec, re.IGNORECASE):
        raise InvalidPackage("a nuspec must not declare a document type")
    try:
        root = ElementTree.fromstring(nuspec)
    except ElementTree.ParseError as error:
        raise InvalidPackage(f"the nuspec is not well-formed XML: {error}") from None
    metadata = _child(root, "metadata") if _local(root.tag) == "package" else None
    if metadata is None:
        raise InvalidPackage("the nuspec has no <package><metadata>")
    return metadata


def _dependencies(metadata: ElementTree.Element) -> tuple[ManifestDependency, ...]:
    section = _child(metadata, "dependencies")
    if section is None:
        return ()
    elements = []
    for child in section:
        if _local(child.tag) == "dependency":
            elements.append(child)
        elif _local(child.tag) == "group":
            elements.extend(grand for grand in child if _local(grand.tag) == "dependency")
    found: dict[tuple[str, str | None], ManifestDependency] = {}
    for element in elements:
        raw_id, raw_range = element.get("id", ""), element.get("version")
        try:
            package = PackageId(raw_id)
            version_range = VersionRange(raw_range) if raw_range and raw_range.strip() else None
        except InvalidValue as error:
            raise InvalidPackage(f"a dependency of the nuspec is malformed: {error}") from None
        key = (package.key, version_range)
        found.setdefault(key, ManifestDependency(id=str(package), version_range=version_range))
    return tuple(found.values())


def _local(tag: str) -> str:
    """An element's name without its namespace (``{http://…/nuspec.xsd}id`` → ``id``)."""
    return tag.rsplit("}", 1)[-1]


def _child(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    return next((child for child in element if _local(child.tag) == name), None)


def _text(metadata: ElementTree.Element, name: str) -> str:
    element = _child(metadata, name)
    text = (element.text or "").strip() if element is not None else ""
    if not text:
        raise InvalidPackage(f"the nuspec's metadata has no {name}")
    return text


def _recorded_sha256(path: Path) -> str:
    try:
        return Path(f"{path}.sha256").read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise PackageCorrupted(f"{path.parent} has no recorded sha256") from None


def _write(path: Path, data: bytes) -> None:
    with path.open("xb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
