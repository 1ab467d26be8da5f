"""Value objects of the Pipelines context."""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Any, Self

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from shared_kernel.domain import InvalidValue
from shared_kernel.domain.value_objects import RepositoryPath, ValueString


class ModuleType(StrEnum):
    LIBRARY = "library"
    SERVICE = "service"


class RunReason(StrEnum):
    CI = "ci"
    MANUAL = "manual"
    RELEASE = "release"


class TemplateVersion(ValueString):
    """A version (tag) of the organisation's pipeline templates, such as ``v1.4.0``."""

    pattern = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]*")
    description = "a template tag: letters, digits and . _ / + -"
    max_length = 128


class FeedReference(ValueString):
    """Where a build's output is pushed: ``feed``, ``project/feed`` or a registry path."""

    pattern = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
    description = "a feed name, project/feed, or registry/repository"


class DefinitionPath(RepositoryPath):
    """The repository-relative path of a pipeline YAML file (``.yml`` or ``.yaml``)."""

    @classmethod
    def check(cls, value: str) -> None:
        super().check(value)
        if not value.casefold().endswith((".yml", ".yaml")):
            raise InvalidValue(f"DefinitionPath {value!r} must be a relative path to a .yml or .yaml file")


class CoveragePercentage(float):
    """Code coverage of a build, a percentage from 0 to 100."""

    __slots__ = ()

    def __new__(cls, value: float) -> Self:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidValue(f"CoveragePercentage must be a number, got {type(value).__name__}")
        if math.isnan(value) or not 0 <= value <= 100:
            raise InvalidValue(f"CoveragePercentage must be between 0 and 100, got {value!r}")
        return super().__new__(cls, value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: float) -> CoveragePercentage:
            try:
                return cls(value)
            except InvalidValue as error:
                raise ValueError(str(error)) from error

        return core_schema.no_info_after_validator_function(
            validate,
            core_schema.float_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(float),
        )
