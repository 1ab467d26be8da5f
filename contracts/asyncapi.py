"""The fleet's message contracts as an AsyncAPI 3.0 document, and as tables for people.

Generated from the contract registry, so the document cannot drift from the
code without ``tests/contract/test_asyncapi.py`` saying so::

    python -m contracts.asyncapi > docs/asyncapi.json     # the AsyncAPI document
    python -m contracts.asyncapi --markdown                # the generated part of docs/contracts.md

One channel per contract (address = routing key, AMQP binding to its
exchange), one operation per channel (``receive`` for a command: its owning
service consumes it; ``send`` for an event: its context emits it), and one
message whose payload schema is the canonical envelope with ``payload``
replaced by the contract's own JSON Schema. Shared parts (pydantic ``$defs``)
live in ``components/schemas``; every ``$ref`` points inside the document.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import tomllib
import types
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, HttpUrl

from contracts.base import Payload
from contracts.common import AuditRecord
from contracts.registry import ANY_CONTEXT, AUDIT_EXCHANGE, ContractRegistry, MessageContract, kebab
from shared_kernel.domain.value_objects import ValueString
from shared_kernel.envelope import HEADER_CAUSATION, HEADER_SCHEMA_VERSION, HEADER_TENANT, Envelope
from shared_kernel.messaging.topology import EXCHANGES, UNROUTABLE

ASYNCAPI_VERSION = "3.0.0"
TITLE = "DevOps fleet messages"
PACKAGE = "devops-fleet"
DOCUMENT_ID = "urn:devops-fleet:messages"
AMQP_BINDING_VERSION = "0.3.0"
SERVER_ID = "rabbitmq"
CONTENT_TYPE = "application/json"
REGENERATE = "python -m contracts.asyncapi > docs/asyncapi.json"

# Audit records are not in the registry: every context publishes them through
# the shared runtime (shared_kernel/persistence/unit_of_work.py, queue_audit).
AUDIT_SCHEMA_VERSION = 1
AUDIT_CHANNEL = "audit"
AUDIT_ACTION_EXAMPLES = ("rule-refused",)
EVERY_CONTEXT = "every-context"  # channel id and tag of a contract registered for ANY_CONTEXT

_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TRACE_ID_PATTERN = "^(?!0{32})[0-9a-f]{32}$"

# The brief's envelope table, field by field (section 3 of ARCHITECTURE.md).
ENVELOPE_FIELDS: dict[str, str] = {
    "eventId": "Prefixed UUID (`evt-…` for an event, `cmd-…` for a command): the idempotency key. "
    "Mirrored in the AMQP `message_id`.",
    "eventType": "The message type, e.g. `RepositoryProvisioned`. Mirrored in the AMQP `type`.",
    "schemaVersion": "Integer major version of the payload schema, from 1. "
    "Mirrored in the AMQP header `x-schema-version`.",
    "tenantId": "Owning tenant. Mirrored in the AMQP header `x-tenant-id`.",
    "projectId": "Owning project, for project-scoped messages.",
    "moduleId": "Module, when applicable.",
    "aggregateType": "On events: the type of the aggregate that recorded it (set with aggregateId "
    "and aggregateVersion, or none of them).",
    "aggregateId": "On events: the id of the aggregate that recorded it.",
    "aggregateVersion": "On events: the aggregate's version after it.",
    "traceId": "End-to-end trace: a W3C trace id (32 lower-case hex digits, not all zero).",
    "correlationId": "The whole conversation; copied from the cause. Mirrored in the AMQP `correlation_id`.",
    "causationId": "The eventId of the message that caused this one, when a message caused it. "
    "Mirrored in the AMQP header `x-causation-id`.",
    "occurredAt": "When it happened: UTC, RFC 3339.",
    "source": "Emitting service, e.g. `devops.source-control`.",
    "payload": "The schema-versioned body.",
}


# -- the document ---------------------------------------------------------------------


def package_version() -> str:
    """The project's version: installed metadata, else ``pyproject.toml`` beside the package."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])


