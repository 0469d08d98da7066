"""The runtime's tokenizer.json, built from the checkpoint's fast tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .checkpoint import Checkpoint

MAX_LENGTH_CAP = 512


def _lowercases(normalizer: Any) -> bool:
    if isinstance(normalizer, dict):
        if normalizer.get("type") == "Lowercase" or normalizer.get("lowercase") is True:
            return True
        return any(_lowercases(v) for v in normalizer.values())
    if isinstance(normalizer, list):
        return any(_lowercases(v) for v in normalizer)
    return False


def effective_max_length(ckpt: Checkpoint) -> int:
    limits = [MAX_LENGTH_CAP]
    model_max = getattr(ckpt.tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 100_000:
        limits.append(model_max)
    positions = getattr(ckpt.model.config, "max_position_embeddings", None)
    if positions:
        limits.append(positions - ckpt.arch.position_offset)
    return min(limits)


def write_tokenizer(ckpt: Checkpoint, path: Path) -> dict[str, Any]:
    """Save tokenizer.json with padding and truncation off (the runtime pads per batch and
    truncates at max_length itself); return the manifest's tokenizer fields."""
    backend = ckpt.tokenizer.backend_tokenizer.__class__.from_str(ckpt.tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    backend.save(str(path))
    spec = json.loads(path.read_text(encoding="utf-8"))
    tok = ckpt.tokenizer
    special = {k: v for k, v in tok.special_tokens_map.items() if isinstance(v, str)}
    return {
        "max_length": effective_max_length(ckpt),
        "lowercase": _lowercases(spec.get("normalizer")),
        "pad_id": int(tok.pad_token_id),
        "vocab_size": backend.get_vocab_size(with_added_tokens=True),
        "special_tokens": special,
    }
