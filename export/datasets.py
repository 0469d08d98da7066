"""Where the emotion dataset lives: $EMOTION_DATA_DIR, else ../shared/data/emotion beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def emotion_data_dir() -> Path | None:
    env = os.environ.get("EMOTION_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd().parent / "shared" / "data" / "emotion", _REPO.parent / "shared" / "data" / "emotion"]
    for candidate in candidates:
        if (candidate / "validation.jsonl").is_file():
            return candidate
    return None


def default_validation_file() -> Path | None:
    directory = emotion_data_dir()
    return directory / "validation.jsonl" if directory else None
