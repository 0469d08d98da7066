"""manifest.json: the only contract between the export stage and the runtime.

The export stage writes it; the runtime reads it and never guesses at a model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ManifestError, ModelNotFoundError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # the inputs the runtime can build


@dataclass(frozen=True)
class FileRef:
    file: str
    sha256: str
    size: int


@dataclass(frozen=True)
class TokenizerSpec:
    ref: FileRef
    max_length: int
    lowercase: bool
    pad_id: int
    special_tokens: dict[str, str]


@dataclass(frozen=True)
class Variant:
    name: str
    ref: FileRef
    precision: str  # "fp32" | "int8"
    optimized: bool  # graph already optimised offline: load without re-optimising
    temperature: float
    calibrated: bool
    batch_invariant: bool
    validation: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] | None = None


@dataclass(frozen=True)
class Manifest:
    directory: Path
    labels: list[str]
    input_names: list[str]
    logits_output: str
    embedding_output: str
    embedding_dim: int
    tokenizer: TokenizerSpec
    variants: dict[str, Variant]
    default_variant: str
    architecture: str
    source: dict[str, Any]
    versions: dict[str, Any]
    raw: dict[str, Any]

    def variant(self, name: str | None) -> Variant:
        name = name or self.default_variant
        if name not in self.variants:
            raise ManifestError(
                f"variant {name!r} is not in {self.directory / MANIFEST_NAME}; "
                f"available: {', '.join(sorted(self.variants))}"
            )
        return self.variants[name]


def _need(obj: dict, key: str, kind: type | tuple[type, ...], where: str):
    if key not in obj:
        raise ManifestError(f"manifest.json: missing key {where}{key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ManifestError(f"manifest.json: {where}{key!r} has the wrong type ({type(value).__name__})")
    return value


def _file_ref(obj: dict, where: str) -> FileRef:
    return FileRef(
        file=_need(obj, "file", str, where),
        sha256=_need(obj, "sha256", str, where),
        size=_need(obj, "size", int, where),
    )


def parse_manifest(data: dict[str, Any], directory: Path) -> Manifest:
    if not isinstance(data, dict):
        raise ManifestError("manifest.json: the top level must be a JSON object")
    version = _need(data, "schema_version", int, "")
    if version != SCHEMA_VERSION:
        raise ManifestError(
            f"manifest.json has schema_version {version}; this runtime reads version {SCHEMA_VERSION}. "
            "Re-export the model with a matching emotion-onnx."
        )
    labels = _need(data, "labels", list, "")
    if len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise ManifestError("manifest.json: 'labels' must be a list of at least 2 strings")
    inputs = _need(data, "inputs", list, "")
    if "input_ids" not in inputs or "attention_mask" not in inputs:
        raise ManifestError("manifest.json: 'inputs' must include input_ids and attention_mask")
    unknown = [name for name in inputs if name not in MODEL_INPUTS]
    if unknown:
        raise ManifestError(
            f"manifest.json: unsupported input(s) {', '.join(map(str, unknown))}; this runtime feeds "
            f"{', '.join(MODEL_INPUTS)}"
        )
    outputs = _need(data, "outputs", dict, "")
    emb = _need(data, "embedding", dict, "")
    tok = _need(data, "tokenizer", dict, "")
    tokenizer = TokenizerSpec(
        ref=_file_ref(tok, "tokenizer."),
        max_length=_need(tok, "max_length", int, "tokenizer."),
        lowercase=_need(tok, "lowercase", bool, "tokenizer."),
        pad_id=_need(tok, "pad_id", int, "tokenizer."),
        special_tokens=_need(tok, "special_tokens", dict, "tokenizer."),
    )
    if not 8 <= tokenizer.max_length <= 512:
        raise ManifestError(f"manifest.json: tokenizer.max_length {tokenizer.max_length} is outside 8..512")
    variants: dict[str, Variant] = {}
    for name, v in _need(data, "variants", dict, "").items():
        where = f"variants.{name}."
        variants[name] = Variant(
            name=name,
            ref=_file_ref(v, where),
            precision=_need(v, "precision", str, where),
            optimized=_need(v, "optimized", bool, where),
            temperature=float(_need(v, "temperature", (int, float), where)),
            calibrated=_need(v, "calibrated", bool, where),
            batch_invariant=_need(v, "batch_invariant", bool, where),
            validation=v.get("validation", {}),
            quantization=v.get("quantization"),
        )
        if variants[name].temperature <= 0:
            raise ManifestError(f"manifest.json: {where}temperature must be positive")
    if not variants:
        raise ManifestError("manifest.json: no variants")
    default = _need(data, "default_variant", str, "")
    if default not in variants:
        raise ManifestError(f"manifest.json: default_variant {default!r} is not among the variants")
    return Manifest(
        directory=directory,
        labels=list(labels),
        input_names=list(inputs),
        logits_output=_need(outputs, "logits", str, "outputs."),
        embedding_output=_need(emb, "name", str, "embedding."),
        embedding_dim=_need(emb, "dim", int, "embedding."),
        tokenizer=tokenizer,
        variants=variants,
        default_variant=default,
        architecture=data.get("architecture", "unknown"),
        source=data.get("source", {}),
        versions=data.get("versions", {}),
        raw=data,
    )


def load_manifest(directory: str | Path) -> Manifest:
    directory = Path(directory)
    if not directory.exists():
        raise ModelNotFoundError(f"model directory {directory} does not exist")
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise ModelNotFoundError(
            f"{directory} has no {MANIFEST_NAME}: it is not a model directory written by `emotion-onnx export`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from None
    return parse_manifest(data, directory)
