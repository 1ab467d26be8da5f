"""What the CI provider reports at the end of a run, kept on the run until the build result is recorded."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from services.pipelines.domain.values import CoveragePercentage
from shared_kernel.domain import DomainModel
from shared_kernel.domain.value_objects import BlobReference, Identifier, Identity, SemanticVersion, Sha256


class TestSummary(DomainModel):
    """How many tests passed and failed."""

    __test__ = False  # not a pytest test class
    model_config = DomainModel.model_config | {"frozen": True}

    passed: int = Field(ge=0)
    failed: int = Field(ge=0)


class ArtifactItem(DomainModel):
    """An artifact the build produced, stored in a blob."""

    model_config = DomainModel.model_config | {"frozen": True}

    name: Identifier
    uri: BlobReference
    sha256: Sha256
    size: int = Field(ge=0)


class RunOutcome(DomainModel):
    """The provider's final report of a run: version, tests, coverage, artifacts and logs.

    Tests and coverage are None when the provider did not report them.
    """

    model_config = DomainModel.model_config | {"frozen": True}

    version: SemanticVersion
    tests: TestSummary | None = None
    coverage: CoveragePercentage | None = None
    artifacts: tuple[ArtifactItem, ...] = ()
    logs_uri: BlobReference | None = None
    reported_at: datetime
    reported_by: Identity
