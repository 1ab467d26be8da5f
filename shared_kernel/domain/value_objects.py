"""Value objects used across contexts.

Each is a ``str`` subtype that validates itself on construction, so it can be
used directly (``CommitSha("ab12…")``) and as a pydantic field type; it
serialises as the plain string.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Self

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from shared_kernel.domain.errors import InvalidValue

_KNOWN_VALUES_PER_TYPE = 4096


class ValueString(str):
    """A validated, immutable string value."""

    __slots__ = ()
    pattern: ClassVar[re.Pattern[str] | None] = None
    description: ClassVar[str] = "a value"
    max_length: ClassVar[int] = 255

    def __new__(cls, value: str) -> Self:
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise InvalidValue(f"{cls.__name__} must be a string, got {type(value).__name__}")
        normalised = cls.normalise(value)
        cls.check(normalised)
        return super().__new__(cls, normalised)

    @classmethod
    def normalise(cls, value: str) -> str:
        return value.strip()

    @classmethod
    def check(cls, value: str) -> None:
        if not value or len(value) > cls.max_length:
            raise InvalidValue(f"{cls.__name__} must be 1..{cls.max_length} characters, got {value!r}")
        if cls.pattern is not None and not cls.pattern.fullmatch(value):
            raise InvalidValue(f"{cls.__name__} must be {cls.description}, got {value!r}")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Values are immutable, so a validated one can be handed out again:
        # loading an aggregate meets the same ids and names over and over.
        known: dict[str, ValueString] = {}

        def validate(value: str) -> ValueString:
            hit = known.get(value)
            if hit is not None:
                return hit
            try:
                made = cls(value)
            except InvalidValue as error:
                raise ValueError(str(error)) from error
            if len(known) >= _KNOWN_VALUES_PER_TYPE:
                known.clear()
            known[value] = made
            return made

        return core_schema.no_info_after_validator_function(
            validate,
            core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


class Identifier(ValueString):
    """An opaque id or name: printable, no whitespace."""

    pattern = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+-]*")
    description = "letters, digits and . _ : @ / + - (no spaces)"


class Identity(ValueString):
    """Who did something: a user principal or a service identity."""

    pattern = re.compile(r"\S(.*\S)?")
    description = "a non-blank identity"


class CommitSha(ValueString):
    """A Git object id of a commit: 40 lower-case hex digits (SHA-1)."""

    pattern = re.compile(r"[0-9a-f]{40}")
    description = "40 lower-case hexadecimal digits"

    @classmethod
    def normalise(cls, value: str) -> str:
        return value.strip().lower()


class TreeHash(CommitSha):
    """A Git object id of a tree."""


class BranchName(ValueString):
    """A Git branch name, following git-check-ref-format's rules."""

    _forbidden = re.compile(r"(\.\.|@\{|[\x00-\x20\x7f~^:?*\[\\]|//)")

    @classmethod
    def normalise(cls, value: str) -> str:
        value = value.strip()
        return value.removeprefix("refs/heads/")

    @classmethod
    def check(cls, value: str) -> None:
        super().check(value)
        bad = (
            cls._forbidden.search(value)
            or value.startswith(("/", "-", "."))
            or value.endswith(("/", ".", ".lock"))
            or value == "@"
            or any(part.startswith(".") for part in value.split("/"))
        )
        if bad:
            raise InvalidValue(f"BranchName {value!r} is not a valid Git branch name")

    @property
    def ref(self) -> str:
        return f"refs/heads/{self}"


_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


class SemanticVersion(ValueString):
    """A Semantic Versioning 2.0.0 version."""

    pattern = _SEMVER
    description = "a semantic version such as 1.4.2 or 2.0.0-rc.1"

    @classmethod
    def normalise(cls, value: str) -> str:
        return value.strip().removeprefix("v")

    @property
    def parts(self) -> tuple[int, int, int]:
        match = _SEMVER.fullmatch(self)
        assert match is not None
        return int(match[1]), int(match[2]), int(match[3])

    @property
    def is_prerelease(self) -> bool:
        match = _SEMVER.fullmatch(self)
        return bool(match and match[4])


class EnvironmentName(ValueString):
    """A deployment environment: dev, test, staging, prod, …"""

    pattern = re.compile(r"[a-z][a-z0-9-]{0,31}")
    description = "lower-case letters, digits and '-', starting with a letter"


class Checksum(ValueString):
    """A sha256 checksum written as ``sha256:<64 hex>``."""

    pattern = re.compile(r"sha256:[0-9a-f]{64}")
    description = "sha256:<64 lower-case hex digits>"


class Sha256(ValueString):
    """A sha256 digest as 64 lower-case hex digits (a ``sha256:`` prefix is dropped)."""

    pattern = re.compile(r"[0-9a-f]{64}")
    description = "64 lower-case hexadecimal digits"

    @classmethod
    def normalise(cls, value: str) -> str:
        return value.strip().lower().removeprefix("sha256:")


class ImageDigest(Checksum):
    """A container image content digest (``sha256:…``)."""


class ArtifactReference(Identifier):
    """The id of a generated artifact a commit or build traces back to."""


class BlobReference(ValueString):
    """Where a blob lives: a URI (``file://…``, ``https://…``, ``blob://…``)."""

    pattern = re.compile(r"[a-z][a-z0-9+.-]*://\S+")
    description = "a URI"
    max_length = 2048


class RemoteUrl(BlobReference):
    """A Git remote URL."""


class RepositoryPath(ValueString):
    """A path inside a repository's work tree: relative, no '.', '..' or '.git' segments."""

    max_length = 1024

    @classmethod
    def check(cls, value: str) -> None:
        super().check(value)
        segments = value.split("/")
        bad = (
            "\\" in value
            or "\x00" in value
            or any(segment in ("", ".", "..") for segment in segments)
            or any(segment.casefold() == ".git" for segment in segments)
        )
        if bad:
            raise InvalidValue(f"{cls.__name__} {value!r} must be a relative path inside the work tree")
