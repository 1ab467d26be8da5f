"""The AsyncAPI document of the message contracts: valid, complete, resolvable, committed.

``docs/asyncapi.json`` is generated from the contract registry by
``python -m contracts.asyncapi``; these tests check it against the AsyncAPI
3.0.0 JSON Schema (kept beside the repository, in ``../shared/schemas``),
check what that schema cannot (every ``$ref`` resolves, operations use their
channel's messages, address parameters are declared), check that it describes
every contract at its routing key and what the code really sends, and that
the committed copy and the generated tables of ``docs/contracts.md`` are up to
date.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match
from pydantic import create_model
from referencing import Registry as SchemaRegistry
from referencing.jsonschema import DRAFT7

from contracts import registry
from contracts.asyncapi import (
    AUDIT_CHANNEL,
    ENVELOPE_FIELDS,
    MARKDOWN_BEGIN,
    MARKDOWN_END,
    REGENERATE,
    build_asyncapi,
    contracts_markdown,
    render,
)
from contracts.base import Payload
from contracts.common import AuditRecord, CommandRejected
from contracts.registry import (
    ANY_CONTEXT,
    AUDIT_EXCHANGE,
    COMMANDS_EXCHANGE,
    EVENTS_EXCHANGE,
    ContractRegistry,
    MessageContract,
    kebab,
)
from contracts.source_control import ProvisionRepository, RepositoryProvisioned
from shared_kernel.envelope import Envelope
from tests.support.schemas import published_schema

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "asyncapi.json"
CONTRACTS_DOC = ROOT / "docs" / "contracts.md"

KEBAB = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
ROUTING_KEY = re.compile(rf"(?P<context>{KEBAB}|\{{context\}})\.(?P<name>{KEBAB})\.v(?P<major>[1-9][0-9]*)")
DOC_URI = "urn:test:asyncapi-document"
AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


@cache
def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(render(build_asyncapi(registry)))
    return document


def _contract_address(contract: MessageContract) -> str:
    return contract.routing_key_for("{context}") if contract.context == ANY_CONTEXT else contract.routing_key


def _refs(node: Any, path: str = "#") -> Iterator[tuple[str, str]]:
    """(where, target) of every ``$ref`` in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from _refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, f"{path}/{index}")


def _resolve(document: dict[str, Any], ref: str) -> Any:
    """The node a local ``#/…`` JSON Pointer names; KeyError/IndexError when it names nothing."""
    if not ref.startswith("#/"):
        raise KeyError(f"{ref} does not point inside the document")
    node: Any = document
    for raw in ref.removeprefix("#/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _channel_of(contract: MessageContract) -> dict[str, Any]:
    address = _contract_address(contract)
    found: list[dict[str, Any]] = [c for c in _document()["channels"].values() if c["address"] == address]
    assert len(found) == 1, f"{contract.message_type} v{contract.version}: {len(found)} channels at {address}"
    return found[0]


def _wire_errors(message_id: str, part: str, instance: Any) -> list[str]:
    """Errors of ``instance`` against a message's payload or headers schema, refs resolved in the document."""
    schemas = SchemaRegistry().with_resource(DOC_URI, DRAFT7.create_resource(_document()))
    validator = Draft7Validator(
        {"$ref": f"{DOC_URI}#/components/messages/{message_id}/{part}"}, registry=schemas
    )
    return sorted(
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(instance)
    )


# -- the format ------------------------------------------------------------------------


def test_document_is_valid_asyncapi_3() -> None:
    validator = Draft7Validator(published_schema("asyncapi-3.0.0.schema.json"))
    errors = []
    for error in validator.iter_errors(_document()):
        cause = best_match([error])  # a oneOf failure names the branch that came closest
        where = "/".join(map(str, cause.absolute_path)) or "(root)"
        errors.append(f"{where}: {cause.message[:300]}")
    assert not errors, "\n".join(sorted(errors)[:20])


def test_every_ref_resolves_inside_the_document() -> None:
    # The AsyncAPI JSON Schema bundle does not catch dangling references.
    document = _document()
    dangling = []
    for where, ref in _refs(document):
        try:
            _resolve(document, ref)
        except (KeyError, IndexError, ValueError, TypeError):
            dangling.append(f"{where}: {ref}")
    assert not dangling, "dangling $refs:\n" + "\n".join(dangling)
    assert any(True for _ in _refs(document["components"]["messages"])), "expected refs to shared schemas"


def test_operations_use_their_channels_messages_and_addresses_declare_their_parameters() -> None:
    document = _document()
    for operation_id, operation in document["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/"), operation_id
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel_ref}/messages/"), (
                f"{operation_id}: {message['$ref']} is not a message of {channel_ref}"
            )
    for channel_id, channel in document["channels"].items():
        placeholders = set(re.findall(r"\{([^}]+)\}", channel["address"]))
        assert placeholders == set(channel.get("parameters", {})), channel_id
    used = {op["channel"]["$ref"].removeprefix("#/channels/") for op in document["operations"].values()}
    assert used == set(document["channels"]), "every channel has an operation and no operation is orphaned"
    # components keys must match this; the JSON Schema bundle lets others through unchecked
    component_key = re.compile(r"[\w\d.\-_]+")
    for section, entries in document["components"].items():
        bad = [key for key in entries if not component_key.fullmatch(key)]
        assert not bad, f"components/{section}: keys AsyncAPI refuses: {bad}"


