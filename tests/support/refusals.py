"""Refusals seen from outside: the rule named on the bus, in the audit trail and the inbox,
and nothing the test watches changed. Shared by every context's invariant tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from contracts.base import Payload
from contracts.registry import AUDIT_EXCHANGE, EVENTS_EXCHANGE
from shared_kernel.envelope import Envelope
from tests.support.bus import Captured
from tests.support.scenario import Scenario, unique


async def inbox_outcome(scenario: Scenario, command: Envelope, *, within: float = 10.0) -> str | None:
    """The outcome in the command's inbox row once committed (None if none ``within`` seconds)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        rows = await scenario.rows(
            "SELECT outcome FROM inbox WHERE tenant_id = $1 AND event_id = $2",
            scenario.tenant_id,
            command.event_id,
        )
        if rows:
            return str(rows[0]["outcome"])
        if asyncio.get_running_loop().time() >= deadline:
            return None
        await asyncio.sleep(0.1)


async def answer_to(scenario: Scenario, command: Envelope, *, within: float = 15.0) -> Captured:
    """The first event (audit records aside) ``command`` caused: its refusal, or what it did."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        answers = [
            m
            for m in scenario.bus.capture.messages
            if m.exchange == EVENTS_EXCHANGE and m.envelope.get("causationId") == command.event_id
        ]
        if answers:
            return answers[0]
        assert loop.time() < deadline, f"no answer to {command.event_type} {command.event_id} in {within}s"
        await asyncio.sleep(0.05)


async def assert_rule_named(scenario: Scenario, command: Envelope, rule: str) -> None:
    """The refusal of ``command`` names ``rule``: in its CommandRejected, audit record and inbox row."""
    answer = await answer_to(scenario, command)
    assert answer.event_type == "CommandRejected", f"{command.event_type} was applied: {answer.event_type}"
    rejection = await scenario.rejected(command)
    context = scenario.settings.context
    assert (rejection.exchange, rejection.routing_key) == (EVENTS_EXCHANGE, f"{context}.command-rejected.v1")
    assert rejection.payload["commandId"] == command.event_id
    assert rejection.payload["commandType"] == command.event_type
    assert rejection.payload["rule"] == rule, rejection.payload["reason"]
    assert rejection.envelope["correlationId"] == command.correlation_id
    (audit,) = await scenario.wait("AuditRecord", subjectId=command.event_id)
    assert (audit.exchange, audit.routing_key) == (AUDIT_EXCHANGE, f"{context}.rule-refused")
    assert audit.payload["outcome"] == "refused"
    assert audit.payload["details"]["rule"] == rule
    assert audit.envelope["correlationId"] == command.correlation_id
    assert await inbox_outcome(scenario, command) == f"refused:{rule}"


class Watch(Protocol):
    """What a refused command must leave alone, read before and after."""

    async def read(self, scenario: Scenario) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Rows:
    """Aggregate rows (table, id) that must not change, and rows that must not appear."""

    rows: Sequence[tuple[str, str]] = ()
    absent: Sequence[tuple[str, str]] = ()

    async def read(self, scenario: Scenario) -> dict[str, Any]:
        return {f"{t}/{i}": await scenario.state_of(t, i) for t, i in [*self.rows, *self.absent]}


async def refuse(scenario: Scenario, payload: Payload, rule: str, watch: Watch) -> Envelope:
    """Send a command breaking ``rule``: it is refused by name and nothing watched changes."""
    before = await watch.read(scenario)
    absent = getattr(watch, "absent", ())
    assert [before[f"{t}/{i}"] for t, i in absent] == [None] * len(absent)
    command = await scenario.send(payload, correlation_id=unique("corr"))
    await assert_rule_named(scenario, command, rule)
    assert await watch.read(scenario) == before
    return command
