"""``devops``: the operator's command line.

devops run                      migrate and run every service of the fleet
devops migrate [SERVICE…]       apply services' migrations
devops publish TYPE --tenant T --payload '{…}'   publish a command or event by hand
devops contracts                list message types, versions and routing keys
devops dlq …                    dead letters: list, show, replay, edit, purge, archive (fleet/dead_letters.py)
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import aio_pika
import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

import contracts
from contracts.registry import UnknownMessage
from shared_kernel.envelope import Envelope, describe_validation_error
from shared_kernel.messaging.publisher import amqp_message

# Every deployable service, by the name used for its queues and database. The
# order fixes each one's health port under `devops run` (_health_port).
SERVICES = ("source_control", "pipelines", "packaging")
# HEALTH_PORT's default; `devops run` counts up from it, one port per service.
DEFAULT_HEALTH_PORT = 8080

app = typer.Typer(help="Operate the DevOps fleet.", no_args_is_help=True, add_completion=False)
console = Console(stderr=True)


def _services(names: list[str] | None) -> list[str]:
    chosen = names or list(SERVICES)
    unknown = sorted(set(chosen) - set(SERVICES))
    if unknown:
        raise typer.BadParameter(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    return chosen


def _python_module(service: str, *arguments: str) -> list[str]:
    return [sys.executable, "-m", f"services.{service}", *arguments]


def _health_port(service: str, environment: Mapping[str, str]) -> int | None:
    """The health port ``devops run`` gives a service, or None to leave the service's settings alone.

    Every service serves /metrics, /healthz and /readyz on HEALTH_PORT, 8080 by
    default, so on one machine all but the first would fail to bind. Each gets
    the base plus its position in SERVICES (8080, 8081, 8082), the base being
    ``DEVOPS_HEALTH_PORT`` if set. None when the service's own
    ``<PREFIX>_HEALTH_PORT`` is set, or ``DEVOPS_HEALTH_PORT`` is 0 (each takes
    a free port and logs it) or not a number (the service refuses it).
    """
    # Settings names are case-insensitive.
    variables = {name.upper(): value for name, value in environment.items()}
    if f"{service.upper()}_HEALTH_PORT" in variables:
        return None
    base = variables.get("DEVOPS_HEALTH_PORT", str(DEFAULT_HEALTH_PORT)).strip()
    if not base.isdigit() or int(base) == 0:
        return None
    return int(base) + SERVICES.index(service)


def _child_environment(service: str, environment: Mapping[str, str]) -> dict[str, str]:
    """The environment of one service's process under ``devops run``: a health port of its own."""
    port = _health_port(service, environment)
    return dict(environment) if port is None else {**environment, f"{service.upper()}_HEALTH_PORT": str(port)}


@app.command()
def migrate(services: Annotated[list[str] | None, typer.Argument(help="default: all")] = None) -> None:
    """Apply each service's migrations (creates its database and roles if needed)."""
    for service in _services(services):
        console.print(f"migrating [bold]{service}[/]")
        subprocess.run(_python_module(service, "migrate"), check=True)


@app.command()
def run(services: Annotated[list[str] | None, typer.Argument(help="default: all")] = None) -> None:
    """Migrate, then run the services as separate processes until interrupted."""
    chosen = _services(services)
    migrate(chosen)
    processes = {
        service: subprocess.Popen(_python_module(service), env=_child_environment(service, os.environ))
        for service in chosen
    }
    ports = {service: _health_port(service, os.environ) for service in chosen}
    running = [service if ports[service] is None else f"{service} (:{ports[service]})" for service in chosen]
    console.print(f"running {', '.join(running)}; Ctrl-C stops them gracefully")

    def stop(*_: object) -> None:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = {service: process.wait() for service, process in processes.items()}
    failed = {service: code for service, code in codes.items() if code not in (0, -signal.SIGTERM)}
    if failed:
        console.print(f"[red]exited with errors:[/] {failed}")
        raise typer.Exit(1)


@app.command()
def publish(
    message_type: Annotated[str, typer.Argument(help="e.g. ProvisionRepository")],
    tenant: Annotated[str, typer.Option(help="tenantId")],
    payload: Annotated[str, typer.Option(help="JSON object, or @file.json")],
    project: Annotated[str | None, typer.Option(help="projectId")] = None,
    version: Annotated[int, typer.Option(help="schema major version")] = 1,
    correlation_id: Annotated[str | None, typer.Option(help="continue a conversation")] = None,
    amqp_url: Annotated[str, typer.Option(envvar="DEVOPS_AMQP_URL")] = "amqp://guest:guest@127.0.0.1:5672/",
) -> None:
    """Validate a payload against its contract and publish it in the envelope (confirmed).

    Prints the new eventId.
    """
    try:
        contract = contracts.registry.get(message_type, version)
    except UnknownMessage as error:
        raise typer.BadParameter(str(error)) from error
    raw = Path(payload[1:]).read_bytes() if payload.startswith("@") else payload.encode()
    try:
        body = contract.payload.model_validate_json(raw).wire()
    except ValidationError as error:
        raise typer.BadParameter(
            f"payload does not fit {message_type} v{version}: {describe_validation_error(error)}"
        ) from error
    envelope = Envelope.new(
        kind_prefix=contract.id_prefix,
        event_type=contract.message_type,
        schema_version=contract.version,
        payload=body,
        source=f"devops.operator.{os.environ.get('USER', 'unknown')}",
        tenant_id=tenant,
        project_id=project,
        correlation_id=correlation_id,
    )
    asyncio.run(_publish(amqp_url, contract.exchange, contract.routing_key, envelope))
    typer.echo(envelope.event_id)


async def _publish(amqp_url: str, exchange_name: str, routing_key: str, envelope: Envelope) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(exchange_name)
        await exchange.publish(
            amqp_message(envelope.to_json(), envelope.amqp_properties(), app_id=envelope.source),
            routing_key=routing_key,
            mandatory=True,
        )
    finally:
        await connection.close()


@app.command("contracts")
def list_contracts(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """List every message type with its version, exchange and routing key."""
    rows = [
        {
            "type": c.message_type,
            "version": c.version,
            "kind": c.kind,
            "exchange": c.exchange,
            "routingKey": c.routing_key_for("<context>"),
            "description": c.description.splitlines()[0] if c.description else "",
        }
        for c in contracts.registry
    ]
    if as_json:
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("type", "v", "kind", "routing key", "description")
    for row in rows:
        table.add_row(*(str(row[key]) for key in ("type", "version", "kind", "routingKey", "description")))
    Console().print(table)


def _register_groups() -> None:
    # Imported here: the group reads SERVICES from this module.
    from fleet.dead_letters import dlq

    app.add_typer(dlq, name="dlq")


_register_groups()
