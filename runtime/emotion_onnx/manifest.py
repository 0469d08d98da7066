"""manifest.json: the only contract between the export stage and the runtime.

This module owns it: the dataclasses that model it, `load()` (which validates), `write()`,
and the file name. The export stage builds a `Manifest` and writes it; model packaging and
the benchmarks edit one with `dataclasses.replace` and write it again; the runtime loads it
and never guesses at a model.

Schema version 2 adds the calibration object of each variant (temperature and an optional map
of the top-1 confidence) and each variant's engine. Version 3 (written) adds the optional
`neutral_label`: one of `labels` that is answered only when a caller asks for it (`neutral=True`),
so that by default the model answers over the other labels alone, and each variant's
`calibration_neutral`, the calibration of the answer with it. Version 1 and 2 manifests still
load: their temperature becomes a calibration without a map, and they have no neutral label.

Every file a manifest names is confined to the model directory: an absolute path, a `..`
component or a symlink that leads outside is refused before anything is opened.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ManifestError, ModelNotFoundError

# 4: a calibration may hold a temperature per text (temperature_features); a manifest that has
# none is written as version 3, which runtimes before it read too
SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
MANIFEST_NAME = "manifest.json"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # the inputs the runtime can build
ENGINES = ("onnxruntime", "openvino")
PRECISIONS = ("fp32", "int8", "bf16")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


# ---------------------------------------------------------------------------- dataclasses
@dataclass(frozen=True)
class FileRef:
    """A file of the model directory, by name, with its size and sha256 (lower-case hex)."""

    file: str
    sha256: str
    size: int

    @classmethod
    def of(cls, directory: Path, name: str) -> FileRef:
        from .integrity import file_sha256

        path = Path(directory) / name
        return cls(name, file_sha256(path), path.stat().st_size)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class TokenizerSpec:
    ref: FileRef
    max_length: int
    lowercase: bool
    pad_id: int
    special_tokens: dict[str, str]
    vocab_size: int | None = None  # None in version 1 manifests

    def to_dict(self) -> dict[str, Any]:
        out = {**self.ref.to_dict(), "max_length": self.max_length, "lowercase": self.lowercase, "pad_id": self.pad_id}
        if self.vocab_size is not None:
            out["vocab_size"] = self.vocab_size
        return {**out, "special_tokens": dict(self.special_tokens)}


# What a per-text temperature reads from a text's own logits (emotion_onnx.calibration), in order
TEMPERATURE_FEATURES = ("top_gap", "top", "logsumexp", "neutral", "neutral_minus_top")


@dataclass(frozen=True)
class TemperatureFeatures:
    """A temperature of each text's own: the calibration's temperature times exp(weights .
    features), the features (TEMPERATURE_FEATURES) read from the text's logits. A model whose
    confidence means different things on different kinds of text (tweets, Reddit comments) can so
    be calibrated on all of them at once; a positive temperature never changes the top label."""

    weights: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(TEMPERATURE_FEATURES), "weights": list(self.weights)}


@dataclass(frozen=True)
class ConfidenceMap:
    """A monotone map of the top-1 probability after the temperature, as knots of a
    piecewise-linear function (flat beyond the first and last knot)."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"x": list(self.x), "y": list(self.y)}


@dataclass(frozen=True)
class Calibration:
    """How a variant's logits become probabilities: softmax(logits / temperature) (a temperature
    per text when `features` is set), then, when `top1_map` is set, the top probability mapped
    through it (see emotion_onnx.calibration). `details` holds what the export measured (texts,
    ECE and NLL at each step, warnings)."""

    temperature: float = 1.0
    status: str = "uncalibrated"  # "calibrated" | "uncalibrated"
    top1_map: ConfidenceMap | None = None
    details: dict[str, Any] = field(default_factory=dict)
    features: TemperatureFeatures | None = None  # schema 4

    @property
    def calibrated(self) -> bool:
        return self.status == "calibrated"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"temperature": self.temperature, "status": self.status}
        if self.features is not None:
            out["temperature_features"] = self.features.to_dict()
        if self.top1_map is not None:
            out["top1_map"] = self.top1_map.to_dict()
        return {**out, **self.details}