def build_asyncapi(registry: ContractRegistry) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every contract in ``registry`` plus the audit record."""
    book = _SchemaBook()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    contexts = sorted({c.context for c in registry if c.context != ANY_CONTEXT})

    for contract in registry:
        channel_id = _channel_id(contract)
        message_id = _message_id(contract.message_type, contract.version)
        summary, description = _summary(contract.description)
        messages[message_id] = _message(
            message_type=contract.message_type,
            version=contract.version,
            summary=summary,
            description=description,
            kind=contract.kind,
            tags=[_context_tag(contract.context), contract.kind],
            envelope=_envelope_schema(
                payload=book.add(contract.payload, owner=message_id),
                message_type=contract.message_type,
                version=contract.version,
                id_prefix=contract.id_prefix,
                source=None
                if contract.kind == "command" or contract.context == ANY_CONTEXT
                else f"devops.{contract.context}",
            ),
        )
        address = contract.routing_key_for("{context}")
        channels[channel_id] = _channel(
            address=address,
            exchange=contract.exchange,
            message_id=message_id,
            title=f"{contract.message_type} v{contract.version}",
            description=_channel_description(contract),
        )
        action = "receive" if contract.kind == "command" else "send"
        operations[f"{channel_id}.{action}"] = _operation(
            action=action,
            channel_id=channel_id,
            message_id=message_id,
            title=f"{_who(contract)} {'receives' if action == 'receive' else 'sends'} "
            f"{contract.message_type} v{contract.version}",
            summary=summary,
            description=_operation_description(contract),
            tag=_context_tag(contract.context),
        )

    audit_id = _message_id(AuditRecord.__name__, AUDIT_SCHEMA_VERSION)
    audit_summary, audit_description = _summary((AuditRecord.__doc__ or "").strip())
    messages[audit_id] = _message(
        message_type=AuditRecord.__name__,
        version=AUDIT_SCHEMA_VERSION,
        summary=audit_summary,
        description=audit_description,
        kind="event",
        tags=[EVERY_CONTEXT, "audit"],
        envelope=_envelope_schema(
            payload=book.add(AuditRecord, owner=audit_id),
            message_type=AuditRecord.__name__,
            version=AUDIT_SCHEMA_VERSION,
            id_prefix="evt",
            source=None,
        ),
    )
    channels[AUDIT_CHANNEL] = _channel(
        address="{context}.{action}",
        exchange=AUDIT_EXCHANGE,
        message_id=audit_id,
        title="Audit records",
        description=(
            "Governance audit records (who, what, when, why, outcome) for every approval decision, "
            f"refused rule and operator action, on `{AUDIT_EXCHANGE}` with routing key "
            "`<context>.<action-kebab>`, e.g. `source-control.rule-refused`. The routing key carries "
            "no version: the record's schema version is the envelope's schemaVersion and the "
            f"`{HEADER_SCHEMA_VERSION}` header. " + _exchange_sentence(AUDIT_EXCHANGE)
        ),
    )
    operations[f"{AUDIT_CHANNEL}.send"] = _operation(
        action="send",
        channel_id=AUDIT_CHANNEL,
        message_id=audit_id,
        title=f"Every service sends AuditRecord v{AUDIT_SCHEMA_VERSION}",
        summary=audit_summary,
        description=(
            "Published by every service in the same transaction as the decision it records "
            "(through its outbox), caused by the message it is about: correlationId and "
            "causationId tie it to the conversation."
        ),
        tag=EVERY_CONTEXT,
    )

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": DOCUMENT_ID,
        "info": {
            "title": TITLE,
            "version": package_version(),
            "description": _INFO_DESCRIPTION,
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            SERVER_ID: {
                "host": "127.0.0.1:5672",
                "pathname": "/",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "title": "RabbitMQ (example)",
                "description": "An example broker: the RabbitMQ of `docker-compose.yml` on the default "
                "vhost. Every environment runs the same topology (`docs/topology.md`); only the host, "
                "credentials and TLS differ.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": book.schemas,
            "parameters": {
                "context": {
                    "description": "The emitting context: the service name with `-` for `_` "
                    "(`source-control`); the envelope's source is `devops.<context>`.",
                    "examples": contexts,
                },
                "action": {
                    "description": "The audited action, kebab-case (`rule-refused`, …).",
                    "examples": list(AUDIT_ACTION_EXAMPLES),
                },
            },
        },
    }


_INFO_DESCRIPTION = """\
Every command and event of the DevOps fleet, generated from the contract registry \
(`contracts/`) by `python -m contracts.asyncapi`.

