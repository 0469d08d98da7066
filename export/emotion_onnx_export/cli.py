"""`emotion-onnx export`: argument parsing and reporting for the export stage."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .quantization import TARGETS


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Export a sequence-classification checkpoint (local directory or hub id) to ONNX: "
        "fp32, fused fp32 and int8, each gated against the PyTorch logits and calibrated."
    )
    p.add_argument("model", help="checkpoint directory or Hugging Face hub id")
    p.add_argument("--out", required=True, type=Path, help="model directory to write")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")
    p.add_argument("--revision", help="hub revision (branch, tag or commit)")
    p.add_argument("--validation", type=Path, help="gate texts, JSONL or CSV (default: emotion validation split)")
    p.add_argument("--calibration", type=Path, help="labelled texts for the temperature (default: --validation)")
    p.add_argument("--text-field", default="text")
    p.add_argument("--label-field", default="label")
    p.add_argument("--limit", type=int, help="use only the first N texts of each file")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--target", choices=TARGETS, default="avx512_vnni", help="CPU family for int8")
    p.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--reduce-range", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument(
        "--per-tensor-int8",
        action="store_true",
        help="also write onnxruntime's per-tensor dynamic int8 (variant int8-per-tensor); its scores depend "
        "on the batch, so it is opt-in",
    )
    p.add_argument(
        "--int8-scheme",
        choices=("per-token", "mixed", "static"),
        default="per-token",
        help="activation quantisation of the int8 variant: one scale per token row computed at run time (default); "
        "mixed: static scales calibrated at export for layer-norm outputs, per-token for the rest; static: static "
        "scales everywhere. All are batch-invariant (docs/int8.md)",
    )
    p.add_argument(
        "--percentile",
        type=float,
        help="static int8: calibrate each activation's range at this percentile of its values (default: min/max)",
    )
    p.add_argument("--smooth-alpha", type=float, help="SmoothQuant migration strength for the per-token scheme (0-1)")
    p.add_argument(
        "--openvino-smooth-alpha",
        type=float,
        help="SmoothQuant strength for the --openvino variant's MatMuls (0-1; default: --smooth-alpha's). The two "
        "quantisers clip differently, so the strength each needs to pass the gate can differ",
    )
    p.add_argument(
        "--no-calibration-map",
        dest="calibration_map",
        action="store_false",
        help="calibrate with the temperature alone (default: the temperature, then an isotonic map of the top-1 "
        "probability fitted on the calibration texts)",
    )
    p.add_argument(
        "--openvino",
        action="store_true",
        help="also write an OpenVINO INT8 variant (NNCF post-training quantisation); the runtime uses it where "
        "openvino is installed and it measured faster (needs the export-openvino extra)",
    )
    p.add_argument(
        "--full-last-layer",
        action="store_true",
        help="compute the last transformer block for every token (default: only the first token, which is all the "
        "classification head reads; DistilBERT)",
    )
    p.add_argument(
        "--neutral-label",
        default="neutral",
        help="the checkpoint's label that the runtime answers only when asked (neutral=True, --neutral); "
        "'' for none (default: neutral, when the checkpoint has it)",
    )
    p.add_argument("--gelu-approximation", action="store_true", help="fuse Gelu as FastGelu (off by default)")
    p.add_argument("--fp32-tolerance", type=float, default=1e-4, help="max |Δlogit| for fp32 variants")
    p.add_argument("--min-agreement", type=float, default=0.99, help="int8 top-1 agreement threshold")
    p.add_argument(
        "--max-accuracy-drop", type=float, default=0.002, help="int8 accuracy drop allowed where labels exist"
    )
    p.add_argument("--verbose", action="store_true", help="show the warnings of torch, transformers and onnxruntime")


def quiet_third_party() -> None:
    """Tracer and quantiser chatter is not for users; our own gate reports what matters."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


def run(args: argparse.Namespace) -> int:
    from .errors import ExportInputError
    from .gate import GateThresholds
    from .pipeline import ExportConfig, run_export
    from .quantization import QuantizationSettings

    if not args.verbose:
        quiet_third_party()
    if args.opset < 17:
        raise ExportInputError(f"--opset must be at least 17, got {args.opset}")
    if args.limit is not None and args.limit < 1:
        raise ExportInputError("--limit must be a positive integer")
    if args.percentile is not None and not 50.0 < args.percentile <= 100.0:
        raise ExportInputError(f"--percentile must be in (50, 100], got {args.percentile}")
    config = ExportConfig(
        model=args.model,
        out=args.out,
        force=args.force,
        revision=args.revision,
        validation_file=args.validation,
        calibration_file=args.calibration,
        text_field=args.text_field,
        label_field=args.label_field,
        limit=args.limit,
        opset=args.opset,
        quantization=QuantizationSettings(
            target=args.target, per_channel=args.per_channel, reduce_range=args.reduce_range
        ),
        gelu_approximation=args.gelu_approximation,
        per_tensor_int8=args.per_tensor_int8,
        int8_scheme=args.int8_scheme,
        percentile=args.percentile,
        smooth_alpha=args.smooth_alpha,
        openvino_smooth_alpha=args.openvino_smooth_alpha,
        first_token_last_layer=not args.full_last_layer,
        openvino=args.openvino,
        calibration_map=args.calibration_map,
        neutral_label=args.neutral_label,
        thresholds=GateThresholds(args.fp32_tolerance, args.min_agreement, args.max_accuracy_drop),
    )
    return report(run_export(config), args.out)


def report(result, out: Path) -> int:
    """Print the gate figures (stderr) and a JSON summary (stdout); 1 if any variant failed."""
    for g in result.gate:
        status = "PASS" if g.passed else "FAIL"
        figs = {k: g.figures[k] for k in g.figures if isinstance(g.figures[k], (int, float))}
        line = ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in figs.items())
        print(f"gate {g.variant:<10} {status}: {line}{' — ' + g.reason if g.reason else ''}", file=sys.stderr)
    if result.out is None:
        print(f"error: every variant failed the gate; nothing was written to {out}", file=sys.stderr)
        return 1
    for name, v in result.manifest.variants.items():
        for warning in v.calibration.details.get("warnings", []):
            print(f"warning: {name}: {warning}", file=sys.stderr)
    summary = {
        "out": str(result.out),
        "default_variant": result.manifest.default_variant,
        "variants": {
            name: {
                "file": v.ref.file,
                "size": v.ref.size,
                "temperature": round(v.temperature, 4),
                "calibration": v.calibration.status,
            }
            for name, v in result.manifest.variants.items()
        },
        "seconds": result.seconds,
    }
    print(json.dumps(summary, indent=2))
    if result.failures:
        names = ", ".join(g.variant for g in result.failures)
        print(f"error: variant(s) {names} failed the gate and were not written", file=sys.stderr)
        return 1
    return 0
