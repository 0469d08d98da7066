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

from .calibration import fit_answer_calibrations, fit_calibration
from .checkpoint import Checkpoint, load_checkpoint
from .data import LabelledTexts, emotion_split, label_ids, read_labelled
from .errors import ExportInputError
from .fusion import fuse, op_counts, ort_optimize, unfuse_skip_layer_norm
from .gate import GateResult, GateThresholds, batch_invariance, check_parent, check_promises, compare
from .int8 import Int8Settings, activation_stats, quantize_int8
from .onnx_graph import OPSET, export_onnx, first_token_last_layer_supported, head_linear
from .quantization import QuantizationSettings, quantize
from .reference import reference_logits
from .tokenizer_files import write_tokenizer

RAW, FUSED, INT8, INT8_PER_TENSOR, INT8_OPENVINO = "fp32", "fp32-fused", "int8", "int8-per-tensor", "int8-openvino"
FILES = {
    RAW: "model.onnx",
    FUSED: "model_fused.onnx",
    INT8: "model_int8.onnx",
    INT8_PER_TENSOR: "model_int8_per_tensor.onnx",
    INT8_OPENVINO: "model_int8_openvino.xml",
}
WEIGHTS = {INT8_OPENVINO: "model_int8_openvino.bin"}
ENGINE = {INT8_OPENVINO: "openvino"}
PRECISION = {RAW: "fp32", FUSED: "fp32", INT8: "int8", INT8_PER_TENSOR: "int8", INT8_OPENVINO: "int8"}
# a variant built from a graph that failed the gate fails too
PARENT = {FUSED: RAW, INT8: FUSED, INT8_PER_TENSOR: FUSED, INT8_OPENVINO: RAW}
SPEED_TEXTS = 500  # validation texts timed per variant, after the gate has warmed it up
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
    int8_scheme: str = "per-token"  # emotion_onnx_export.int8.SCHEMES
    percentile: float | None = None  # static int8 ranges: None = min/max of the calibration activations
    smooth_alpha: float | None = None  # SmoothQuant strength for the per-token int8 scheme
    first_token_last_layer: bool = True  # the last block computes only the first token (where supported)
    openvino: bool = False  # also write the OpenVINO INT8 variant (NNCF); needs the export-openvino extra
    openvino_smooth_alpha: float | None = None  # its SmoothQuant strength; None: smooth_alpha's
    calibration_map: bool = True  # after the temperature, fit the isotonic map of the top-1 probability
    gelu_approximation: bool = False
    thresholds: GateThresholds = field(default_factory=GateThresholds)
    name: str | None = None  # the model's name, recorded in the manifest
    # the label answered only on request (neutral=True): used when the checkpoint has it; "" for none
    neutral_label: str = "neutral"

    def resolved_openvino_smooth_alpha(self) -> float | None:
        return self.smooth_alpha if self.openvino_smooth_alpha is None else self.openvino_smooth_alpha


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
    """The export's steps as a tqdm bar on a TTY, and as a line per step in a log; each step timed."""

    def __init__(self):
        from tqdm import tqdm

        self.tty = sys.stderr.isatty()
        self.bar = tqdm(total=len(STEPS), desc="export", unit="step", disable=not self.tty, leave=False)
        self.seconds: dict[str, float] = {}
        self._name, self._t0 = None, 0.0

    def start(self, name: str) -> None:
        self.stop()
        self._name, self._t0 = name, time.perf_counter()
        self.bar.set_description(name)

    def stop(self) -> None:
        if self._name:
            self.seconds[self._name] = round(time.perf_counter() - self._t0, 3)
            if not self.tty:  # a log line per finished step (a failed one ends in its error instead)
                done = f"step {STEPS.index(self._name) + 1} of {len(STEPS)}"
                print(f"export: {self._name}: {self.seconds[self._name]:.1f} s ({done})", file=sys.stderr, flush=True)
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


def _speed(clf, texts: list[str]) -> float:
    """Texts per second of `clf` on `texts` (already warmed up by the gate), the better of two runs."""
    best = 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        clf.forward(texts)
        best = max(best, len(texts) / max(time.perf_counter() - t0, 1e-9))
    return best


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
        built = _build_variants(tmp, config, ckpt, calibration, steps)
        manifest = _draft_manifest(tmp, out, config, ckpt, built)
        steps.start("pytorch reference")
        ref_val = reference_logits(ckpt, validation.texts, built.tokenizer["max_length"])
        same = calibration is validation
        ref_cal = ref_val if same else reference_logits(ckpt, calibration.texts, built.tokenizer["max_length"])
        steps.start("validation gate")
        texts = _GateTexts(validation, ids(validation), ref_val, calibration, ids(calibration), ref_cal)
        manifest, gate = _gate_variants(tmp, config, manifest, texts)
        steps.start("write model directory")
        return _write_model_dir(tmp, out, config, manifest, gate, steps)
    finally:
        steps.close()
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class _Built:
    """What the build step wrote into the temporary directory: the variants' names (in build
    order) and quantisation records, the tokenizer's settings and the graph's input names."""

    names: list[str]
    quantization: dict[str, dict]
    tokenizer: dict
    input_names: list[str]
    first_token: bool