Each message body is the canonical JSON envelope (camelCase) whose `payload` is the \
contract's schema; the AMQP properties mirror it (`message_id` = eventId, `type` = eventType, \
`correlation_id` = correlationId, `content_type` = `application/json`, persistent delivery, \
headers `x-tenant-id`, `x-causation-id`, `x-schema-version`).

- `devops.commands` (topic): routing key `<context>.<command-kebab>.v<major>`; exactly one \
service consumes each command.
- `devops.events` (topic): routing key `<context>.<event-kebab>.v<major>`; any number of \
subscribers, each binding its own queue to an explicit major version (never `*` in the version \
position).
- `devops.audit` (topic): governance audit records, routing key `<context>.<action-kebab>`.

A breaking payload change is a new major version published beside the old one until \
subscribers move. Delivery is at least once: deduplicate by eventId. Versioning, idempotency \
and binding examples: `docs/contracts.md`."""


def _message_id(message_type: str, version: int) -> str:
    return f"{message_type}.v{version}"


def _channel_id(contract: MessageContract) -> str:
    if contract.context == ANY_CONTEXT:
        return f"{EVERY_CONTEXT}.{kebab(contract.message_type)}.v{contract.version}"
    return contract.routing_key


def _context_tag(context: str) -> str:
    return EVERY_CONTEXT if context == ANY_CONTEXT else context


def service_of(context: str) -> str:
    """``source-control`` -> ``source_control``: queues, database and module name."""
    return context.replace("-", "_")


def _who(contract: MessageContract) -> str:
    return "Every service" if contract.context == ANY_CONTEXT else service_of(contract.context)


def _summary(text: str) -> tuple[str, str]:
    """(first paragraph on one line, the whole text) of a docstring."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    if not paragraphs:
        return "", ""
    return paragraphs[0], "\n\n".join(paragraphs)


def _exchange_sentence(name: str) -> str:
    declared = EXCHANGES[name]
    alternate = (declared.arguments or {}).get("alternate-exchange", UNROUTABLE)
    return (
        f"The exchange is a durable {declared.type.value} exchange with alternate exchange "
        f"`{alternate}`, and publishers set `mandatory`: a message no queue takes is kept there, "
        "never dropped."
    )


def _channel_description(contract: MessageContract) -> str:
    if contract.kind == "command":
        lead = (
            f"Commands of type {contract.message_type} v{contract.version} on `{contract.exchange}`; "
            f"only `{service_of(contract.context)}` consumes them, from its inbox "
            f"`{service_of(contract.context)}.inbox`."
        )
    elif contract.context == ANY_CONTEXT:
        key = f"{kebab(contract.message_type)}.v{contract.version}"
        lead = (
            f"Events of type {contract.message_type} v{contract.version} on `{contract.exchange}`, "
            f"emitted by every context under its own name: bind `<context>.{key}` for one context "
            f"or `*.{key}` for all of them."
        )
    else:
        lead = (
            f"Events of type {contract.message_type} v{contract.version} on `{contract.exchange}`, "
            f"emitted by `{service_of(contract.context)}`; any number of subscribers bind their own "
            "queue to this routing key."
        )
    return f"{lead} {_exchange_sentence(contract.exchange)}"


