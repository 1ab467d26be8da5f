"""Message contracts: the only thing that crosses a service boundary.

``registry`` knows every command and event, its owning context, its schema
version, its payload model and so its exchange and routing key. Importing
this package registers every context's contracts.
"""

from contracts import common, packaging, pipelines, source_control  # noqa: F401  (registration)
from contracts.registry import ContractRegistry, MessageContract, UnknownMessage, registry

__all__ = ["ContractRegistry", "MessageContract", "UnknownMessage", "registry"]
