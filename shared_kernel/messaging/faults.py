"""Which exceptions are transient (retry in place) and which are not."""

from __future__ import annotations

import asyncpg

from shared_kernel.persistence.store import ConcurrencyConflict

_TRANSIENT = (
    ConcurrencyConflict,
    ConnectionError,
    TimeoutError,
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # "connection is closed", a connection lost mid-query
    asyncpg.exceptions.OperatorInterventionError,  # pg_terminate_backend, admin shutdown
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.UniqueViolationError,  # a race the handler's own check did not see
)


def is_transient(error: BaseException) -> bool:
    """True for faults that may pass if the same work is tried again at once."""
    return isinstance(error, _TRANSIENT)