def test_shared_parts_with_one_name_and_two_shapes_are_kept_apart() -> None:
    # Two contexts may each define their own ``Part``: both must survive, each ref pointing at its own.
    def part(field: str) -> type[Payload]:
        return create_model("Part", __base__=Payload, **{field: (str, ...)})

    first, second = part("colour"), part("size")
    contracts = ContractRegistry()
    contracts.event("alpha", create_model("AlphaHappened", __base__=Payload, part=(first, ...)))
    contracts.event("beta", create_model("BetaHappened", __base__=Payload, part=(second, ...)))
    contracts.event("gamma", create_model("GammaHappened", __base__=Payload, part=(first, ...)))
    document = json.loads(render(build_asyncapi(contracts)))

    def part_of(message_id: str) -> dict[str, Any]:
        payload = document["components"]["messages"][message_id]["payload"]["properties"]["payload"]
        resolved: dict[str, Any] = _resolve(document, payload["properties"]["part"]["$ref"])
        return resolved

    assert set(part_of("AlphaHappened.v1")["properties"]) == {"colour"}
    assert set(part_of("BetaHappened.v1")["properties"]) == {"size"}
    assert part_of("GammaHappened.v1") is part_of("AlphaHappened.v1")  # the same shape is stored once
    assert len(document["components"]["schemas"]) == 2
    for _, ref in _refs(document):
        _resolve(document, ref)


# -- the contracts ---------------------------------------------------------------------


def test_every_contract_has_a_channel_at_its_routing_key() -> None:
    assert list(registry), "the registry is empty: did importing contracts register nothing?"
    for contract in registry:
        channel = _channel_of(contract)
        amqp = channel["bindings"]["amqp"]
        assert amqp["is"] == "routingKey"
        assert amqp["exchange"] == {
            "name": contract.exchange,
            "type": "topic",
            "durable": True,
            "autoDelete": False,
            "vhost": "/",
        }
        (ref,) = (m["$ref"] for m in channel["messages"].values())
        message = _resolve(_document(), ref)
        envelope = message["payload"]["properties"]
        assert envelope["eventType"]["const"] == contract.message_type
        assert envelope["schemaVersion"]["const"] == contract.version
        assert message["headers"]["properties"]["x-schema-version"]["const"] == contract.version
        assert envelope["eventId"]["pattern"].startswith(f"^{contract.id_prefix}-")
        assert message["bindings"]["amqp"]["messageType"] == contract.message_type

    audit = _document()["channels"][AUDIT_CHANNEL]
    assert audit["address"] == "{context}.{action}"
    assert audit["bindings"]["amqp"]["exchange"]["name"] == AUDIT_EXCHANGE


def test_commands_are_received_and_events_sent() -> None:
    operations = _document()["operations"]
    for contract in registry:
        channel = _channel_of(contract)
        (operation,) = (
            op for op in operations.values() if _resolve(_document(), op["channel"]["$ref"]) is channel
        )
        assert operation["action"] == ("receive" if contract.kind == "command" else "send")
        assert operation["summary"], f"{contract.message_type} has no docstring to summarise"


def test_routing_keys_follow_the_convention() -> None:
    for contract in registry:
        key = _contract_address(contract)
        match = ROUTING_KEY.fullmatch(key)
        assert match, f"{key}: not <context>.<kebab>.v<major>"
        assert match["name"] == kebab(contract.message_type), key
        assert int(match["major"]) == contract.version, key
        assert (match["context"] == "{context}") == (contract.context == ANY_CONTEXT), key
    for channel_id, channel in _document()["channels"].items():
        if channel["bindings"]["amqp"]["exchange"]["name"] in (COMMANDS_EXCHANGE, EVENTS_EXCHANGE):
            assert ROUTING_KEY.fullmatch(channel["address"]), f"{channel_id}: {channel['address']}"


def test_every_envelope_field_is_described() -> None:
    aliases = {field.alias or name for name, field in Envelope.model_fields.items()}
    assert aliases == set(ENVELOPE_FIELDS), "contracts/asyncapi.py ENVELOPE_FIELDS must match the envelope"


# -- what the code sends fits the document ----------------------------------------------


def _wire(envelope: Envelope) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(envelope.to_json())
    return body


