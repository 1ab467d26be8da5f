"""Prefixed identifiers and W3C trace ids."""

from __future__ import annotations

import secrets
import uuid


def new_id(prefix: str) -> str:
    """``evt-<uuid4>``, ``cmd-<uuid4>``, …: the prefix says what the id names."""
    return f"{prefix}-{uuid.uuid4()}"


def deterministic_id(prefix: str, *parts: str) -> str:
    """A stable id derived from foreign ids (an ingress eventId, a lineage key)."""
    return f"{prefix}-{uuid.uuid5(uuid.NAMESPACE_URL, '/'.join(parts))}"


def new_trace_id() -> str:
    """A W3C trace-context trace id: 32 lower-case hex digits, not all zero."""
    return secrets.token_hex(16)
