"""The export stage end to end, written atomically: temp directory, then one rename."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from emotion_onnx import manifest as manifest_io
from emotion_onnx.manifest import FileRef, Manifest, TokenizerSpec, Variant

from .calibration import fit_calibration
from .checkpoint import Checkpoint, load_checkpoint
from .data import LabelledTexts, emotion_split, label_ids, read_labelled
from .errors import ExportInputError
from .fusion import fuse, op_counts, ort_optimize
from .gate import GateResult, GateThresholds, batch_invariance, compare
from .onnx_graph import OPSET, export_onnx, head_linear
from .per_token_int8 import PerTokenSettings, activation_ranges, quantize_per_token
from .quantization import QuantizationSettings, quantize
from .reference import reference_logits
from .tokenizer_files import write_tokenizer

RAW, FUSED, INT8, INT8_PER_TENSOR = "fp32", "fp32-fused", "int8", "int8-per-tensor"
FILES = {
    RAW: "model.onnx",
    FUSED: "model_fused.onnx",
    INT8: "model_int8.onnx",
    INT8_PER_TENSOR: "model_int8_per_tensor.onnx",
}
PRECISION = {RAW: "fp32", FUSED: "fp32", INT8: "int8", INT8_PER_TENSOR: "int8"}
PARENT = {FUSED: RAW, INT8: FUSED, INT8_PER_TENSOR: FUSED}  # built from a graph that failed: fails too
BATCH_INVARIANCE_TEXTS = 64
BATCH_INVARIANCE_TOLERANCE = 1e-6
STEPS = ("load checkpoint", "export ONNX (optimum)", "fuse graph", "quantise int8", "pytorch reference",
         "validation gate", "write model directory")  # fmt: skip
VERSIONED = ("torch", "transformers", "optimum", "optimum-onnx", "onnxruntime", "onnx", "tokenizers", "emotion-onnx")


@dataclass
class ExportConfig:
    model: str
    out: Path
    force: bool = False
    revision: str | None = None
    validation_file: Path | None = None  # gate texts; default: the emotion validation split
    calibration_file: Path | None = None  # labelled texts for the calibration; default: the validation file
    text_field: str = "text"
    label_field: str = "label"
    limit: int | None = None  # use only the first N gate/calibration texts
    opset: int = OPSET
    quantization: QuantizationSettings = field(default_factory=QuantizationSettings)
    per_tensor_int8: bool = False  # opt-in: also write onnxruntime's per-tensor dynamic int8 (batch-dependent)
    smooth_alpha: float | None = None  # SmoothQuant strength for the per-token int8 variant
    gelu_approximation: bool = False
    thresholds: GateThresholds = field(default_factory=GateThresholds)
    name: str | None = None  # the model's name, recorded in the manifest


@dataclass
class ExportResult:
    out: Path | None
    manifest: Manifest | None
    gate: list[GateResult]
    seconds: dict[str, float]

    @property
    def failures(self) -> list[GateResult]:
        return [g for g in self.gate if not g.passed]


class _Steps:
    """The export's steps as a tqdm bar on a TTY (silent otherwise), timing each step."""

    def __init__(self):
        from tqdm import tqdm

        self.bar = tqdm(total=len(STEPS), desc="export", unit="step", disable=not sys.stderr.isatty(), leave=False)
        self.seconds: dict[str, float] = {}
        self._name, self._t0 = None, 0.0

    def start(self, name: str) -> None:
        self.stop()
        self._name, self._t0 = name, time.perf_counter()
        self.bar.set_description(name)

    def stop(self) -> None:
        if self._name:
            self.seconds[self._name] = round(time.perf_counter() - self._t0, 3)
            self._name = None
            self.bar.update(1)

    def close(self) -> None:
        self.stop()
        self.bar.close()