@dataclass
class _GateTexts:
    """The gate's texts and the calibration's, their label ids (None without labels) and the
    PyTorch reference logits of each."""

    validation: LabelledTexts
    val_labels: np.ndarray | None
    ref_val: np.ndarray
    calibration: LabelledTexts
    cal_labels: np.ndarray | None
    ref_cal: np.ndarray


def _build_variants(tmp: Path, config: ExportConfig, ckpt: Checkpoint, calibration: LabelledTexts, steps) -> _Built:
    """Step one: export the graph, fuse it, quantise it (each scheme asked for), all into `tmp`."""
    mconf = ckpt.model.config
    heads = getattr(mconf, "n_heads", None) or mconf.num_attention_heads
    hidden = getattr(mconf, "dim", None) or mconf.hidden_size
    steps.start("export ONNX (optimum)")
    first_token = config.first_token_last_layer and first_token_last_layer_supported(ckpt)
    input_names = export_onnx(ckpt, tmp / FILES[RAW], opset=config.opset, first_token_last_layer=first_token)
    tok = write_tokenizer(ckpt, tmp / "tokenizer.json")
    steps.start("fuse graph")
    fused_raw, int8_raw, optimized = tmp / "fused.tmp.onnx", tmp / "int8.tmp.onnx", tmp / "optimized.tmp.onnx"
    fuse(tmp / FILES[RAW], fused_raw, heads, hidden, config.gelu_approximation)

    def finish(raw: Path, name: str) -> None:  # onnxruntime's offline optimisation, then the unfuse
        ort_optimize(raw, optimized)
        unfuse_skip_layer_norm(optimized, tmp / FILES[name])

    finish(fused_raw, FUSED)
    steps.start("quantise int8")
    names = [RAW, FUSED, INT8] + ([INT8_PER_TENSOR] if config.per_tensor_int8 else [])
    int8 = Int8Settings(
        scheme=config.int8_scheme,
        percentile=config.percentile,
        reduce_range=config.quantization.resolved_reduce_range(),
        smooth_alpha=config.smooth_alpha,
    )
    if int8.needs_calibration or config.openvino:  # both run the graph on the calibration texts
        from emotion_onnx.tokenization import TextEncoder

        encoder = TextEncoder.from_file(tmp / "tokenizer.json", tok["max_length"], tok["pad_id"], input_names)
    if int8.needs_calibration:
        int8.activation_stats = activation_stats(fused_raw, encoder, calibration.texts)
    quantize_int8(fused_raw, int8_raw, int8)
    finish(int8_raw, INT8)
    if config.per_tensor_int8:
        quantize(fused_raw, int8_raw, config.quantization)
        finish(int8_raw, INT8_PER_TENSOR)
    for path in (fused_raw, int8_raw, optimized):
        path.unlink()
    quantization = {
        INT8: {
            **int8.to_manifest(),
            "target": config.quantization.target,
            **({"calibration_texts": calibration.source} if int8.needs_calibration else {}),
        },
        INT8_PER_TENSOR: config.quantization.to_manifest(),
    }
    if config.openvino:
        from . import openvino_int8

        names.append(INT8_OPENVINO)
        entry = openvino_int8.quantize(tmp / FILES[RAW], tmp / FILES[INT8_OPENVINO], encoder, calibration.texts,
                                       smooth_alpha=config.resolved_openvino_smooth_alpha())  # fmt: skip
        quantization[INT8_OPENVINO] = {**entry, "calibration_source": calibration.source}
    return _Built(names, quantization, tok, input_names, first_token)


def _draft_manifest(tmp: Path, out: Path, config: ExportConfig, ckpt: Checkpoint, built: _Built) -> Manifest:
    """The manifest of every variant built, before the gate has measured any of them."""
    last_layer = "first token only" if built.first_token else "every token"
    variants = {
        name: Variant(
            name=name,
            ref=FileRef.of(tmp, FILES[name]),
            weights=FileRef.of(tmp, WEIGHTS[name]) if name in WEIGHTS else None,
            engine=ENGINE.get(name, "onnxruntime"),
            precision=PRECISION[name],
            optimized=name != RAW,
            batch_invariant=False,  # measured by the gate
            quantization=built.quantization.get(name),
            graph={
                **({"op_counts": op_counts(tmp / FILES[name])} if name not in ENGINE else {}),
                "opset": config.opset,
                "fused": name != RAW,
                "last_layer": last_layer,
            },
        )
        for name in built.names
    }
    tok = built.tokenizer
    return Manifest(
        name=config.name,
        architecture=ckpt.arch.model_type,
        labels=ckpt.labels,
        neutral_label=neutral_label_of(ckpt.labels, config.neutral_label),
        input_names=built.input_names,
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
        source=manifest_source(ckpt, out),
        versions=tool_versions(),
    )


