"""Files written once, durably, and read back verified: the storage of the local adapters
(the blob store, the package feed, the container registry).

A file is written in full to a staging folder on the same file system,
flushed to disk and made read-only; the caller then links or renames it into
place and syncs the folder, so a reader never sees half a file and a crash
leaves at most a stray staged file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

CHUNK = 1 << 20


def hashes_to(path: Path, hex_digest: str) -> bool:
    """Whether the file at ``path`` exists and its sha256 is ``hex_digest`` (read in chunks)."""
    try:
        with path.open("rb") as file:
            hasher = hashlib.sha256()
            while chunk := file.read(CHUNK):
                hasher.update(chunk)
    except FileNotFoundError:
        return False
    return hasher.hexdigest() == hex_digest


def staged(staging: Path, data: bytes, *, prefix: str = "") -> Path:
    """``data`` in a new read-only file under ``staging``, flushed to disk."""
    staging.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=staging, prefix=prefix)
    with os.fdopen(handle, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(name, 0o444)
    return Path(name)


def sync_directory(directory: Path) -> None:
    """Make a link, rename or unlink in ``directory`` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
