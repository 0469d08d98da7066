"""The export stage end to end, written atomically: temp directory, then one rename."""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emotion_onnx.calibration import ece, fit_temperature, nll, softmax

from .checkpoint import Checkpoint, load_checkpoint
from .datasets import default_validation_file
from .errors import ExportInputError
from .fusion import fuse, op_counts, ort_optimize
from .gate import GateResult, GateThresholds, batch_invariance, compare
from .manifest_writer import build_manifest, file_ref, write_manifest
from .onnx_graph import OPSET, export_onnx, head_linear
from .per_token_int8 import PerTokenSettings, activation_ranges, quantize_per_token
from .quantization import QuantizationSettings, quantize
from .reference import reference_logits
from .textdata import LabelledTexts, label_ids, read_labelled
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


@dataclass
class ExportConfig:
    model: str
    out: Path
    force: bool = False
    revision: str | None = None
    validation_file: Path | None = None  # gate texts; default: the emotion validation split
    calibration_file: Path | None = None  # labelled texts for T; default: the validation file
    text_field: str = "text"
    label_field: str = "label"
    limit: int | None = None  # use only the first N gate/calibration texts
    opset: int = OPSET
    quantization: QuantizationSettings = field(default_factory=QuantizationSettings)
    per_tensor_int8: bool = False  # opt-in: also write onnxruntime's per-tensor dynamic int8 (batch-dependent)
    smooth_alpha: float | None = None  # SmoothQuant strength for the per-token int8 variant
    gelu_approximation: bool = False
    thresholds: GateThresholds = field(default_factory=GateThresholds)


@dataclass
class ExportResult:
    out: Path | None
    manifest: dict[str, Any] | None
    gate: list[GateResult]
    seconds: dict[str, float]

    @property
    def failures(self) -> list[GateResult]:
        return [g for g in self.gate if not g.passed]


