"""Assembling and writing manifest.json (schema in emotion_onnx.manifest)."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import json
from pathlib import Path
from typing import Any

from emotion_onnx.integrity import file_sha256
from emotion_onnx.manifest import MANIFEST_NAME, SCHEMA_VERSION


def file_ref(directory: Path, name: str) -> dict[str, Any]:
    path = directory / name
    return {"file": name, "sha256": file_sha256(path), "size": path.stat().st_size}


def tool_versions() -> dict[str, str | None]:
    versions = {}
    for dist in ("torch", "transformers", "optimum", "optimum-onnx", "onnxruntime", "onnx", "tokenizers"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    try:
        versions["emotion-onnx"] = md.version("emotion-onnx")
    except md.PackageNotFoundError:
        versions["emotion-onnx"] = None
    return versions


def build_manifest(
    *,
    directory: Path,
    architecture: str,
    labels: list[str],
    input_names: list[str],
    embedding_dim: int,
    tokenizer: dict[str, Any],
    variants: dict[str, dict[str, Any]],
    default_variant: str,
    source: dict[str, Any],
    export_info: dict[str, Any],
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "task": "text-classification",
        "architecture": architecture,
        "labels": labels,
        "inputs": input_names,
        "outputs": {"logits": "logits", "embedding": "embedding"},
        "embedding": {"name": "embedding", "dim": embedding_dim},
        "tokenizer": {**file_ref(directory, "tokenizer.json"), **tokenizer},
        "variants": variants,
        "default_variant": default_variant,
        "source": source,
        "versions": tool_versions(),
        "export": export_info,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    path = directory / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