@dataclass(frozen=True)
class Variant:
    name: str
    ref: FileRef  # the graph
    precision: str  # one of PRECISIONS
    optimized: bool  # graph already optimised offline: load without re-optimising
    batch_invariant: bool
    calibration: Calibration = field(default_factory=Calibration)  # the default answer's
    engine: str = "onnxruntime"
    neutral_calibration: Calibration | None = None  # the answer with the neutral label (its manifest has one)
    weights: FileRef | None = None  # a separate weights file (OpenVINO's .bin beside its .xml)
    validation: dict[str, Any] = field(default_factory=dict)  # the gate's figures
    quantization: dict[str, Any] | None = None
    graph: dict[str, Any] | None = None  # op counts and opset, informational
    batch_invariance: dict[str, Any] | None = None  # the measured drift, informational

    @property
    def files(self) -> list[FileRef]:
        """The variant's files: its graph, and its weights when they are a file of their own."""
        return [self.ref] + ([self.weights] if self.weights is not None else [])

    @property
    def size(self) -> int:
        """Bytes of the variant's files together."""
        return sum(ref.size for ref in self.files)

    @property
    def temperature(self) -> float:
        return self.calibration.temperature

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.ref.to_dict(),
            "precision": self.precision,
            "engine": self.engine,
            "optimized": self.optimized,
            "batch_invariant": self.batch_invariant,
            "calibration": self.calibration.to_dict(),
            "validation": self.validation,
        }
        if self.neutral_calibration is not None:
            out["calibration_neutral"] = self.neutral_calibration.to_dict()
        if self.weights is not None:
            out["weights"] = self.weights.to_dict()
        for key in ("quantization", "graph", "batch_invariance"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class Manifest:
    labels: list[str]  # one per logit, in the graph's order (the neutral label included)
    input_names: list[str]
    embedding_dim: int
    tokenizer: TokenizerSpec
    variants: dict[str, Variant]
    default_variant: str  # a variant every installation can run (onnxruntime)
    variant_order: list[str] = field(default_factory=list)  # the variants by measured speed, fastest first
    architecture: str = "unknown"
    logits_output: str = "logits"
    embedding_output: str = "embedding"
    name: str | None = None
    task: str = "text-classification"
    source: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    neutral_label: str | None = None  # answered only with neutral=True; None: the model has none
    directory: Path | None = None  # where it was loaded from; not written

    def answer_columns(self, neutral: bool = False) -> list[int]:
        """The logit columns an answer reads: every one with `neutral`, else all but the neutral
        label's. Asking for neutral from a model without it is a ValueError naming the problem."""
        if neutral and self.neutral_label is None:
            labels = ", ".join(self.labels)
            raise ValueError(f"neutral=True, but this model has no neutral output (its labels: {labels})")
        return [i for i, label in enumerate(self.labels) if neutral or label != self.neutral_label]

    def answer_labels(self, neutral: bool = False) -> list[str]:
        """The labels an answer ranks (see `answer_columns`)."""
        return [self.labels[i] for i in self.answer_columns(neutral)]

    def files(self) -> list[FileRef]:
        """Every file the manifest names: the tokenizer, each variant's graph and weights."""
        return [self.tokenizer.ref] + [ref for v in self.variants.values() for ref in v.files]

    def variant(self, name: str | None = None) -> Variant:
        name = name or self.default_variant
        if name not in self.variants:
            raise ManifestError(
                f"variant {name!r} is not in {MANIFEST_NAME}; available: {', '.join(sorted(self.variants))}"
            )
        return self.variants[name]

    def path(self, ref: FileRef) -> Path:
        """The file `ref` names, inside the model directory (never outside it)."""
        if self.directory is None:
            raise ManifestError("this manifest was not loaded from a directory")
        return confined(self.directory, ref.file)

    def only(self, variant: str | None = None, **changes: Any) -> Manifest:
        """A copy that lists one variant (the default), for a model directory that ships one."""
        chosen = self.variant(variant)
        return replace(
            self, variants={chosen.name: chosen}, default_variant=chosen.name, variant_order=[chosen.name], **changes
        )

    @property
    def schema_version(self) -> int:
        """The lowest version that holds everything this manifest says."""
        calibrations = [c for v in self.variants.values() for c in (v.calibration, v.neutral_calibration) if c]
        return SCHEMA_VERSION if any(c.features is not None for c in calibrations) else 3

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": self.schema_version}
        if self.name is not None:
            out["name"] = self.name
        out.update(
            {
                "task": self.task,
                "architecture": self.architecture,
                "labels": list(self.labels),
                **({"neutral_label": self.neutral_label} if self.neutral_label is not None else {}),
                "inputs": list(self.input_names),
                "outputs": {"logits": self.logits_output, "embedding": self.embedding_output},
                "embedding_dim": self.embedding_dim,
                "tokenizer": self.tokenizer.to_dict(),
                "variants": {name: v.to_dict() for name, v in self.variants.items()},
                "default_variant": self.default_variant,
                "variant_order": list(self.variant_order),
                "source": self.source,
                "versions": self.versions,
                "export": self.export,
            }
        )
        if self.created is not None:
            out["created"] = self.created
        return out


# ---------------------------------------------------------------------------- files
def confined(directory: Path, name: str) -> Path:
    """`directory / name`, refused unless it stays inside `directory` once symlinks are
    resolved: no absolute path, no `..`, no link that leads out."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ManifestError(f"{MANIFEST_NAME} names an invalid file {name!r}")
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts or rel.drive:
        raise ManifestError(f"{MANIFEST_NAME} names {name!r}, which is outside the model directory")
    root = Path(directory).resolve()
    path = root / rel
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise ManifestError(f"{MANIFEST_NAME} names {name!r}, a link that leads outside the model directory")
    return path


def is_model_dir(path: str | Path) -> bool:
    return (Path(path) / MANIFEST_NAME).is_file()


# ---------------------------------------------------------------------------- reading
class _Reader:
    """Typed access to the JSON object, with errors that name the key."""

    def __init__(self, obj: Any, where: str):
        if not isinstance(obj, dict):
            raise ManifestError(f"{MANIFEST_NAME}: {where or 'the top level'} must be a JSON object")
        self.obj, self.where = obj, where

    def need(self, key: str, kind: type | tuple[type, ...]):
        if key not in self.obj:
            raise ManifestError(f"{MANIFEST_NAME}: missing key {self.where}{key!r}")
        return self._typed(key, kind)

    def get(self, key: str, kind: type | tuple[type, ...], default=None):
        return self._typed(key, kind) if self.obj.get(key) is not None else default

    def _typed(self, key: str, kind):
        value = self.obj[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            raise ManifestError(f"{MANIFEST_NAME}: {self.where}{key!r} has the wrong type ({type(value).__name__})")
        return value

    def sub(self, key: str) -> _Reader:
        return _Reader(self.need(key, dict), f"{self.where}{key}.")


def _file_ref(r: _Reader) -> FileRef:
    sha = r.need("sha256", str)
    if not _SHA256.match(sha):
        raise ManifestError(f"{MANIFEST_NAME}: {r.where}'sha256' is not 64 hexadecimal digits")
    size = r.need("size", int)
    if size < 0:
        raise ManifestError(f"{MANIFEST_NAME}: {r.where}'size' is negative")
    return FileRef(r.need("file", str), sha.lower(), size)


def _number(value: Any, what: str, above: float | None = None) -> float:
    """A finite JSON number (not a bool), optionally strictly above a bound."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ManifestError(f"{MANIFEST_NAME}: {what} must be a finite number, got {value!r}")
    if above is not None and not value > above:
        raise ManifestError(f"{MANIFEST_NAME}: {what} must be above {above:g}, got {value!r}")
    return float(value)


def _confidence_map(obj: Any, where: str) -> ConfidenceMap:
    r = _Reader(obj, where)
    xs = tuple(_number(v, f"{where}x") for v in r.need("x", list))
    ys = tuple(_number(v, f"{where}y") for v in r.need("y", list))
    if len(xs) != len(ys) or len(xs) < 2:
        raise ManifestError(f"{MANIFEST_NAME}: {where}x and y must have the same length, at least 2")
    if any(b < a for a, b in zip(xs, xs[1:])) or any(b < a for a, b in zip(ys, ys[1:])):
        raise ManifestError(f"{MANIFEST_NAME}: {where[:-1]} must be monotone (x and y non-decreasing)")
    if not all(0.0 <= v <= 1.0 for v in xs + ys):
        raise ManifestError(f"{MANIFEST_NAME}: {where[:-1]} knots must lie in [0, 1]")
    return ConfidenceMap(xs, ys)


def _calibration(v: _Reader, version: int, where: str, key: str = "calibration") -> Calibration:
    if version == 1:  # temperature and a flag beside the figures
        details = dict(v.get("calibration", dict, {}))
        for key in ("temperature", "calibrated", "status"):
            details.pop(key, None)
        t = _number(v.obj.get("temperature"), f"{where}temperature", above=0.0)
        status = "calibrated" if v.need("calibrated", bool) else "uncalibrated"
        return Calibration(t, status, None, details)
    c = v.sub(key)
    t = _number(c.obj.get("temperature"), f"{c.where}temperature", above=0.0)
    status = c.need("status", str)
    if status not in ("calibrated", "uncalibrated"):
        raise ManifestError(f"{MANIFEST_NAME}: {c.where}status must be 'calibrated' or 'uncalibrated'")
    top1 = c.obj.get("top1_map")
    top1_map = _confidence_map(top1, f"{c.where}top1_map.") if top1 is not None else None
    raw = c.obj.get("temperature_features") if version >= 4 else None
    features = _temperature_features(raw, f"{c.where}temperature_features.") if raw is not None else None
    own = ("temperature", "status", "top1_map", "temperature_features")
    details = {k: val for k, val in c.obj.items() if k not in own}
    return Calibration(t, status, top1_map, details, features)


def _temperature_features(obj: Any, where: str) -> TemperatureFeatures:
    if not isinstance(obj, dict) or tuple(obj.get("features", ())) != TEMPERATURE_FEATURES:
        raise ManifestError(
            f"{MANIFEST_NAME}: {where[:-1]} must name the features {', '.join(TEMPERATURE_FEATURES)} "
            "(a newer export? upgrade emotion-onnx)"
        )
    weights = obj.get("weights")
    if not isinstance(weights, list) or len(weights) != len(TEMPERATURE_FEATURES):
        raise ManifestError(f"{MANIFEST_NAME}: {where}weights must be {len(TEMPERATURE_FEATURES)} numbers")
    return TemperatureFeatures(tuple(_number(w, f"{where}weights") for w in weights))


def _variant(name: str, obj: Any, version: int) -> Variant:
    v = _Reader(obj, f"variants.{name}.")
    precision = v.need("precision", str)
    if precision not in PRECISIONS:
        raise ManifestError(f"{MANIFEST_NAME}: {v.where}precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    engine = v.get("engine", str, "onnxruntime")
    if engine not in ENGINES:
        raise ManifestError(f"{MANIFEST_NAME}: {v.where}engine {engine!r} is not one this runtime runs "
                            f"({', '.join(ENGINES)})")  # fmt: skip
    return Variant(
        name=name,
        ref=_file_ref(v),
        precision=precision,
        optimized=v.need("optimized", bool),
        batch_invariant=v.need("batch_invariant", bool),
        calibration=_calibration(v, version, v.where),
        neutral_calibration=_calibration(v, version, v.where, "calibration_neutral")
        if version >= 3 and v.obj.get("calibration_neutral") is not None
        else None,
        engine=engine,
        weights=_file_ref(v.sub("weights")) if v.obj.get("weights") is not None else None,
        validation=v.get("validation", dict, {}),
        quantization=v.get("quantization", dict),
        graph=v.get("graph", dict),
        batch_invariance=v.get("batch_invariance", dict),
    )


def parse(data: Any, directory: Path | None = None) -> Manifest:
    """Validate a manifest's JSON object and build the dataclasses; ManifestError names any problem."""
    r = _Reader(data, "")
    version = r.need("schema_version", int)
    if version not in READABLE_VERSIONS:
        raise ManifestError(
            f"{MANIFEST_NAME} has schema_version {version}; this runtime reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}. Re-export the model with a matching emotion-onnx."
        )
    labels = r.need("labels", list)
    if len(labels) < 2 or not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
        raise ManifestError(f"{MANIFEST_NAME}: 'labels' must be a list of at least 2 distinct, non-empty strings")
    neutral = r.get("neutral_label", str) if version >= 3 else None
    if neutral is not None and (neutral not in labels or len(labels) < 3):
        raise ManifestError(
            f"{MANIFEST_NAME}: neutral_label {neutral!r} must be one of 'labels', with at least 2 labels beside it"
        )
    inputs = r.need("inputs", list)
    if "input_ids" not in inputs or "attention_mask" not in inputs:
        raise ManifestError(f"{MANIFEST_NAME}: 'inputs' must include input_ids and attention_mask")
    unknown = [str(name) for name in inputs if name not in MODEL_INPUTS]
    if unknown or len(set(inputs)) != len(inputs):
        raise ManifestError(
            f"{MANIFEST_NAME}: unsupported or repeated input(s) {', '.join(unknown) or 'listed twice'}; "
            f"this runtime feeds {', '.join(MODEL_INPUTS)}"
        )
    outputs = r.sub("outputs")
    if version == 1:
        emb = r.sub("embedding")
        embedding_output, embedding_dim = emb.need("name", str), emb.need("dim", int)
    else:
        embedding_output, embedding_dim = outputs.need("embedding", str), r.need("embedding_dim", int)
    if embedding_dim < 1:
        raise ManifestError(f"{MANIFEST_NAME}: the embedding dimension must be positive")
    tok = r.sub("tokenizer")
    tokenizer = TokenizerSpec(
        ref=_file_ref(tok),
        max_length=tok.need("max_length", int),
        lowercase=tok.need("lowercase", bool),
        pad_id=tok.need("pad_id", int),
        special_tokens=tok.need("special_tokens", dict),
        vocab_size=tok.get("vocab_size", int),
    )
    if not 8 <= tokenizer.max_length <= 512:
        raise ManifestError(f"{MANIFEST_NAME}: tokenizer.max_length {tokenizer.max_length} is outside 8..512")
    if tokenizer.pad_id < 0 or (tokenizer.vocab_size is not None and not tokenizer.pad_id < tokenizer.vocab_size):
        raise ManifestError(f"{MANIFEST_NAME}: tokenizer.pad_id {tokenizer.pad_id} is outside the vocabulary")
    variants = {name: _variant(name, v, version) for name, v in r.need("variants", dict).items()}
    if not variants:
        raise ManifestError(f"{MANIFEST_NAME}: no variants")
    default = r.need("default_variant", str)
    if default not in variants:
        raise ManifestError(f"{MANIFEST_NAME}: default_variant {default!r} is not among the variants")
    order = r.get("variant_order", list, [default])
    stray = [str(n) for n in order if n not in variants]
    if stray:
        raise ManifestError(
            f"{MANIFEST_NAME}: variant_order names {', '.join(stray)}, which are not among the variants"
        )
    return Manifest(
        labels=list(labels),
        input_names=list(inputs),
        embedding_dim=embedding_dim,
        tokenizer=tokenizer,
        variants=variants,
        default_variant=default,
        variant_order=list(order),
        architecture=r.get("architecture", str, "unknown"),
        logits_output=outputs.need("logits", str),
        embedding_output=embedding_output,
        name=r.get("name", str),
        task=r.get("task", str, "text-classification"),
        source=r.get("source", dict, {}),
        versions=r.get("versions", dict, {}),
        export=r.get("export", dict, {}),
        created=r.get("created", str),
        neutral_label=neutral,
        directory=Path(directory) if directory is not None else None,
    )


def load(directory: str | Path) -> Manifest:
    """Read and validate `directory/manifest.json`."""
    directory = Path(directory)
    if not directory.exists():
        raise ModelNotFoundError(f"model directory {directory} does not exist")
    if not directory.is_dir():
        raise ModelNotFoundError(f"{directory} is a file, not a model directory")
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise ModelNotFoundError(
            f"{directory} has no {MANIFEST_NAME}: it is not a model directory written by `emotion-onnx export`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ManifestError(f"{path} is nested too deeply to be a manifest") from None
    return parse(data, directory)


def write(manifest: Manifest, directory: str | Path) -> Path:
    """Write `directory/manifest.json` (validated by parsing it back first)."""
    data = manifest.to_dict()
    parse(json.loads(json.dumps(data)), directory)
    path = Path(directory) / MANIFEST_NAME
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


# the names the package has exported since its first release
load_manifest = load