def _gate_variants(tmp: Path, config: ExportConfig, manifest: Manifest, t: _GateTexts):
    """Step two: load each variant through the runtime, gate it against PyTorch (gate.py holds
    every rule), time it and fit its calibrations. Returns the manifest with every variant's
    figures, and the gate's results in build order."""
    from emotion_onnx.classifier import EmotionClassifier

    manifest_io.write(manifest, tmp)  # what the runtime loads each variant from
    ref_temperature = fit_calibration(t.ref_cal, t.cal_labels, t.calibration.source).temperature
    variants = dict(manifest.variants)
    gate: list[GateResult] = []
    for name in variants:
        clf = EmotionClassifier(tmp, variant=name)
        drifts = batch_invariance(clf, t.validation.texts[:BATCH_INVARIANCE_TEXTS])
        drift = drifts["runtime_batches"]
        logits = clf.forward(t.validation.texts)[0]
        result = compare(name, PRECISION[name], logits, t.ref_val, t.val_labels, config.thresholds)
        result.figures["texts_per_s"] = _speed(clf, t.validation.texts[:SPEED_TEXTS])
        result.figures["engine"] = clf.engine.name
        if name in (INT8, INT8_OPENVINO):  # these promise batch invariance and a small file
            ratio = variants[name].size / variants[RAW].size
            check_promises(result, drift, ratio, config.thresholds, BATCH_INVARIANCE_TOLERANCE)
        check_parent(result, PARENT.get(name), gate)
        result.figures["gate_texts"] = t.validation.source
        gate.append(result)
        cal_logits = logits if t.calibration is t.validation else clf.forward(t.calibration.texts)[0]
        cal, neutral_cal = fit_answer_calibrations(
            cal_logits, t.cal_labels, t.calibration.source, manifest.labels, manifest.neutral_label,
            config.calibration_map, t.calibration.groups,
        )  # fmt: skip
        cal = replace(cal, details={**cal.details, "reference_temperature": ref_temperature})
        variants[name] = replace(
            variants[name],
            batch_invariant=drift <= BATCH_INVARIANCE_TOLERANCE,
            batch_invariance={
                "max_abs_logit_diff_alone_vs_padded_batch": drift,
                **(
                    {"max_abs_logit_diff_padded_to_longest": drifts["padded_to_longest"]}
                    if "padded_to_longest" in drifts
                    else {}
                ),  # fmt: skip
                "n_texts": min(BATCH_INVARIANCE_TEXTS, len(t.validation.texts)),
                "tolerance": BATCH_INVARIANCE_TOLERANCE,
            },
            validation=result.figures,
            calibration=cal,
            neutral_calibration=neutral_cal,
        )
        del clf
    return replace(manifest, variants=variants), gate


def _write_model_dir(tmp: Path, out: Path, config: ExportConfig, manifest: Manifest, gate: list[GateResult],
                     steps) -> ExportResult:  # fmt: skip
    """Step three: delete the variants that failed, order the rest, write the manifest and move
    the directory into place (nothing is written to `out` when every variant failed)."""
    passed = {g.variant for g in gate if g.passed}
    variants = manifest.variants
    for name in variants:
        if name not in passed:
            for file in (FILES[name], WEIGHTS.get(name)):
                if file:
                    (tmp / file).unlink()
    steps.stop()
    if not passed:
        return ExportResult(None, None, gate, steps.seconds)
    # what the runtime loads by default: the fastest batch-invariant variant whose engine is installed
    order = sorted(
        (n for n in variants if n in passed and variants[n].batch_invariant),
        key=lambda n: -variants[n].validation["texts_per_s"],
    )
    # the default (what bundles and the embedded copy ship, and the fallback): the fastest that
    # every installation can run, onnxruntime's
    onnxruntime = [n for n in order if variants[n].engine == "onnxruntime"]
    final = replace(
        manifest,
        variants={name: v for name, v in variants.items() if name in passed},
        default_variant=onnxruntime[0] if onnxruntime else next(n for n in (INT8, FUSED, RAW) if n in passed),
        variant_order=order,
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


def manifest_source(ckpt: Checkpoint, out: Path) -> dict:
    """Where the model came from, meaningful on any machine: a hub id and its revision, or a local
    checkpoint's content hash and its path relative to the run, the folder that holds the model
    directory (`emotion-onnx finetune --export` writes RUN/checkpoint and RUN/onnx, so "checkpoint");
    never the builder's absolute path."""
    source = dict(ckpt.source)
    local = source.pop("local_path", None)
    if local is not None:
        source["model"] = Path(os.path.relpath(local, Path(out).resolve().parent)).as_posix()
        source["relative_to"] = "the folder holding the model directory"
    return source


def neutral_label_of(labels: list[str], wanted: str) -> str | None:
    """The checkpoint's label that only the neutral switch answers: `wanted` when the checkpoint has
    it (none when `wanted` is empty). A model needs at least two labels beside it."""
    if not wanted or wanted not in labels:
        return None
    if len(labels) < 3:
        raise ExportInputError(f"the neutral label {wanted!r} needs at least two other labels (labels: {labels})")
    return wanted
