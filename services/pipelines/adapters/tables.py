"""The Pipelines database: definitions, runs, build results, the repository read model.

Uniqueness invariants are constraints that include the tenant; each maps to
the domain rule it backs (see ``MAPPINGS``).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, Text, UniqueConstraint, text

from services.pipelines.domain import errors
from services.pipelines.domain.build_result import BuildResult
from services.pipelines.domain.definition import PipelineDefinition
from services.pipelines.domain.run import PipelineRun
from services.pipelines.domain.source_repository import SourceRepository
from shared_kernel.persistence.store import AggregateMapping
from shared_kernel.persistence.tables import aggregate_table, service_metadata

metadata = service_metadata()

pipeline_definitions = aggregate_table(
    metadata,
    "pipeline_definitions",
    Column("repository_id", Text, nullable=False),
    Column("module_id", Text, nullable=False),
    Column("definition_path", Text, nullable=False),
    Column("status", Text, nullable=False),
    # The definition path is unique per repository among active definitions:
    # a regeneration supersedes the old one before taking its path.
    Index(
        "uq_pipeline_definitions_path",
        "tenant_id",
        "repository_id",
        "definition_path",
        unique=True,
        postgresql_where=text("status = 'Active'"),
    ),
    Index("ix_pipeline_definitions_module", "tenant_id", "repository_id", "module_id", "status"),
)
pipeline_runs = aggregate_table(
    metadata,
    "pipeline_runs",
    Column("pipeline_id", Text, nullable=False),
    Column("run_number", Integer, nullable=False),
    UniqueConstraint("tenant_id", "pipeline_id", "run_number", name="uq_pipeline_runs_number"),
)
build_results = aggregate_table(
    metadata,
    "build_results",
    Column("pipeline_run_id", Text, nullable=False),
    UniqueConstraint("tenant_id", "pipeline_run_id", name="uq_build_results_run"),
)
source_repositories = aggregate_table(metadata, "source_repositories")

AGGREGATE_TABLES = ("pipeline_definitions", "pipeline_runs", "build_results", "source_repositories")


def run_number(run: PipelineRun) -> int:
    """The counter in the build number ``<prefix>.<n>``."""
    return int(run.build_number.rsplit(".", 1)[-1])


MAPPINGS = {
    PipelineDefinition: AggregateMapping(
        PipelineDefinition,
        pipeline_definitions,
        columns={
            "repository_id": lambda d: d.repository_id,
            "module_id": lambda d: d.module_id,
            "definition_path": lambda d: str(d.definition_path),
            "status": lambda d: str(d.status),
        },
        unique_rules={
            "uq_pipeline_definitions_path": lambda d: errors.DuplicateDefinitionPath(
                d.repository_id, str(d.definition_path), "another active definition"
            )
        },
    ),
    PipelineRun: AggregateMapping(
        PipelineRun,
        pipeline_runs,
        columns={"pipeline_id": lambda r: r.pipeline_id, "run_number": run_number},
    ),
    BuildResult: AggregateMapping(
        BuildResult,
        build_results,
        columns={"pipeline_run_id": lambda b: b.pipeline_run_id},
        unique_rules={
            "uq_build_results_run": lambda b: errors.DuplicateBuildResult(b.pipeline_run_id, "another")
        },
    ),
    SourceRepository: AggregateMapping(SourceRepository, source_repositories),
}
