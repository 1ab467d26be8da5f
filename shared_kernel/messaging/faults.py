"""Which exceptions are transient (retry in place) and which are not."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError, OperationalError

from shared_kernel.persistence.store import ConcurrencyConflict

_TRANSIENT_DRIVER_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # pg_terminate_backend, admin shutdown
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.UniqueViolationError,  # a race the handler's own check did not see
)


def is_transient(error: BaseException) -> bool:
    """True for faults that may pass if the same work is tried again at once."""
    if isinstance(error, ConcurrencyConflict | ConnectionError | TimeoutError | OSError):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated or isinstance(error, OperationalError):
            return True
        driver_error = error.orig.__cause__ if error.orig is not None else None
        return isinstance(driver_error, _TRANSIENT_DRIVER_ERRORS)
    return isinstance(error, _TRANSIENT_DRIVER_ERRORS)
