"""The format owners' published JSON Schemas, read from ``../shared/schemas``.

They are kept beside the repository, not in it; a test that needs one skips,
saying why, where the folder is absent.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

SCHEMAS = Path(__file__).resolve().parents[2].parent / "shared" / "schemas"


@cache
def published_schema(name: str) -> dict[str, Any]:
    path = SCHEMAS / name
    if not path.is_file():
        pytest.skip(
            f"published schema {name} not found at {path}: the schemas live in ../shared/schemas "
            "beside the repository, not in it"
        )
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return schema
