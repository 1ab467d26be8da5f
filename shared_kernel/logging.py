"""structlog configuration: JSON lines (console renderer on a TTY).

The runtime binds the envelope's ids (service, eventId, eventType, tenantId,
correlationId, traceId) with contextvars for the span of one delivery, so
every line logged while handling it carries them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson
import structlog


def configure_logging(*, service: str, level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog and route stdlib logging (aio-pika, FastStream) through it."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if use_console
        else structlog.processors.JSONRenderer(serializer=lambda obj, **_: orjson.dumps(obj).decode())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _merge_message_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


# The default is never mutated, only replaced by ``bound``.
_message_ids: ContextVar[dict[str, Any]] = ContextVar("message_ids", default={})  # noqa: B039


def _merge_message_ids(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    ids = _message_ids.get()
    if ids:
        event_dict = {**ids, **event_dict}
    return event_dict


@contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """Bind ids to every log line within the block (one delivery).

    One context variable holding a dict: binding costs one set and one reset
    per message, whatever the number of ids (this is on the per-message path).
    """
    token = _message_ids.set({**_message_ids.get(), **ids})
    try:
        yield
    finally:
        _message_ids.reset(token)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