def _operation_description(contract: MessageContract) -> str:
    if contract.kind == "command":
        service = service_of(contract.context)
        return (
            f"`{service}` consumes it from `{service}.inbox` (bound to `{contract.exchange}` with "
            f"`{contract.routing_key}`), at least once; a redelivered eventId is acknowledged and "
            "ignored. A command refused by a domain rule produces a CommandRejected event naming the "
            f"rule; an invalid one is dead-lettered to `{service}.dlq`."
        )
    if contract.context == ANY_CONTEXT:
        return (
            "Every service publishes it, under its own context, from its outbox with publisher "
            "confirms, persistent and mandatory."
        )
    return (
        f"`{service_of(contract.context)}` publishes it from its outbox after the transaction that "
        "recorded it commits, with publisher confirms, persistent and mandatory: at least once, so "
        "subscribers deduplicate by eventId."
    )


def _channel(*, address: str, exchange: str, message_id: str, title: str, description: str) -> dict[str, Any]:
    declared = EXCHANGES[exchange]
    channel: dict[str, Any] = {
        "address": address,
        "title": title,
        "description": description,
        "messages": {message_id: {"$ref": f"#/components/messages/{message_id}"}},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": exchange,
                    "type": declared.type.value,
                    "durable": bool(declared.durable),
                    "autoDelete": bool(declared.auto_delete),
                    "vhost": "/",
                },
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }
    parameters = re.findall(r"\{([^}]+)\}", address)
    if parameters:
        channel["parameters"] = {name: {"$ref": f"#/components/parameters/{name}"} for name in parameters}
    return channel


def _operation(
    *, action: str, channel_id: str, message_id: str, title: str, summary: str, description: str, tag: str
) -> dict[str, Any]:
    amqp: dict[str, Any] = {"ack": True} if action == "receive" else {"deliveryMode": 2, "mandatory": True}
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{_pointer_escape(channel_id)}"},
        "messages": [
            {"$ref": f"#/channels/{_pointer_escape(channel_id)}/messages/{_pointer_escape(message_id)}"}
        ],
        "title": title,
        "summary": summary,
        "description": description,
        "tags": [{"name": tag}],
        "bindings": {"amqp": {**amqp, "bindingVersion": AMQP_BINDING_VERSION}},
    }


def _message(
    *,
    message_type: str,
    version: int,
    summary: str,
    description: str,
    kind: str,
    tags: list[str],
    envelope: dict[str, Any],
) -> dict[str, Any]:
    return {
        "name": message_type,
        "title": f"{message_type} v{version}",
        "summary": summary,
        "description": description,
        "contentType": CONTENT_TYPE,
        "headers": _headers_schema(version),
        "payload": envelope,
        "correlationId": {
            "description": "The conversation this message belongs to (also the AMQP correlation_id).",
            "location": "$message.payload#/correlationId",
        },
        "bindings": {"amqp": {"messageType": message_type, "bindingVersion": AMQP_BINDING_VERSION}},
        "tags": [{"name": tag} for tag in dict.fromkeys([*tags, kind])],
    }


def _headers_schema(version: int) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "AMQP headers mirroring the envelope. The retry ladder and dead-lettering add "
        "their own (`x-retry-count`, `x-death`, `x-failure-outcome`, …: docs/topology.md), so "
        "other headers may be present.",
        "required": [HEADER_TENANT, HEADER_SCHEMA_VERSION],
        "properties": {
            HEADER_TENANT: {
                "type": "string",
                "minLength": 1,
                "maxLength": 128,
                "description": "The envelope's tenantId.",
            },
            HEADER_CAUSATION: {
                "type": "string",
                "description": "The envelope's causationId; absent when no message caused this one.",
            },
            HEADER_SCHEMA_VERSION: {
                "type": "integer",
                "const": version,
                "description": "The envelope's schemaVersion.",
            },
        },
        "additionalProperties": True,
    }


