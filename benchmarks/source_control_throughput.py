"""Throughput and latency of the Source Control consumer beside a bare loop.

Pushes N RecordPullRequestReview commands (database work only: no Git)
through ``python -m services.source_control`` and the same number through
``benchmarks/bare_loop.py`` (aio-pika + asyncpg, the same statements, a
confirmed publish and a second commit per message), alternating, three
rounds each, at the same prefetch and the same closed-loop window, and
prints the medians side by side with their ratio.

    python benchmarks/source_control_throughput.py [--messages 5000] [--prefetch 32] [--window 64]

Latency is from publishing a command to receiving its follow-on event on
devops.events (the runtime's includes the outbox relay).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bare_loop import COMMAND_KEY as BARE_COMMAND_KEY  # noqa: E402
from benchmarks.bare_loop import EVENT_KEY as BARE_EVENT_KEY  # noqa: E402
from benchmarks.bare_loop import SCHEMA as BARE_SCHEMA  # noqa: E402
from contracts import source_control as c  # noqa: E402
from contracts.base import Payload  # noqa: E402
from services.source_control.app import DEFINITION  # noqa: E402
from services.source_control.settings import SourceControlSettings  # noqa: E402
from shared_kernel.envelope import Envelope  # noqa: E402
from shared_kernel.persistence.migrations import migrate  # noqa: E402

RUNTIME_EVENT_KEY = "source-control.pull-request-review-recorded.v1"
BENCH_DATABASE = "devops_bench"


class LoadGenerator:
    """Closed loop: at most ``window`` commands in flight; one event frees a slot."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel) -> None:
        self.channel = channel
        self._sent_at: dict[str, float] = {}
        self._latencies: list[float] = []
        self._slots = asyncio.Semaphore(1)
        self._finished = asyncio.Event()
        self._expected = 0

    async def listen(self) -> None:
        queue = await self.channel.declare_queue("", exclusive=True, auto_delete=True)
        for key in (RUNTIME_EVENT_KEY, BARE_EVENT_KEY):
            await queue.bind("devops.events", routing_key=key)
        await queue.consume(self._on_event, no_ack=True)

    async def _on_event(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        cause = orjson.loads(message.body).get("causationId")
        sent = self._sent_at.pop(cause, None)
        if sent is None:
            return  # a redelivered duplicate or a stray event
        self._latencies.append(time.perf_counter() - sent)
        self._slots.release()
        if len(self._latencies) == self._expected:
            self._finished.set()

    async def run(
        self, bodies: list[tuple[str, bytes]], send: Callable[[bytes], Awaitable[None]], window: int
    ) -> tuple[float, list[float]]:
        self._latencies, self._expected = [], len(bodies)
        self._slots, self._finished = asyncio.Semaphore(window), asyncio.Event()
        started = time.perf_counter()
        for event_id, body in bodies:
            await self._slots.acquire()
            self._sent_at[event_id] = time.perf_counter()
            await send(body)
        await asyncio.wait_for(self._finished.wait(), timeout=600)
        return time.perf_counter() - started, self._latencies


def review_commands(tenant: str, pull_requests: list[str], count: int, round_: int) -> list[Envelope]:
    return [
        command(
            c.RecordPullRequestReview(
                pull_request_id=pull_requests[i % len(pull_requests)],
                reviewer=f"reviewer-{round_}-{i % 5}",
                vote="Approved",
            ),
            tenant,
        )
        for i in range(count)
    ]


def command(payload: Payload, tenant: str) -> Envelope:
    import contracts

    contract = contracts.registry.get(type(payload).__name__, 1)
    return Envelope.new(
        kind_prefix="cmd",
        event_type=contract.message_type,
        schema_version=1,
        payload=payload.wire(),
        source="devops.benchmark",
        tenant_id=tenant,
        project_id="bench",
    )


async def seed_pull_requests(channel: aio_pika.abc.AbstractChannel, tenant: str, count: int) -> list[str]:
    """A repository, a branch and ``count`` open pull requests, made through commands."""
    commands = await channel.get_exchange("devops.commands")
    events = await channel.declare_queue("", exclusive=True, auto_delete=True)
    await events.bind("devops.events", routing_key="source-control.#")
    seen: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        seen.put_nowait(orjson.loads(message.body))

    await events.consume(collect, no_ack=True)

    async def send(payload: Payload, expect: str) -> None:
        envelope = command(payload, tenant)
        await commands.publish(
            aio_pika.Message(envelope.to_json()),
            routing_key=f"source-control.{_kebab(type(payload).__name__)}.v1",
        )
        while True:
            event = await asyncio.wait_for(seen.get(), 30)
            if event.get("causationId") == envelope.event_id and event["eventType"] == expect:
                return

    await send(
        c.ProvisionRepository(
            repository_id="bench-repo", name="bench", kind="source", provider="GitHub", requested_by="bench"
        ),
        "RepositoryProvisioned",
    )
    await send(
        c.CreateBranch(
            branch_id="bench-branch",
            repository_id="bench-repo",
            name="feature/bench",
            from_branch="main",
            created_by="bench",
        ),
        "BranchCreated",
    )
    ids = [f"bench-pr-{n}" for n in range(count)]
    for pull_request_id in ids:
        await send(
            c.OpenPullRequest(
                pull_request_id=pull_request_id,
                repository_id="bench-repo",
                source_branch="feature/bench",
                target_branch="main",
                title="bench",
                created_by="bench",
            ),
            "PullRequestOpened",
        )
    return ids


def _kebab(name: str) -> str:
    from contracts.registry import kebab

    return kebab(name)


async def prepare_bare_database(settings: SourceControlSettings, tenant: str) -> str:
    admin = await asyncpg.connect(
        host=settings.postgres_host,
        port=settings.postgres_port,
        user=settings.postgres_admin_user,
        database="postgres",
    )
    await admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    await admin.close()
    bench = await asyncpg.connect(
        host=settings.postgres_host,
        port=settings.postgres_port,
        user=settings.postgres_admin_user,
        database=BENCH_DATABASE,
    )
    await bench.execute(BARE_SCHEMA)
    source = await asyncpg.connect(
        host=settings.postgres_host,
        port=settings.postgres_port,
        user=settings.postgres_admin_user,
        database=settings.database_name,
    )
    rows = await source.fetch("SELECT id, state FROM pull_requests WHERE tenant_id = $1", tenant)
    await source.close()
    # The same aggregate documents, so both loops read and write rows of the same size.
    await bench.executemany(
        "INSERT INTO bench_pull_requests (tenant_id, id, state, version, updated_at) "
        "VALUES ($1, $2, $3::jsonb, 1, now())",
        [(tenant, row["id"], row["state"]) for row in rows],
    )
    await bench.close()
    return f"postgresql://{settings.postgres_admin_user}@{settings.postgres_host}:{settings.postgres_port}/{BENCH_DATABASE}"


def spawn(arguments: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, *arguments],
        cwd=ROOT,
        env={**os.environ, **environment},
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


async def wait_for_line(log: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text.encode() not in log.read_bytes():  # noqa: ASYNC240 - a small local log file
        if time.monotonic() > deadline:
            raise SystemExit(f"{log} never said {text!r}:\n{log.read_text()[-2000:]}")  # noqa: ASYNC240
        await asyncio.sleep(0.1)


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """User + system CPU time of a child process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine so far: consumer, broker, database and load generator."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = (int(value) for value in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def summary(elapsed: float, latencies: list[float], cpu: float, machine: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "throughput": len(ordered) / elapsed,
        "p50": ordered[len(ordered) // 2] * 1000,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "cpu": cpu / len(ordered) * 1000,
        "machine": machine / len(ordered) * 1000,
    }


def print_report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    medians = {
        name: {
            key: statistics.median(r[key] for r in runs)
            for key in ("throughput", "p50", "p99", "cpu", "machine")
        }
        for name, runs in results.items()
    }
    print()
    print(
        f"{args.messages} RecordPullRequestReview commands per run, prefetch {args.prefetch}, "
        f"window {args.window}, median of {args.rounds}"
    )
    header = f"{'':12}{'msg/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'consumer CPU':>14}{'machine CPU':>13}"
    print(header)
    print(f"{'':52}{'ms/msg':>14}{'ms/msg':>13}")
    for name, figures in medians.items():
        print(
            f"{name:12}{figures['throughput']:10.0f}{figures['p50']:10.1f}{figures['p99']:10.1f}"
            f"{figures['cpu']:14.2f}{figures['machine']:13.2f}"
        )
    ratio = medians["runtime"]["throughput"] / medians["bare loop"]["throughput"]
    print(f"ratio runtime / bare loop (throughput): {ratio:.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--prefetch", type=int, default=32)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--pull-requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    settings = SourceControlSettings()
    await migrate(settings, DEFINITION.migrations)
    tenant = f"bench-{int(time.time())}"
    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    environment = {
        "SOURCE_CONTROL_PREFETCH": str(args.prefetch),
        "SOURCE_CONTROL_GIT_ROOT": str(logs / "git"),
        "SOURCE_CONTROL_LOG_FORMAT": "json",
    }
    runtime = spawn(["-m", "services.source_control"], environment, logs / "runtime.log")
    connection = await aio_pika.connect_robust(settings.amqp_url)
    try:
        await wait_for_line(logs / "runtime.log", "service started")
        channel = await connection.channel(publisher_confirms=False)
        pull_requests = await seed_pull_requests(await connection.channel(), tenant, args.pull_requests)
        dsn = await prepare_bare_database(settings, tenant)
        bare = spawn(
            ["-m", "benchmarks.bare_loop", settings.amqp_url, dsn, str(args.prefetch)], {}, logs / "bare.log"
        )
        await wait_for_line(logs / "bare.log", "bare loop started")
        generator = LoadGenerator(channel)
        await generator.listen()
        commands = await channel.get_exchange("devops.commands")

        async def to_runtime(body: bytes) -> None:
            await commands.publish(
                aio_pika.Message(body, delivery_mode=2, content_type="application/json"),
                routing_key="source-control.record-pull-request-review.v1",
            )

        async def to_bare(body: bytes) -> None:
            await commands.publish(
                aio_pika.Message(body, delivery_mode=2, content_type="application/json"),
                routing_key=BARE_COMMAND_KEY,
            )

        results: dict[str, list[dict[str, float]]] = {"runtime": [], "bare loop": []}
        for round_ in range(args.rounds):
            for name, send, consumer in (("runtime", to_runtime, runtime), ("bare loop", to_bare, bare)):
                bodies = [
                    (e.event_id, e.to_json())
                    for e in review_commands(tenant, pull_requests, args.messages, round_)
                ]
                cpu_before, machine_before = cpu_seconds(consumer), machine_cpu_seconds()
                elapsed, latencies = await generator.run(bodies, send, args.window)
                cpu, machine = cpu_seconds(consumer) - cpu_before, machine_cpu_seconds() - machine_before
                results[name].append(summary(elapsed, latencies, cpu, machine))
                print(
                    f"round {round_ + 1} {name:9}: {results[name][-1]['throughput']:8.0f} msg/s", flush=True
                )
        bare.terminate()
        bare.wait(20)
    finally:
        runtime.terminate()
        runtime.wait(30)
        await connection.close()

    print_report(results, args)


if __name__ == "__main__":
    asyncio.run(main())
