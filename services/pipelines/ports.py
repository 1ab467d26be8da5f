"""The ports of Pipelines: the pipeline definition renderer (blobs: ``shared_kernel.blobs``).

Pipelines writes CI definitions for a CI provider it does not own (Azure
Pipelines), so the handlers see only these types. A rendered definition is
plain text with its stage names and its sha256, identical for an identical
spec, so regenerating from the same spec is a no-op that a handler can
recognise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

ModuleType = Literal["library", "service"]
MODULE_TYPES: tuple[str, ...] = get_args(ModuleType)

TEMPLATE_REPOSITORY = "ConnectSoft/ConnectSoft.AzurePipelines"

# Azure DevOps names: a feed may be project-scoped ("Project/feed"); a service
# connection or image repository is a short name without whitespace.
_TEMPLATE_VERSION = re.compile(r"v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")
_FEED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_IMAGE_REPOSITORY = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/*-]*")
_PATH = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_./-]*")
_DOTNET_VERSION = re.compile(r"\d+\.(?:\d+|x)(?:\.(?:\d+|x))?")


class InvalidPipelineSpec(ValueError):
    """A pipeline cannot be rendered from this spec; the message names the field and the rule."""


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """What a module's CI definition is rendered from.

    ``target_feed`` is required for a library (its package is pushed there) and
    refused for a service; ``container_registry`` (an Azure DevOps Docker
    registry service connection) and ``image_repository`` are required for a
    service and refused for a library, so a spec cannot say two things at once.
    """

    module_id: str
    module_type: ModuleType
    repository_name: str
    default_branch: str
    template_version: str
    solution_path: str
    dotnet_version: str = "8.0.x"
    target_feed: str | None = None
    container_registry: str | None = None
    image_repository: str | None = None
    dockerfile_path: str = "Dockerfile"
    # major.minor: the build number <prefix>.<run> is then the built version (a semantic version).
    version_prefix: str = "1.0"

    def __post_init__(self) -> None:
        if self.module_type not in MODULE_TYPES:
            raise InvalidPipelineSpec(
                f"module_type must be one of {', '.join(MODULE_TYPES)}, got {self.module_type!r}"
            )
        _require(_NAME, self.module_id, "module_id")
        _require(_NAME, self.repository_name, "repository_name")
        _require(_BRANCH, self.default_branch, "default_branch")
        _require(_TEMPLATE_VERSION, self.template_version, "template_version (a pinned semantic version)")
        _require(_PATH, self.solution_path, "solution_path")
        _require(_DOTNET_VERSION, self.dotnet_version, "dotnet_version")
        _require(re.compile(r"\d+\.\d+"), self.version_prefix, "version_prefix (major.minor)")
        if any(".." in path.split("/") for path in (self.solution_path, self.dockerfile_path)):
            raise InvalidPipelineSpec("solution_path and dockerfile_path must stay inside the repository")
        if self.module_type == "library":
            _require(_FEED, self.target_feed, "target_feed (required for a library)")
            _absent(self, "container_registry", "image_repository")
        else:
            _require(_NAME, self.container_registry, "container_registry (required for a service)")
            _require(_IMAGE_REPOSITORY, self.image_repository, "image_repository (required for a service)")
            _require(_PATH, self.dockerfile_path, "dockerfile_path")
            _absent(self, "target_feed")


def _require(pattern: re.Pattern[str], value: str | None, field: str) -> None:
    if value is None or not pattern.fullmatch(value):
        raise InvalidPipelineSpec(f"{field} is missing or malformed: {value!r}")


def _absent(spec: PipelineSpec, *fields: str) -> None:
    for field in fields:
        if getattr(spec, field) is not None:
            raise InvalidPipelineSpec(f"{field} does not apply to a {spec.module_type} module")


@dataclass(frozen=True, slots=True)
class RenderedPipeline:
    """A CI definition as text, the stages (with their jobs) it declares, the sha256 of its UTF-8 bytes."""

    content: str
    stages: tuple[tuple[str, tuple[str, ...]], ...]
    sha256: str

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.stages)


class PipelineRenderer(Protocol):
    """Turns a spec into the CI provider's definition; the same spec gives the same bytes."""

    def render(self, spec: PipelineSpec) -> RenderedPipeline: ...
