"""The README's `devops publish` examples send payloads their contracts accept."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import orjson
import pytest

import contracts

pytestmark = pytest.mark.contract

README = Path(__file__).resolve().parents[2] / "README.md"


def _examples() -> list[list[str]]:
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    return [shlex.split(line.strip()) for line in text.splitlines() if re.match(r"\s*devops publish ", line)]


EXAMPLES = _examples()


def test_the_readme_has_publish_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("words", EXAMPLES, ids=lambda words: words[2])
def test_a_publish_example_fits_its_contract(words: list[str]) -> None:
    message_type = words[2]
    payload = orjson.loads(words[words.index("--payload") + 1])
    contract = contracts.registry.latest(message_type)
    contract.payload.model_validate(payload)
    assert "--tenant" in words
