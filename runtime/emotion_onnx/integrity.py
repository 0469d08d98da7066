"""Content hashing shared by the export stage (which records) and the runtime (which checks)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import IntegrityError, ModelNotFoundError

_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected_sha256: str, expected_size: int | None = None) -> None:
    """Raise IntegrityError unless `path` (already confined to its model directory) has the
    recorded size and sha256. Messages name the file of the model directory, nothing else."""
    if not path.is_file():
        raise ModelNotFoundError(f"model file {path.name} named in manifest.json does not exist")
    if expected_size is not None and path.stat().st_size != expected_size:
        raise IntegrityError(
            f"{path.name} does not have the size manifest.json records: the file is truncated or was replaced"
        )
    if file_sha256(path) != expected_sha256.lower():
        raise IntegrityError(
            f"{path.name} does not match the sha256 manifest.json records: the file was modified; "
            "restore it or re-export the model"
        )
