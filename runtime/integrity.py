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
    """Raise IntegrityError unless `path` has the recorded size and sha256."""
    if not path.is_file():
        raise ModelNotFoundError(f"model file {path} named in manifest.json does not exist")
    if expected_size is not None and path.stat().st_size != expected_size:
        raise IntegrityError(
            f"{path.name} is {path.stat().st_size} bytes but manifest.json records {expected_size}: "
            "the file is truncated or was replaced"
        )
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise IntegrityError(
            f"{path.name} has sha256 {actual[:16]}… but manifest.json records {expected_sha256[:16]}…: "
            "the file was modified; re-export the model or pass verify=False to skip the check"
        )