def _envelope_schema(
    *, payload: dict[str, Any], message_type: str, version: int, id_prefix: str, source: str | None
) -> dict[str, Any]:
    schema = copy.deepcopy(_ENVELOPE)
    properties: dict[str, Any] = schema["properties"]
    for name, field in properties.items():
        field.pop("title", None)  # pydantic's "Eventid", "Tenantid": the description says more
        if name in ENVELOPE_FIELDS:
            field["description"] = ENVELOPE_FIELDS[name]
    properties["eventId"]["pattern"] = f"^{id_prefix}-{_UUID}$"
    properties["eventType"]["const"] = message_type
    properties["schemaVersion"]["const"] = version
    properties["traceId"]["pattern"] = TRACE_ID_PATTERN
    if source is not None:
        properties["source"]["const"] = source
    properties["payload"] = payload
    schema["title"] = f"{message_type} v{version} envelope"
    schema["description"] = (
        f"The canonical envelope carrying a {message_type} v{version} payload. "
        "Absent optional fields are left out rather than sent as null."
    )
    return schema


_ENVELOPE: dict[str, Any] = Envelope.model_json_schema(by_alias=True)
if "$defs" in _ENVELOPE:  # pragma: no cover - the envelope has no nested models today
    raise RuntimeError("the envelope's JSON Schema grew $defs: hoist them like a payload's")


# -- JSON Schema: $defs into components/schemas ---------------------------------------


_DEFS = "#/$defs/"
_COMPONENT_SCHEMAS = "#/components/schemas/"
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "dependencies")
_SCHEMA_VALUES = (
    "items",
    "additionalItems",
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "items", "prefixItems")


def _pointer_escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _component_name(name: str) -> str:
    """A components key AsyncAPI accepts (``^[\\w\\d.\\-_]+$``)."""
    return re.sub(r"[^\w.\-]", "_", name)


def _rewrite(node: Any, names: dict[str, str]) -> Any:
    """A copy of schema ``node`` with ``#/$defs/X`` refs pointing into components/schemas.

    Schema-aware: ``default``, ``examples``, ``enum`` and ``const`` are data and
    copied as they are. A ``$ref`` with sibling keywords becomes an ``allOf`` so
    draft-07 tools, which ignore a ref's siblings, keep them. An OpenAPI-style
    discriminator object becomes AsyncAPI's property-name string.
    """
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _rewrite(sub, names) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_rewrite(sub, names) for sub in value]
        elif key in _SCHEMA_VALUES and isinstance(value, dict):
            out[key] = _rewrite(value, names)
        elif key == "discriminator" and isinstance(value, dict):
            out[key] = value["propertyName"]
        elif key == "$ref" and isinstance(value, str):
            if not value.startswith(_DEFS):
                raise ValueError(f"unexpected $ref {value!r}: only {_DEFS}… refs are hoisted")
            out[key] = _COMPONENT_SCHEMAS + _pointer_escape(names[value.removeprefix(_DEFS)])
        else:
            out[key] = copy.deepcopy(value)
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}, *out.get("allOf", [])]
    return out


class _SchemaBook:
    """``components/schemas`` being filled: one entry per distinct shared schema.

    The same model reached from several contracts is stored once; two different
    schemas under one name (two contexts each with their own ``PolicyBinding``,
    or a part changed in a new major version) are kept apart by qualifying the
    later one with the message that brought it.
    """

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def add(self, model: type[BaseModel], *, owner: str) -> dict[str, Any]:
        """``model``'s JSON Schema with its ``$defs`` hoisted here; returns the top-level schema."""
        schema = model.model_json_schema(by_alias=True)
        defs: dict[str, Any] = schema.pop("$defs", {})
        names = {name: _component_name(name) for name in defs}
        while True:
            rewritten = {name: _rewrite(body, names) for name, body in defs.items()}
            clashes = [
                name
                for name, body in rewritten.items()
                if names[name] in self.schemas and self.schemas[names[name]] != body
            ]
            if not clashes:
                break
            for name in clashes:
                names[name] = self._free(_component_name(f"{name}.{owner}"), taken=set(names.values()))
        for name, body in rewritten.items():
            self.schemas.setdefault(names[name], body)
        return _rewrite(schema, names)  # type: ignore[no-any-return]

    def _free(self, base: str, *, taken: set[str]) -> str:
        candidate, n = base, 1
        while candidate in self.schemas or candidate in taken:
            n += 1
            candidate = f"{base}.{n}"
        return candidate


