"""PipelineDefinition: a generated CI/CD definition of a module, on a pinned template version."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import Field
from pydantic_core import to_jsonable_python

from services.pipelines.domain.errors import (
    CannotSupersedeItself,
    DefinitionAlreadySuperseded,
    DuplicateDefinitionPath,
    DuplicateStageName,
    DuplicateVariableName,
    PipelineHasNoStages,
    UnknownTemplateVersion,
)
from services.pipelines.domain.values import DefinitionPath, FeedReference, ModuleType, TemplateVersion
from shared_kernel.domain import AggregateRoot, DomainModel, StateMachine
from shared_kernel.domain.aggregate import audit_fields
from shared_kernel.domain.value_objects import Identifier, Sha256


class DefinitionStatus(StrEnum):
    ACTIVE = "Active"
    SUPERSEDED = "Superseded"


LIFECYCLE = StateMachine({DefinitionStatus.ACTIVE: {DefinitionStatus.SUPERSEDED}})


class PipelineStage(DomainModel):
    """A stage of the definition and the names of its jobs."""

    model_config = DomainModel.model_config | {"frozen": True}

    name: Identifier
    jobs: tuple[Identifier, ...] = Field(min_length=1)


class PipelineVariable(DomainModel):
    """A pipeline variable; a secret one holds a reference to the secret, never its value."""

    model_config = DomainModel.model_config | {"frozen": True}

    name: Identifier
    value: str = Field(repr=False)
    is_secret: bool = False


class PipelineDefinition(AggregateRoot):
    """The definition of a module's pipeline; regenerating it supersedes the previous one."""

    aggregate_type = "PipelineDefinition"
    id_field = "pipeline_id"

    pipeline_id: Identifier
    repository_id: Identifier
    project_id: Identifier
    module_id: Identifier
    module_type: ModuleType
    definition_path: DefinitionPath
    template_version: TemplateVersion
    target_feed: FeedReference
    status: DefinitionStatus = DefinitionStatus.ACTIVE
    stages: list[PipelineStage]
    variables: list[PipelineVariable] = []
    generated_at: datetime
    yaml_sha256: Sha256
    commit_id: Identifier
    supersedes: Identifier | None = None
    superseded_by: Identifier | None = None
    superseded_at: datetime | None = None

    @staticmethod
    def ensure_path_free(existing: PipelineDefinition | None, *, module_id: str) -> None:
        """Refuse a path that another module's active definition holds in the repository.

        ``existing`` is the active definition found by (repositoryId,
        definitionPath); the same module's is the one a regeneration supersedes.
        """
        if (
            existing is not None
            and existing.status is DefinitionStatus.ACTIVE
            and existing.module_id != Identifier(module_id)
        ):
            raise DuplicateDefinitionPath(
                existing.repository_id, existing.definition_path, existing.pipeline_id
            )

    @classmethod
    def generate(
        cls,
        *,
        pipeline_id: str,
        repository_id: str,
        tenant_id: str,
        project_id: str,
        module_id: str,
        module_type: ModuleType,
        definition_path: str,
        template_version: str,
        known_versions: Collection[str],
        target_feed: str,
        stages: Sequence[PipelineStage],
        variables: Sequence[PipelineVariable] = (),
        yaml_sha256: str,
        commit_id: str,
        supersedes: str | None = None,
        at: datetime,
        by: str,
    ) -> PipelineDefinition:
        """A new active definition; ``known_versions`` are the published template versions."""
        version = TemplateVersion(template_version)
        if version not in {TemplateVersion(known) for known in known_versions}:
            raise UnknownTemplateVersion(version, known_versions)
        if not stages:
            raise PipelineHasNoStages
        _ensure_unique((stage.name for stage in stages), DuplicateStageName)
        _ensure_unique((variable.name for variable in variables), DuplicateVariableName)
        if supersedes is not None and Identifier(supersedes) == Identifier(pipeline_id):
            raise CannotSupersedeItself(pipeline_id)
        definition = cls(
            pipeline_id=pipeline_id,
            repository_id=repository_id,
            tenant_id=tenant_id,
            project_id=project_id,
            module_id=module_id,
            module_type=module_type,
            definition_path=definition_path,
            template_version=version,
            target_feed=target_feed,
            stages=list(stages),
            variables=list(variables),
            generated_at=at,
            yaml_sha256=yaml_sha256,
            commit_id=commit_id,
            supersedes=supersedes,
            **audit_fields(at=at, by=by),
        )
        definition._record(
            "PipelineGenerated",
            {
                "yamlSha256": definition.yaml_sha256,
                "commitId": definition.commit_id,
                "supersedes": definition.supersedes,
                "generatedAt": at,
                "generatedBy": by,
            },
            at=at,
            by=by,
        )
        return definition

    @property
    def is_active(self) -> bool:
        return self.status is DefinitionStatus.ACTIVE

    def supersede(self, *, superseded_by: str, at: datetime, by: str) -> None:
        """Give way to the regenerated definition ``superseded_by``."""
        successor = Identifier(superseded_by)
        if successor == self.pipeline_id:
            raise CannotSupersedeItself(self.pipeline_id)
        if not LIFECYCLE.can(self.status, DefinitionStatus.SUPERSEDED):
            raise DefinitionAlreadySuperseded(self.pipeline_id, str(self.superseded_by))
        self.status = DefinitionStatus.SUPERSEDED
        self.superseded_by, self.superseded_at = successor, at
        self._record(
            "PipelineSuperseded",
            {"supersededByPipelineId": successor, "supersededAt": at, "supersededBy": by},
            at=at,
            by=by,
        )

    def _record(self, event_type: str, fields: dict[str, object], *, at: datetime, by: str) -> None:
        """Record an event carrying the definition's identity and shape."""
        scope = {
            "pipelineId": self.pipeline_id,
            "repositoryId": self.repository_id,
            "tenantId": self.tenant_id,
            "projectId": self.project_id,
            "moduleId": self.module_id,
            "moduleType": self.module_type,
            "definitionPath": self.definition_path,
            "templateVersion": self.template_version,
            "targetFeed": self.target_feed,
            "status": self.status,
            "stages": [stage.wire() for stage in self.stages],
        }
        self.record(event_type, to_jsonable_python({**scope, **fields}), at=at, by=by)


def _ensure_unique(names: Iterable[str], error: type[DuplicateStageName | DuplicateVariableName]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise error(name)
        seen.add(name)