class _Steps:
    """Progress lines on a TTY, silence otherwise; always records per-step seconds."""

    def __init__(self, total: int):
        self.total, self.n, self.seconds = total, 0, {}
        self._name, self._t0 = None, 0.0
        self.tty = sys.stderr.isatty()

    def start(self, name: str):
        self.stop()
        self.n += 1
        self._name, self._t0 = name, time.perf_counter()
        if self.tty:
            print(f"[{self.n}/{self.total}] {name} …", file=sys.stderr, flush=True)

    def stop(self):
        if self._name:
            self.seconds[self._name] = round(time.perf_counter() - self._t0, 3)
            self._name = None


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ExportInputError(f"output path {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportInputError(f"output directory {out} is not empty; pass --force to replace it")


def _load_texts(path: Path | None, config: ExportConfig, what: str) -> LabelledTexts:
    if path is None:
        raise ExportInputError(
            f"no {what} texts: pass --validation FILE (JSONL or CSV with a {config.text_field!r} field); "
            "the default is the emotion validation split, which was not found (set EMOTION_DATA_DIR)"
        )
    data = read_labelled(path, config.text_field, config.label_field)
    if config.limit:
        data.texts = data.texts[: config.limit]
        data.labels = data.labels[: config.limit] if data.labels is not None else None
    return data


def _calibration(logits: np.ndarray, labels: np.ndarray | None) -> dict[str, Any]:
    if labels is None:
        return {"temperature": 1.0, "calibrated": False, "status": "uncalibrated"}
    t = fit_temperature(logits, labels)
    return {
        "temperature": t,
        "calibrated": True,
        "status": "calibrated",
        "n_texts": int(len(labels)),
        "nll_before": nll(logits, labels),
        "nll_after": nll(logits, labels, t),
        "ece_before": ece(softmax(logits), labels),
        "ece_after": ece(softmax(logits, t), labels),
        "ece_bins": 15,
    }


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
    validation = _load_texts(config.validation_file or default_validation_file(), config, "validation")
    calibration = _load_texts(config.calibration_file, config, "calibration") if config.calibration_file else validation
    steps = _Steps(total=7)
    steps.start("load checkpoint")
    ckpt: Checkpoint = load_checkpoint(config.model, config.revision)
    val_labels = (
        np.array(label_ids(validation.labels, ckpt.labels, validation.source))
        if validation.labels is not None
        else None
    )
    cal_labels = (
        np.array(label_ids(calibration.labels, ckpt.labels, calibration.source))
        if calibration.labels is not None
        else None
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        return _export_into(tmp, out, config, ckpt, validation, val_labels, calibration, cal_labels, steps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _export_into(tmp, out, config, ckpt, validation, val_labels, calibration, cal_labels, steps) -> ExportResult:
    from emotion_onnx.classifier import EmotionClassifier

    mconf = ckpt.model.config
    heads = getattr(mconf, "n_heads", None) or mconf.num_attention_heads
    hidden = getattr(mconf, "dim", None) or mconf.hidden_size
    steps.start("export ONNX (optimum)")
    input_names = export_onnx(ckpt, tmp / FILES[RAW], opset=config.opset)
    tokenizer_fields = write_tokenizer(ckpt, tmp / "tokenizer.json")
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
        per_token.activation_ranges = activation_ranges(fused_raw, tmp / "tokenizer.json", calibration.texts)
    int8_raw = tmp / "int8.tmp.onnx"
    quantize_per_token(fused_raw, int8_raw, per_token)
    ort_optimize(int8_raw, tmp / FILES[INT8])
    if config.per_tensor_int8:
        quantize(fused_raw, int8_raw, config.quantization)
        ort_optimize(int8_raw, tmp / FILES[INT8_PER_TENSOR])
    fused_raw.unlink()
    int8_raw.unlink()

    steps.start("pytorch reference")
    max_length = tokenizer_fields["max_length"]
    ref_val = reference_logits(ckpt, validation.texts, max_length)
    ref_cal = ref_val if calibration is validation else reference_logits(ckpt, calibration.texts, max_length)

    variants: dict[str, dict[str, Any]] = {}
    for name in names:
        variants[name] = {
            **file_ref(tmp, FILES[name]),
            "precision": PRECISION[name],
            "optimized": name != RAW,
            "fused": name != RAW,
            "temperature": 1.0,
            "calibrated": False,
            "batch_invariant": False,  # measured below
        }
        if name == INT8:
            variants[name]["quantization"] = {**per_token.to_manifest(), "target": config.quantization.target}
        elif name == INT8_PER_TENSOR:
            variants[name]["quantization"] = config.quantization.to_manifest()
        variants[name]["graph"] = {"op_counts": op_counts(tmp / FILES[name]), "opset": config.opset}
    source = dict(ckpt.source)
    embedding_dim = int(head_linear(ckpt.model, ckpt.arch.head_linear).in_features)

    def manifest(vs: dict, default: str, info: dict) -> dict:
        return build_manifest(
            directory=tmp,
            architecture=ckpt.arch.model_type,
            labels=ckpt.labels,
            input_names=input_names,
            embedding_dim=embedding_dim,
            tokenizer=tokenizer_fields,
            variants=vs,
            default_variant=default,
            source=source,
            export_info=info,
        )

    write_manifest(tmp, manifest(variants, RAW, {}))

    steps.start("validation gate")
    ref_temperature = _calibration(ref_cal, cal_labels)["temperature"]
    gate: list[GateResult] = []
    for name in names:
        clf = EmotionClassifier(tmp, variant=name)
        drift = batch_invariance(clf, validation.texts[:BATCH_INVARIANCE_TEXTS])
        variants[name]["batch_invariant"] = drift <= BATCH_INVARIANCE_TOLERANCE
        variants[name]["batch_invariance"] = {
            "max_abs_logit_diff_alone_vs_padded_batch": drift,
            "n_texts": min(BATCH_INVARIANCE_TEXTS, len(validation.texts)),
            "tolerance": BATCH_INVARIANCE_TOLERANCE,
        }
        logits = clf.forward(validation.texts)[0]
        result = compare(name, PRECISION[name], logits, ref_val, val_labels, config.thresholds)
        if name == INT8:  # the default int8 promises batch invariance and a small file
            ratio = variants[INT8]["size"] / variants[RAW]["size"]
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
        variants[name]["validation"] = result.figures
        cal_logits = logits if calibration is validation else clf.forward(calibration.texts)[0]
        cal = _calibration(cal_logits, cal_labels)
        cal["reference_temperature"] = ref_temperature
        variants[name]["temperature"] = cal["temperature"]
        variants[name]["calibrated"] = cal["calibrated"]
        variants[name]["calibration"] = {**cal, "texts": calibration.source}
        del clf

    steps.start("write model directory")
    passed = {g.variant for g in gate if g.passed}
    for name in names:
        if name not in passed:
            (tmp / FILES[name]).unlink()
            del variants[name]
    steps.stop()
    if not passed:
        return ExportResult(None, None, gate, steps.seconds)
    default = next(n for n in (INT8, FUSED, RAW) if n in passed)
    info = {
        "seconds": steps.seconds,
        "gate_failures": {g.variant: g.reason for g in gate if not g.passed},
        "thresholds": vars(config.thresholds),
        "gelu_approximation": config.gelu_approximation,
    }
    final = manifest(variants, default, info)
    write_manifest(tmp, final)
    _replace_dir(tmp, out)
    return ExportResult(out, final, gate, steps.seconds)