# -- tables for docs/contracts.md -----------------------------------------------------


MARKDOWN_BEGIN = "<!-- generated by `python -m contracts.asyncapi --markdown`: do not edit by hand -->"
MARKDOWN_END = "<!-- end of generated tables -->"


def contracts_markdown(registry: ContractRegistry) -> str:
    """The message tables of docs/contracts.md (between its generated markers)."""
    lines: list[str] = [MARKDOWN_BEGIN, ""]
    all_contracts = list(registry)
    for context in sorted({c.context for c in all_contracts if c.context != ANY_CONTEXT}):
        name = context.replace("-", " ").title()
        for kind, exchange_word in (("command", "commands"), ("event", "events")):
            chosen = [c for c in all_contracts if c.context == context and c.kind == kind]
            if not chosen:
                continue
            lines += [f"### {name} {exchange_word}", ""]
            lines += _summary_table(chosen)
            for contract in chosen:
                lines += _message_section(contract.payload, contract.version, contract.routing_key)
    shared = [c for c in all_contracts if c.context == ANY_CONTEXT]
    if shared:
        lines += ["### Events of every context", ""]
        lines += _summary_table(shared)
        for contract in shared:
            lines += _message_section(
                contract.payload, contract.version, contract.routing_key_for("<context>")
            )
    lines += ["### Audit record", ""]
    lines += [
        f"On `{AUDIT_EXCHANGE}`, routing key `<context>.<action-kebab>` (no version in the key; "
        f"schemaVersion {AUDIT_SCHEMA_VERSION}), published by every service.",
        "",
    ]
    lines += _message_section(AuditRecord, AUDIT_SCHEMA_VERSION, "<context>.<action-kebab>")

    models = [c.payload for c in all_contracts] + [AuditRecord]
    parts = sorted(_nested_models(models) - set(models), key=lambda m: m.__name__)
    if parts:
        lines += ["### Shared parts", "", "Objects nested in the payloads above.", ""]
        for model in parts:
            lines += [f"#### `{model.__name__}`", "", _summary((model.__doc__ or "").strip())[0], ""]
            lines += _field_table(model)
    values = sorted(_value_types([*models, *parts]), key=lambda v: v.__name__)
    if values:
        lines += [
            "### Value types",
            "",
            "Strings with rules the JSON Schema does not spell out (it says `string`): the value is "
            "trimmed, then checked; a payload breaking one is invalid and dead-lettered.",
            "",
            "| type | meaning | rule |",
            "|---|---|---|",
        ]
        for value in values:
            rule = [f"1 to {value.max_length} characters"]
            if value.pattern is not None:
                rule.append(f"whole value matches `{_cell(value.pattern.pattern)}`")
            doc = _summary((value.__doc__ or "").strip())[0]
            lines.append(f"| `{value.__name__}` | {_cell(doc)} | {', '.join(rule)} |")
        lines.append("")
    lines.append(MARKDOWN_END)
    return "\n".join(lines) + "\n"


def _summary_table(chosen: list[MessageContract]) -> list[str]:
    exchange = chosen[0].exchange
    lines = [f"| type | routing key on `{exchange}` | summary |", "|---|---|---|"]
    for c in chosen:
        key = c.routing_key_for("<context>")
        lines.append(f"| `{c.message_type}` v{c.version} | `{key}` | {_cell(_summary(c.description)[0])} |")
    return [*lines, ""]


def _message_section(model: type[Payload], version: int, routing_key: str) -> list[str]:
    summary = _summary((model.__doc__ or "").strip())[0]
    return [
        f"#### `{model.__name__}` v{version}",
        "",
        f"`{routing_key}` — {summary}",
        "",
        *_field_table(model),
    ]


