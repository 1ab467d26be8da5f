"""The baseline: a bare aio-pika + asyncpg consumer doing the same work per message.

For each delivery: one transaction with the same statements as the runtime
(inbox insert, aggregate update, outbox insert), commit; publish the
follow-on event with a confirm; a second commit marking the outbox row sent;
ack. No validation, no framework, no logging. Run by the benchmark script as
its own process: ``python -m benchmarks.bare_loop AMQP_URL DSN PREFETCH``.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import orjson

INBOX_QUEUE = "bench.bare.inbox"
COMMANDS_EXCHANGE = "devops.commands"
EVENTS_EXCHANGE = "devops.events"
COMMAND_KEY = "bench-bare.record-pull-request-review.v1"
EVENT_KEY = "bench-bare.pull-request-review-recorded.v1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_inbox (tenant_id text, event_id text, event_type text, outcome text,
    processed_at timestamptz DEFAULT now(), PRIMARY KEY (tenant_id, event_id));
CREATE TABLE IF NOT EXISTS bench_pull_requests (tenant_id text, id text, state jsonb, version int,
    updated_at timestamptz, PRIMARY KEY (tenant_id, id));
CREATE TABLE IF NOT EXISTS bench_outbox (id bigserial PRIMARY KEY, tenant_id text, routing_key text,
    message_id text, body bytea, sent_at timestamptz);
"""


def follow_on_event(command: dict[str, Any], version: int, evaluation: str) -> bytes:
    """The same event the runtime emits, field for field, with the stored policy evaluation."""
    payload = command["payload"]
    return orjson.dumps(
        {
            "eventId": f"evt-{uuid.uuid4()}",
            "eventType": "PullRequestReviewRecorded",
            "schemaVersion": 1,
            "tenantId": command["tenantId"],
            "projectId": command.get("projectId"),
            "aggregateType": "PullRequest",
            "aggregateId": payload["pullRequestId"],
            "aggregateVersion": version,
            "traceId": command["traceId"],
            "correlationId": command["correlationId"],
            "causationId": command["eventId"],
            "occurredAt": datetime.now(UTC).isoformat(),
            "source": "devops.bench-bare",
            "payload": {
                "pullRequestId": payload["pullRequestId"],
                "tenantId": command["tenantId"],
                "projectId": command.get("projectId"),
                "reviewer": payload["reviewer"],
                "vote": payload["vote"],
                "comment": payload.get("comment", ""),
                "reviewedAt": command["occurredAt"],
                "policyEvaluation": orjson.Fragment(evaluation),
            },
        }
    )


async def main(amqp_url: str, dsn: str, prefetch: int) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=prefetch, max_size=prefetch)
    async with pool.acquire() as connection:
        await connection.execute(SCHEMA)
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=prefetch)
    events = await channel.get_exchange(EVENTS_EXCHANGE)
    queue = await channel.declare_queue(INBOX_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    # Commands arrive through the same topic exchange as the runtime's. Whatever an
    # interrupted earlier run left names rows of a database recreated since: drop it.
    await queue.bind(COMMANDS_EXCHANGE, routing_key=COMMAND_KEY)
    await queue.purge()

    async def handle(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        command = orjson.loads(message.body)
        payload = command["payload"]
        async with pool.acquire() as db:
            async with db.transaction():
                await db.execute(
                    "INSERT INTO bench_inbox (tenant_id, event_id, event_type, outcome) "
                    "VALUES ($1, $2, $3, 'done')",
                    command["tenantId"],
                    command["eventId"],
                    command["eventType"],
                )
                row = await db.fetchrow(
                    "UPDATE bench_pull_requests "
                    "SET state = jsonb_set(state, '{lastReviewer}', to_jsonb($3::text)), "
                    "version = version + 1, updated_at = now() WHERE tenant_id = $1 AND id = $2 "
                    "RETURNING version, state->'policyEvaluation' AS evaluation",
                    command["tenantId"],
                    payload["pullRequestId"],
                    payload["reviewer"],
                )
                event = follow_on_event(command, row["version"], row["evaluation"])
                outbox_id = await db.fetchval(
                    "INSERT INTO bench_outbox (tenant_id, routing_key, message_id, body) "
                    "VALUES ($1, $2, $3, $4) RETURNING id",
                    command["tenantId"],
                    EVENT_KEY,
                    command["eventId"],
                    event,
                )
            await events.publish(
                aio_pika.Message(
                    event,
                    message_id=command["eventId"],
                    type="PullRequestReviewRecorded",
                    correlation_id=command["correlationId"],
                    content_type="application/json",
                    headers={
                        "x-tenant-id": command["tenantId"],
                        "x-causation-id": command["eventId"],
                        "x-schema-version": 1,
                    },
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=EVENT_KEY,
                mandatory=True,
            )
            await db.execute("UPDATE bench_outbox SET sent_at = now() WHERE id = $1", outbox_id)
        await message.ack()

    await queue.consume(handle)
    print("bare loop started", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await connection.close()
    await pool.close()


if __name__ == "__main__":
    import uvloop  # the runtime runs on uvloop too

    uvloop.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
