"""The routes every service serves: /metrics, /healthz, /readyz."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from shared_kernel.observability.http import Response, Route
from shared_kernel.observability.metrics import RuntimeMetrics
from shared_kernel.observability.readiness import Readiness


def service_routes(metrics: RuntimeMetrics, readiness: Readiness) -> dict[str, Route]:
    async def scrape(headers: Mapping[str, str]) -> Response:
        body, content_type = await metrics.exposition(headers.get("accept", ""))
        return Response(HTTPStatus.OK, body, content_type)

    async def alive(_: Mapping[str, str]) -> Response:
        # Answering at all is the check: this runs on the service's event loop.
        return Response(HTTPStatus.OK, b"ok\n")

    async def ready(_: Mapping[str, str]) -> Response:
        report = await readiness.check()
        status = HTTPStatus.OK if report.ready else HTTPStatus.SERVICE_UNAVAILABLE
        return Response(status, report.json(), "application/json")

    return {"/metrics": scrape, "/healthz": alive, "/readyz": ready}