def _field_table(model: type[BaseModel]) -> list[str]:
    properties = model.model_json_schema(by_alias=True).get("properties", {})
    lines = ["| field | type | required | notes |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        alias = field.alias or name
        schema = properties.get(alias, {})
        notes = _constraints(schema)
        if not field.is_required() and "default" in schema:
            notes.insert(0, f"default `{json.dumps(schema['default'], ensure_ascii=False)}`")
        required = "yes" if field.is_required() else "no"
        lines.append(
            f"| `{alias}` | {_cell(_type_name(field.annotation))} | {required} | {_cell('; '.join(notes))} |"
        )
    return [*lines, ""]


_CONSTRAINTS: dict[str, Callable[[Any], str]] = {
    "minLength": lambda v: f"at least {v} character{'s' if v != 1 else ''}",
    "maxLength": lambda v: f"at most {v} characters",
    "minimum": lambda v: f"≥ {v}",
    "maximum": lambda v: f"≤ {v}",
    "exclusiveMinimum": lambda v: f"> {v}",
    "exclusiveMaximum": lambda v: f"< {v}",
    "pattern": lambda v: f"matches `{v}`",
    "minItems": lambda v: f"at least {v} item{'s' if v != 1 else ''}",
    "maxItems": lambda v: f"at most {v} items",
}


def _constraints(schema: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for branch in [schema, *schema.get("anyOf", [])]:
        for key, say in _CONSTRAINTS.items():
            if key in branch:
                found.append(say(branch[key]))
    return found


_SCALARS: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    datetime: "date-time",
    AwareDatetime: "date-time with UTC offset",
    HttpUrl: "http(s) URL",
    Any: "any",
    type(None): "null",
}


def _type_name(annotation: Any) -> str:
    """A reader's name for a field's type: ``list of `Identifier` ``, `` `BranchName` or null``."""
    origin = get_origin(annotation)
    arguments = get_args(annotation)
    if origin is Annotated:
        name = _type_name(arguments[0])
    elif origin in (Union, types.UnionType):
        name = " or ".join(_type_name(a) for a in arguments)
    elif origin is Literal:
        name = "one of " + ", ".join(f"`{a}`" for a in arguments)
    elif origin in (list, tuple, set, frozenset):
        name = f"list of {_type_name(arguments[0])}" if arguments else "list"
    elif origin is dict:
        name = "object"
    elif annotation in _SCALARS:
        name = _SCALARS[annotation]
    else:  # value types, nested models, anything else: by its name
        name = f"`{getattr(annotation, '__name__', str(annotation))}`"
    return name


def _walk_annotations(annotation: Any) -> Iterator[Any]:
    yield annotation
    for argument in get_args(annotation):
        yield from _walk_annotations(argument)


def _field_types(models: Iterable[type[BaseModel]]) -> Iterator[Any]:
    for model in models:
        for field in model.model_fields.values():
            yield from _walk_annotations(field.annotation)


def _nested_models(models: Iterable[type[BaseModel]]) -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    todo = list(models)
    while todo:
        for candidate in _field_types([todo.pop()]):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel) and candidate not in found:
                found.add(candidate)
                todo.append(candidate)
    return found


def _value_types(models: Iterable[type[BaseModel]]) -> set[type[ValueString]]:
    return {t for t in _field_types(models) if isinstance(t, type) and issubclass(t, ValueString)}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# -- command line ---------------------------------------------------------------------


def render(document: dict[str, Any]) -> str:
    """The committed form: sorted keys, two-space indent, UTF-8, final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.asyncapi",
        description=f"Print the AsyncAPI document of the message contracts ({REGENERATE}).",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the generated tables of docs/contracts.md instead"
    )
    arguments = parser.parse_args(argv)

    from contracts import registry  # importing the package registers every context's contracts

    text = contracts_markdown(registry) if arguments.markdown else render(build_asyncapi(registry))
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
