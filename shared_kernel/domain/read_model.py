"""Read models: a context's own copy of facts another context published.

A context that must check a fact owned by another ("references a successful
build") keeps the other's events it needs as read models in its own
database; it never reads the other's. A read model is stored like an
aggregate (same table shape, same optimistic concurrency) but records no
events: it is saved because it changed, not because something happened here.
"""

from __future__ import annotations

from shared_kernel.domain.aggregate import AggregateRoot


class ReadModel(AggregateRoot):
    """A record of another context's facts, saved through the unit of work without events."""
