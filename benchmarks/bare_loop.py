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

import aio_pika
import asyncpg
import orjson

INBOX_QUEUE = "bench.bare.inbox"
EVENTS_EXCHANGE = "devops.events"

SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_inbox (tenant_id text, event_id text, event_type text, outcome text,
    processed_at timestamptz DEFAULT now(), PRIMARY KEY (tenant_id, event_id));
CREATE TABLE IF NOT EXISTS bench_pull_requests (tenant_id text, id text, state jsonb, version int,
    updated_at timestamptz, PRIMARY KEY (tenant_id, id));
CREATE TABLE IF NOT EXISTS bench_outbox (id bigserial PRIMARY KEY, tenant_id text, routing_key text,
    message_id text, body bytea, sent_at timestamptz);
"""


async def main(amqp_url: str, dsn: str, prefetch: int) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=prefetch, max_size=prefetch)
    async with pool.acquire() as connection:
        await connection.execute(SCHEMA)
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=prefetch)
    events = await channel.get_exchange(EVENTS_EXCHANGE)
    queue = await channel.declare_queue(INBOX_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})

    async def handle(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        envelope = orjson.loads(message.body)
        payload = envelope["payload"]
        event = orjson.dumps(
            {**envelope, "eventType": "PullRequestReviewRecorded", "causationId": envelope["eventId"]}
        )
        async with pool.acquire() as db:
            async with db.transaction():
                await db.execute(
                    "INSERT INTO bench_inbox (tenant_id, event_id, event_type, outcome) "
                    "VALUES ($1, $2, $3, 'done')",
                    envelope["tenantId"],
                    envelope["eventId"],
                    envelope["eventType"],
                )
                await db.execute(
                    "UPDATE bench_pull_requests "
                    "SET state = jsonb_set(state, '{lastReviewer}', to_jsonb($3::text)), "
                    "version = version + 1, updated_at = now() WHERE tenant_id = $1 AND id = $2",
                    envelope["tenantId"],
                    payload["pullRequestId"],
                    payload["reviewer"],
                )
                outbox_id = await db.fetchval(
                    "INSERT INTO bench_outbox (tenant_id, routing_key, message_id, body) "
                    "VALUES ($1, $2, $3, $4) RETURNING id",
                    envelope["tenantId"],
                    "bench.bare.review-recorded.v1",
                    envelope["eventId"],
                    event,
                )
            await events.publish(
                aio_pika.Message(
                    event, message_id=envelope["eventId"], delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                ),
                routing_key="bench.bare.review-recorded.v1",
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
