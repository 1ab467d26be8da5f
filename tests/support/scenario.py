"""One test's conversation with Source Control, under a tenant of its own."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from contracts import source_control as c
from contracts.base import Payload
from shared_kernel.envelope import Envelope
from shared_kernel.settings import ServiceSettings
from tests.support.bus import Bus, Captured


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Scenario:
    def __init__(self, bus: Bus, settings: ServiceSettings, tenant_id: str | None = None) -> None:
        self.bus = bus
        self.settings = settings
        self.tenant_id = tenant_id or unique("tenant")
        self.project_id = "proj-1"

    def envelope(self, payload: Payload, **kwargs: Any) -> Envelope:
        return self.bus.command(payload, tenant_id=self.tenant_id, project_id=self.project_id, **kwargs)

    async def send(self, payload: Payload, **kwargs: Any) -> Envelope:
        return await self.bus.send(self.envelope(payload, **kwargs))

    async def wait(
        self, event_type: str, *, count: int = 1, timeout: float = 15.0, **payload: Any
    ) -> list[Captured]:
        return await self.bus.capture.wait_for(
            event_type,
            count=count,
            timeout=timeout,
            where=lambda m: m.envelope.get("tenantId") == self.tenant_id,
            **payload,
        )

    def seen(self, event_type: str, **payload: Any) -> list[Captured]:
        return [
            m
            for m in self.bus.capture.matching(event_type, **payload)
            if m.envelope.get("tenantId") == self.tenant_id
        ]

    async def rejected(self, command: Envelope, timeout: float = 15.0) -> Captured:
        """The CommandRejected answering ``command``."""
        (found,) = await self.wait("CommandRejected", commandId=command.event_id, timeout=timeout)
        return found

    async def rows(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Query the service's database as its owner (sees every tenant)."""
        connection = await asyncpg.connect(
            host=self.settings.postgres_host,
            port=self.settings.postgres_port,
            user=self.settings.postgres_admin_user,
            password=self.settings.postgres_admin_password or None,
            database=self.settings.database_name,
        )
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    async def state_of(self, table: str, aggregate_id: str) -> dict[str, Any] | None:
        rows = await self.rows(
            f"SELECT state, version FROM {table} WHERE tenant_id = $1 AND id = $2",
            self.tenant_id,
            aggregate_id,
        )
        if not rows:
            return None
        import orjson

        return {"state": orjson.loads(rows[0]["state"]), "version": rows[0]["version"]}

    # -- building blocks ----------------------------------------------------------------

    async def provision(self, **overrides: Any) -> tuple[str, Captured]:
        repository_id = overrides.pop("repository_id", unique("repo"))
        fields: dict[str, Any] = {
            "repository_id": repository_id,
            "module_id": "mod-orders",
            "name": unique("orders"),
            "kind": "source",
            "provider": "AzureDevOps",
            "requested_by": "alice",
            **overrides,
        }
        await self.send(c.ProvisionRepository(**fields))
        (provisioned,) = await self.wait("RepositoryProvisioned", repositoryId=repository_id)
        await self.wait(
            "BranchCreated", repositoryId=repository_id, name=provisioned.payload["defaultBranch"]
        )
        return repository_id, provisioned

    async def branch(self, repository_id: str, name: str, **overrides: Any) -> Captured:
        branch_id = overrides.pop("branch_id", unique("br"))
        fields: dict[str, Any] = {"from_branch": "main", "created_by": "agent-1", **overrides}
        await self.send(c.CreateBranch(branch_id=branch_id, repository_id=repository_id, name=name, **fields))
        (created,) = await self.wait("BranchCreated", branchId=branch_id)
        return created

    def commit_command(self, repository_id: str, branch: str, **overrides: Any) -> c.CreateCommit:
        fields: dict[str, Any] = {
            "commit_id": unique("commit"),
            "repository_id": repository_id,
            "branch": branch,
            "message": "Add generated service skeleton",
            "artifact_id": unique("artifact"),
            "authored_by": "agent-1",
            "file_changes": [
                {"path": f"src/{unique('file')}.cs", "operation": "Add", "content": "// generated\n"}
            ],
            **overrides,
        }
        return c.CreateCommit(**fields)

    async def commit(self, repository_id: str, branch: str, **overrides: Any) -> Captured:
        command = self.commit_command(repository_id, branch, **overrides)
        await self.send(command)
        (created,) = await self.wait("CommitCreated", commitId=command.commit_id)
        return created

    async def open_pull_request(self, repository_id: str, source: str, target: str = "main") -> str:
        pull_request_id = unique("pr")
        await self.send(
            c.OpenPullRequest(
                pull_request_id=pull_request_id,
                repository_id=repository_id,
                source_branch=source,
                target_branch=target,
                title="Generated service skeleton",
                created_by="agent-1",
            )
        )
        await self.wait("PullRequestOpened", pullRequestId=pull_request_id)
        return pull_request_id