def tool_versions() -> dict[str, str | None]:
    versions = {}
    for dist in VERSIONED:
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return versions


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ExportInputError(f"output path {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportInputError(f"output directory {out} is not empty; pass --force to replace it")


def _load_texts(path: Path, config: ExportConfig) -> LabelledTexts:
    return read_labelled(path, config.text_field, config.label_field).head(config.limit)


def _replace_dir(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run_export(config: ExportConfig) -> ExportResult:
    out = Path(config.out)
    _check_out(out, config.force)
    validation = _load_texts(config.validation_file or emotion_split("validation"), config)
    calibration = _load_texts(config.calibration_file, config) if config.calibration_file else validation
    steps = _Steps()
    steps.start("load checkpoint")
    ckpt: Checkpoint = load_checkpoint(config.model, config.revision)

    def ids(data: LabelledTexts):
        return np.array(label_ids(data.labels, ckpt.labels, data.source)) if data.labels is not None else None

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        return _export_into(tmp, out, config, ckpt, validation, ids(validation), calibration, ids(calibration), steps)
    finally:
        steps.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _export_into(tmp, out, config, ckpt, validation, val_labels, calibration, cal_labels, steps) -> ExportResult:
    from emotion_onnx.classifier import EmotionClassifier

    mconf = ckpt.model.config
    heads = getattr(mconf, "n_heads", None) or mconf.num_attention_heads
    hidden = getattr(mconf, "dim", None) or mconf.hidden_size
    steps.start("export ONNX (optimum)")
    input_names = export_onnx(ckpt, tmp / FILES[RAW], opset=config.opset)
    tok = write_tokenizer(ckpt, tmp / "tokenizer.json")
    steps.start("fuse graph")
    fused_raw = tmp / "fused.tmp.onnx"
    fuse(tmp / FILES[RAW], fused_raw, heads, hidden, config.gelu_approximation)
    ort_optimize(fused_raw, tmp / FILES[FUSED])
    steps.start("quantise int8")
    names = [RAW, FUSED, INT8] + ([INT8_PER_TENSOR] if config.per_tensor_int8 else [])
    per_token = PerTokenSettings(
        reduce_range=config.quantization.resolved_reduce_range(), smooth_alpha=config.smooth_alpha
    )
    if config.smooth_alpha is not None:
        from emotion_onnx.tokenization import TextEncoder

        encoder = TextEncoder.from_file(tmp / "tokenizer.json", tok["max_length"], tok["pad_id"], input_names)
        per_token.activation_ranges = activation_ranges(fused_raw, encoder, calibration.texts)
    int8_raw = tmp / "int8.tmp.onnx"
    quantize_per_token(fused_raw, int8_raw, per_token)
    ort_optimize(int8_raw, tmp / FILES[INT8])
    if config.per_tensor_int8:
        quantize(fused_raw, int8_raw, config.quantization)
        ort_optimize(int8_raw, tmp / FILES[INT8_PER_TENSOR])
    fused_raw.unlink()
    int8_raw.unlink()

    steps.start("pytorch reference")
    ref_val = reference_logits(ckpt, validation.texts, tok["max_length"])
    ref_cal = ref_val if calibration is validation else reference_logits(ckpt, calibration.texts, tok["max_length"])

    quantization = {
        INT8: {**per_token.to_manifest(), "target": config.quantization.target},
        INT8_PER_TENSOR: config.quantization.to_manifest(),
    }
    variants = {
        name: Variant(
            name=name,
            ref=FileRef.of(tmp, FILES[name]),
            precision=PRECISION[name],
            optimized=name != RAW,
            batch_invariant=False,  # measured by the gate below
            quantization=quantization.get(name),
            graph={"op_counts": op_counts(tmp / FILES[name]), "opset": config.opset, "fused": name != RAW},
        )
        for name in names
    }
    manifest = Manifest(
        name=config.name,
        architecture=ckpt.arch.model_type,
        labels=ckpt.labels,
        input_names=input_names,
        embedding_dim=int(head_linear(ckpt.model, ckpt.arch.head_linear).in_features),
        tokenizer=TokenizerSpec(
            ref=FileRef.of(tmp, "tokenizer.json"),
            max_length=tok["max_length"],
            lowercase=tok["lowercase"],
            pad_id=tok["pad_id"],
            special_tokens=tok["special_tokens"],
            vocab_size=tok["vocab_size"],
        ),
        variants=variants,
        default_variant=RAW,
        source=dict(ckpt.source),
        versions=tool_versions(),
    )
    manifest_io.write(manifest, tmp)  # the gate loads each variant through the runtime itself

    steps.start("validation gate")
    ref_temperature = fit_calibration(ref_cal, cal_labels, calibration.source).temperature
    gate: list[GateResult] = []
    for name in names:
        clf = EmotionClassifier(tmp, variant=name)
        drift = batch_invariance(clf, validation.texts[:BATCH_INVARIANCE_TEXTS])
        logits = clf.forward(validation.texts)[0]
        result = compare(name, PRECISION[name], logits, ref_val, val_labels, config.thresholds)
        if name == INT8:  # the default int8 promises batch invariance and a small file
            ratio = variants[INT8].ref.size / variants[RAW].ref.size
            result.figures["size_ratio_vs_fp32"] = ratio
            problems = [result.reason] if result.reason else []
            if drift > BATCH_INVARIANCE_TOLERANCE:
                problems.append(f"not batch-invariant (drift {drift:.2g} > {BATCH_INVARIANCE_TOLERANCE:g})")
            if ratio > config.thresholds.int8_max_size_ratio:
                problems.append(f"file is {ratio:.0%} of fp32 > {config.thresholds.int8_max_size_ratio:.0%}")
            result.passed, result.reason = not problems, "; ".join(problems)
        parent = PARENT.get(name)
        if parent and result.passed and not next(g for g in gate if g.variant == parent).passed:
            result.passed, result.reason = False, f"built from {parent}, which failed the gate"
        result.figures["gate_texts"] = validation.source
        gate.append(result)
        cal_logits = logits if calibration is validation else clf.forward(calibration.texts)[0]
        cal = fit_calibration(cal_logits, cal_labels, calibration.source)
        cal = replace(cal, details={**cal.details, "reference_temperature": ref_temperature})
        variants[name] = replace(
            variants[name],
            batch_invariant=drift <= BATCH_INVARIANCE_TOLERANCE,
            batch_invariance={
                "max_abs_logit_diff_alone_vs_padded_batch": drift,
                "n_texts": min(BATCH_INVARIANCE_TEXTS, len(validation.texts)),
                "tolerance": BATCH_INVARIANCE_TOLERANCE,
            },
            validation=result.figures,
            calibration=cal,
        )
        del clf

    steps.start("write model directory")
    passed = {g.variant for g in gate if g.passed}
    for name in names:
        if name not in passed:
            (tmp / FILES[name]).unlink()
    steps.stop()
    if not passed:
        return ExportResult(None, None, gate, steps.seconds)
    final = replace(
        manifest,
        variants={name: v for name, v in variants.items() if name in passed},
        default_variant=next(n for n in (INT8, FUSED, RAW) if n in passed),
        export={
            "seconds": steps.seconds,
            "gate_failures": {g.variant: g.reason for g in gate if not g.passed},
            "thresholds": vars(config.thresholds),
            "gelu_approximation": config.gelu_approximation,
        },
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    manifest_io.write(final, tmp)
    _replace_dir(tmp, out)
    return ExportResult(out, replace(final, directory=out), gate, steps.seconds)