def test_a_command_the_cli_would_publish_fits() -> None:
    payload = ProvisionRepository(
        repository_id="repo-orders",
        name="orders",
        kind="source",
        provider="AzureDevOps",
        requested_by="alice",
    ).wire()
    envelope = Envelope.new(
        kind_prefix="cmd",
        event_type="ProvisionRepository",
        schema_version=1,
        payload=payload,
        source="devops.operator",
        tenant_id="acme",
        project_id="shop",
    )
    assert _wire_errors("ProvisionRepository.v1", "payload", _wire(envelope)) == []
    assert _wire_errors("ProvisionRepository.v1", "headers", envelope.amqp_properties()["headers"]) == []

    unknown_field = {**_wire(envelope), "payload": {**payload, "colour": "blue"}}
    assert any("colour" in e for e in _wire_errors("ProvisionRepository.v1", "payload", unknown_field))
    as_event = {**_wire(envelope), "eventId": envelope.event_id.replace("cmd-", "evt-", 1)}
    assert any(e.startswith("eventId") for e in _wire_errors("ProvisionRepository.v1", "payload", as_event))


def test_events_the_runtime_publishes_fit() -> None:
    command = Envelope.new(
        kind_prefix="cmd", event_type="ProvisionRepository", schema_version=1, payload={},
        source="devops.operator", tenant_id="acme", project_id="shop",
    )  # fmt: skip
    provisioned = RepositoryProvisioned(
        repository_id="repo-orders",
        tenant_id="acme",
        project_id="shop",
        module_id=None,
        name="orders",
        kind="source",
        provider="AzureDevOps",
        remote_url="file:///srv/git/acme/orders.git",
        default_branch="main",
        visibility="Private",
        initial_commit_sha="a" * 40,
        default_branch_policy={"minimumReviewers": 1, "requiredChecks": ["build"]},
        created_at=AT,
        provisioned_by="alice",
    )
    rejected = CommandRejected(
        command_type="ProvisionRepository", command_id=command.event_id, rule="DuplicateRepositoryName",
        reason="a repository named orders exists",
    )  # fmt: skip
    audit = AuditRecord(
        action="rule-refused", actor="devops.operator", outcome="refused", subject_type="ProvisionRepository",
        subject_id=command.event_id, recorded_at=AT, details={"rule": "DuplicateRepositoryName"},
    )  # fmt: skip
    for message_id, payload, aggregate in (
        ("RepositoryProvisioned.v1", provisioned, ("Repository", "repo-orders", 1)),
        ("CommandRejected.v1", rejected, None),
        ("AuditRecord.v1", audit, None),
    ):
        envelope = Envelope.new(
            kind_prefix="evt",
            event_type=message_id.split(".")[0],
            schema_version=1,
            payload=payload.wire(),
            source="devops.source-control",
            tenant_id="acme",
            cause=command,
            aggregate=aggregate,
        )
        assert _wire_errors(message_id, "payload", _wire(envelope)) == [], message_id
        assert _wire_errors(message_id, "headers", envelope.amqp_properties()["headers"]) == [], message_id


def test_the_envelope_examples_in_the_contracts_doc_fit() -> None:
    examples = [
        json.loads(block)
        for block in re.findall(r"```json\n(.*?)```", CONTRACTS_DOC.read_text(encoding="utf-8"), re.S)
    ]
    envelopes = [e for e in examples if isinstance(e, dict) and "eventType" in e]
    assert envelopes, "docs/contracts.md shows no envelope example"
    for example in envelopes:
        Envelope.model_validate(example)
        message_id = f"{example['eventType']}.v{example['schemaVersion']}"
        assert _wire_errors(message_id, "payload", example) == [], message_id


# -- committed copies --------------------------------------------------------------------


def test_generation_is_deterministic() -> None:
    assert render(build_asyncapi(registry)) == render(build_asyncapi(registry))


def test_committed_document_is_up_to_date() -> None:
    expected = render(build_asyncapi(registry))
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.is_file() else ""
    if committed != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    "docs/asyncapi.json (committed)",
                    "generated",
                    n=1,
                )
            )[:60]
        )
        pytest.fail(
            f"docs/asyncapi.json is out of date with the contracts; regenerate it with\n"
            f"    .venv/bin/{REGENERATE}\nand commit it.\n{diff}",
            pytrace=False,
        )


def test_contracts_doc_tables_are_up_to_date() -> None:
    assert CONTRACTS_DOC.is_file(), f"{CONTRACTS_DOC} is missing"
    text = CONTRACTS_DOC.read_text(encoding="utf-8")
    assert MARKDOWN_BEGIN in text, f"docs/contracts.md lost its marker {MARKDOWN_BEGIN}"
    assert MARKDOWN_END in text, f"docs/contracts.md lost its marker {MARKDOWN_END}"
    start = text.index(MARKDOWN_BEGIN)
    committed = text[start : text.index(MARKDOWN_END, start) + len(MARKDOWN_END)] + "\n"
    if committed != contracts_markdown(registry):
        pytest.fail(
            "the message tables in docs/contracts.md are out of date with the contracts; replace the part "
            "between its generated markers with the output of\n"
            "    .venv/bin/python -m contracts.asyncapi --markdown",
            pytrace=False,
        )
