"""Value objects of the Packaging context: NuGet names and versions, OCI references, severities.

NuGet compares package ids, versions and (Azure DevOps) feed names
case-insensitively, and ignores a version's build metadata when it decides
whether two versions are the same; each such value has a ``key`` that is its
identity for uniqueness checks and lookups. OCI references are case-sensitive
(a repository name is lower-case by rule), so they have none.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Self

from shared_kernel.domain import InvalidValue
from shared_kernel.domain.value_objects import SemanticVersion, ValueString


class PackageId(ValueString):
    """A NuGet package id: word characters separated by single '.' or '-', at most 100 characters.

    NuGet's own rule is ``^\\w+([.-]\\w+)*$``; Unicode word characters are left
    out so that an id is also a safe path segment in any feed.
    """

    pattern = re.compile(r"[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*")
    description = "letters, digits and '_', separated by single '.' or '-'"
    max_length = 100

    @property
    def key(self) -> str:
        """The id as NuGet compares it: case-insensitively."""
        return self.lower()


class PackageVersion(SemanticVersion):
    """A package's SemVer 2.0.0 version, compared as NuGet compares versions."""

    @property
    def key(self) -> str:
        """Lower-case, build metadata dropped: ``1.2.0-RC.1+abc`` and ``1.2.0-rc.1`` are one version."""
        return self.split("+", 1)[0].lower()


# A NuGet version inside a range: 1 to 4 numeric parts, optional pre-release and metadata.
_NUGET_VERSION = r"\d+(?:\.\d+){0,3}(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
_RANGE = re.compile(
    rf"(?P<minimum>{_NUGET_VERSION})"
    rf"|\[(?P<exact>{_NUGET_VERSION})\]"
    rf"|[\[(](?P<lower>{_NUGET_VERSION})?,(?P<upper>{_NUGET_VERSION})?[\])]"
)


class VersionRange(ValueString):
    """A NuGet dependency version range: ``1.0`` (at least), ``[1.0]`` (exactly), ``[1.0,2.0)`` …

    Whitespace inside the brackets is dropped, as NuGet ignores it.
    """

    pattern = _RANGE
    description = "a NuGet version range such as 1.0, [1.0], [1.0,2.0) or (,3.0]"
    max_length = 255

    @classmethod
    def normalise(cls, value: str) -> str:
        return re.sub(r"\s+", "", value)

    @classmethod
    def check(cls, value: str) -> None:
        super().check(value)
        match = _RANGE.fullmatch(value)
        bounds = ("minimum", "exact", "lower", "upper")
        if match and all(match[bound] is None for bound in bounds):
            raise InvalidValue(f"VersionRange {value!r} bounds nothing: give a lower or an upper bound")


class FeedReference(ValueString):
    """An Azure Artifacts feed: ``feed`` (organisation-scoped) or ``project/feed`` (project-scoped)."""

    pattern = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?")
    description = "a feed name or project/feed: letters, digits and . _ - (not leading)"
    max_length = 129  # a 64-character project name, '/', a 64-character feed name

    @property
    def key(self) -> str:
        """The feed as Azure DevOps compares project and feed names: case-insensitively."""
        return self.lower()


class RegistryReference(ValueString):
    """A container registry host, optionally with a port: ``myacr.azurecr.io``, ``localhost:5000``.

    Host names are case-insensitive, so the reference is kept lower-case.
    """

    pattern = re.compile(
        r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::[0-9]{1,5})?"
    )
    description = "a host name with an optional :port, such as myacr.azurecr.io or localhost:5000"
    max_length = 253 + 6

    @classmethod
    def normalise(cls, value: str) -> str:
        return value.strip().lower()

    @classmethod
    def check(cls, value: str) -> None:
        super().check(value)
        _, _, port = value.partition(":")
        if port and not 0 < int(port) < 65536:
            raise InvalidValue(f"RegistryReference {value!r} has port {port}, not 1..65535")


class RepositoryName(ValueString):
    """An OCI repository path: lower-case components separated by '/' (``team/orders-api``).

    The pattern is the OCI distribution specification's ``<name>``; components
    never start with '_', which is what lets a registry keep its own
    ``_tags`` and ``_manifests`` beside them.
    """

    pattern = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
    description = "lower-case components of letters, digits and separators . _ __ -, joined by '/'"
    max_length = 255


class ImageTag(ValueString):
    """An OCI tag: up to 128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'."""

    pattern = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
    description = "letters, digits, '_', '.' and '-' (not leading '.' or '-'), at most 128"
    max_length = 128

    @classmethod
    def for_version(cls, version: str) -> Self:
        """The tag of a semantic version: '+' is not allowed in a tag, so it becomes '_' (as Helm does)."""
        return cls(SemanticVersion(version).replace("+", "_"))


class Severity(StrEnum):
    """A vulnerability's severity as Trivy reports it, most severe first."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    UNKNOWN = "UNKNOWN"

    @property
    def rank(self) -> int:
        """0 for the most severe: the order severities are listed in reasons and payloads."""
        return list(Severity).index(self)
