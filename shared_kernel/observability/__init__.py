"""What operators see of a running service: Prometheus metrics, liveness and readiness.

``ServiceRuntime`` wires it for every service; docs/operations.md lists the
metric names, their labels and the endpoints.
"""

from shared_kernel.observability.backlog import Backlog, BacklogProbe
from shared_kernel.observability.endpoints import service_routes
from shared_kernel.observability.http import HttpEndpoint, Response
from shared_kernel.observability.metrics import MessageMetrics, MessageTypeCounts, RuntimeMetrics
from shared_kernel.observability.readiness import Phase, Readiness, ReadinessReport

__all__ = [
    "Backlog",
    "BacklogProbe",
    "HttpEndpoint",
    "MessageMetrics",
    "MessageTypeCounts",
    "Phase",
    "Readiness",
    "ReadinessReport",
    "Response",
    "RuntimeMetrics",
    "service_routes",
]
