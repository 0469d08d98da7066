"""Loading a checkpoint (a local directory or a hub id) with clear errors for bad input."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotion_onnx.errors import first_line

from .architectures import ARCHITECTURES, Architecture, supported_list
from .errors import ExportInputError


@dataclass
class Checkpoint:
    model: Any  # transformers PreTrainedModel (sequence classification, eval mode)
    tokenizer: Any  # transformers PreTrainedTokenizerFast
    arch: Architecture
    labels: list[str]
    source: dict[str, Any]


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else is meant as a filesystem path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name)


def _content_hash(directory: Path) -> str:
    """sha256 over the weight and config files of a local checkpoint (names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix in {".json", ".safetensors", ".bin", ".txt", ".model"}:
            digest.update(path.name.encode())
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def load_checkpoint(name_or_path: str, revision: str | None = None) -> Checkpoint:
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    local = Path(name_or_path).expanduser()
    is_local = local.is_dir()
    if not is_local and (local.exists() or _looks_like_path(name_or_path)):
        raise ExportInputError(f"model path {name_or_path!r} does not exist or is not a directory")
    try:
        config = AutoConfig.from_pretrained(str(local) if is_local else name_or_path, revision=revision)
    except OSError as exc:
        raise ExportInputError(
            f"cannot load model {name_or_path!r}: not a local checkpoint directory and not reachable "
            f"on the Hugging Face Hub ({first_line(exc)})"
        ) from None
    except ValueError as exc:
        raise ExportInputError(f"cannot read the config of {name_or_path!r}: {exc}") from None
    arch = ARCHITECTURES.get(config.model_type)
    if arch is None:
        raise ExportInputError(
            f"architecture {config.model_type!r} of {name_or_path!r} is not supported; supported: {supported_list()}"
        )
    source = str(local) if is_local else name_or_path
    model, info = AutoModelForSequenceClassification.from_pretrained(
        source, revision=revision, output_loading_info=True
    )
    head_prefix = arch.head_linear.split(".")[0] + "."
    missing_head = [k for k in info.get("missing_keys", []) if k.startswith(head_prefix)]
    if missing_head:
        raise ExportInputError(
            f"{name_or_path!r} has no trained classification head (missing {', '.join(sorted(missing_head))}); "
            "export needs a *ForSequenceClassification checkpoint, not a bare encoder"
        )
    model.eval()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, use_fast=True)
    except (OSError, ValueError) as exc:
        raise ExportInputError(f"cannot load the tokenizer of {name_or_path!r}: {exc}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ExportInputError(f"{name_or_path!r} has no fast tokenizer (tokenizer.json); the runtime needs one")
    labels = [config.id2label[i] for i in range(config.num_labels)]
    info_source: dict[str, Any] = {"model": name_or_path, "model_type": config.model_type}
    if is_local:
        info_source["local_path"] = str(local.resolve())
        info_source["content_sha256"] = _content_hash(local)
    else:
        info_source["revision"] = revision or getattr(config, "_commit_hash", None)
    return Checkpoint(model, tokenizer, arch, labels, info_source)
