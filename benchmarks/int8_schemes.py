"""Compare INT8 schemes side by side: agreement, accuracy, batch invariance, speed and size.

    python benchmarks/int8_schemes.py --model MODEL_DIR [--checkpoint CKPT] [--quick]

MODEL_DIR is a directory written by `emotion-onnx export` (its fp32 export is the source
of every scheme). With --checkpoint the reference is the PyTorch model's logits; without,
it is the fp32 ONNX export. Texts: the emotion test split. Results go to
benchmarks/results/int8_schemes[_NAME].{json,md,png}.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import (
    RESULTS,
    RUNTIME_HOT_PATH,
    add_variant,
    arguments,
    interleaved,
    markdown_table,
    median,
    on_machine,
    read_split,
    write_results,
)

INT8_CODE = ("int8", "int8_activations", "int8_graph", "quantization")  # what builds the graphs compared


def build_schemes(model_dir: Path, work: Path, calibration_texts: list[str]) -> dict[str, dict]:
    """Write one ONNX file per scheme; returns name -> {file, description}. Every file goes through
    the export's own finish (onnxruntime's offline optimisation, then the SkipLayerNormalization
    unfuse), so the schemes differ only in their quantisation."""
    import onnx

    from emotion_onnx import EmotionClassifier
    from emotion_onnx.manifest import load as load_manifest
    from emotion_onnx_export.fusion import fuse, ort_optimize, unfuse_skip_layer_norm
    from emotion_onnx_export.int8 import Int8Settings, activation_stats, quantize_int8
    from emotion_onnx_export.quantization import QuantizationSettings, quantize

    files = {name: model_dir / v.ref.file for name, v in load_manifest(model_dir).variants.items()}
    model = onnx.load(str(files["fp32-fused"]), load_external_data=False)
    heads = next(
        onnx.helper.get_attribute_value(a)
        for n in model.graph.node
        if n.op_type in ("Attention", "MultiHeadAttention")
        for a in n.attribute
        if a.name == "num_heads"
    )
    fused = work / "fused.onnx"
    fuse(files["fp32"], fused, heads, 0)  # 0: onnxruntime's fusion reads the hidden size from the graph
    schemes: dict[str, dict] = {}

    def finish(name: str, raw: Path, description: str):
        optimized, out = work / "optimized.onnx", work / f"{name}.onnx"
        ort_optimize(raw, optimized)
        unfuse_skip_layer_norm(optimized, out)
        schemes[name] = {"file": out, "description": description}

    schemes["fp32-fused"] = {"file": files["fp32-fused"], "description": "fp32, fused (reference speed)"}
    raw = work / "raw.onnx"
    for per_channel in (True, False):
        quantize(fused, raw, QuantizationSettings(per_channel=per_channel))
        label = "per-channel" if per_channel else "per-tensor"
        finish(f"dynamic-{label}", raw, f"onnxruntime quantize_dynamic, {label} weights, per-tensor activations")
    stats = activation_stats(fused, EmotionClassifier(model_dir).encoder, calibration_texts)
    for name, settings, description in (
        ("per-token", Int8Settings(scheme="per-token"), "ours (default): per-token activations, int8 embeddings, MHA"),
        ("mixed", Int8Settings(scheme="mixed", activation_stats=stats),
         "static scales for layer-norm outputs, per-token for the others"),
        ("static", Int8Settings(scheme="static", activation_stats=stats),
         "static scales everywhere (min/max of the calibration texts)"),
        ("per-token+smooth0.5", Int8Settings(scheme="per-token", smooth_alpha=0.5, activation_stats=stats),
         "per-token with SmoothQuant alpha 0.5"),
    ):  # fmt: skip
        quantize_int8(fused, raw, settings)
        finish(name, raw, description)
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        q = MatMulNBitsQuantizer(onnx.load(str(fused)), bits=8, block_size=32, is_symmetric=True, accuracy_level=4)
        q.process()
        q.model.save_model_to_file(str(raw))
        finish("matmulnbits-8bit", raw, "MatMulNBits 8-bit, block 32, accuracy_level 4 (int8 compute)")
    except ImportError as exc:  # onnx-ir is in the bench extra
        print(f"skipping MatMulNBits: {exc}", file=sys.stderr)
    return schemes


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, model="required", name="", repeats=5, quick="200 texts, 1 repeat (CI smoke run)")
    p.add_argument("--checkpoint", type=Path, help="PyTorch checkpoint: reference logits (real weights)")
    args = p.parse_args(argv)

    from emotion_onnx import EmotionClassifier

    n = 200 if args.quick else None
    texts, labels = read_split("test", n)
    labels = np.array(labels)
    cal_texts, _ = read_split("validation", 200 if args.quick else 1000)
    work = Path(tempfile.mkdtemp(prefix="int8-schemes-"))
    model_dir = work / "model"
    shutil.copytree(args.model, model_dir)
    try:
        schemes = build_schemes(model_dir, work, cal_texts)
        for name, info in schemes.items():
            add_variant(model_dir, name, info["file"])
        if args.checkpoint:
            from emotion_onnx_export.checkpoint import load_checkpoint
            from emotion_onnx_export.reference import reference_logits

            reference = reference_logits(load_checkpoint(str(args.checkpoint)), texts, 512)
            reference_name = "PyTorch fp32"
        else:
            reference = EmotionClassifier(model_dir, variant="fp32").logits(texts)
            reference_name = "fp32 ONNX export"
        clfs = {name: EmotionClassifier(model_dir, variant=name) for name in schemes}
        # the default answer's columns (a model with a neutral output has one logit more)
        reference = np.asarray(reference)[:, next(iter(clfs.values())).manifest.answer_columns(False)]
        singles = {name: EmotionClassifier(model_dir, variant=name, max_batch_size=1) for name in schemes}
        rows = {}
        probe = texts[:64]
        for name, clf in clfs.items():
            logits = clf.logits(texts)
            big = EmotionClassifier(model_dir, variant=name, max_batch_tokens=10**9, max_batch_size=10**6)
            together = big.logits(probe)
            alone = np.vstack([singles[name].logits([t]) for t in probe])
            rows[name] = {
                "description": schemes[name]["description"],
                "top1_agreement": float((logits.argmax(1) == reference.argmax(1)).mean()),
                "accuracy": float((logits.argmax(1) == labels).mean()),
                "reference_accuracy": float((reference.argmax(1) == labels).mean()),
                "max_abs_logit_diff_vs_reference": float(np.abs(logits - reference).max()),
                "batch_drift_max_abs_logit": float(np.abs(together - alone).max()),
                "size_mb": round(Path(schemes[name]["file"]).stat().st_size / 1e6, 2),
            }
        timings = interleaved(
            {name: (lambda c=c: c.logits(texts)) for name, c in clfs.items()}, 1 if args.quick else args.repeats
        )
        for name, ts in timings.items():
            rows[name]["texts_per_s"] = len(texts) / median(ts)
            rows[name]["seconds"] = ts
        fp32 = rows["fp32-fused"]
        for r in rows.values():
            r["speedup_vs_fp32"] = r["texts_per_s"] / fp32["texts_per_s"]
            r["size_vs_fp32"] = r["size_mb"] / fp32["size_mb"]
            r["batch_invariant"] = r["batch_drift_max_abs_logit"] <= 1e-6
    finally:
        shutil.rmtree(work, ignore_errors=True)

    header = (
        f"INT8 schemes on `{args.name or args.model.name}`, {len(texts)} emotion test texts, "
        f"reference: {reference_name}; {on_machine()}. "
        f"Throughput: median of {1 if args.quick else args.repeats} interleaved runs."
    )
    if not args.checkpoint:  # random weights: every logit row is alike, so labels and argmaxes say nothing
        header += " Random weights: the distance to fp32 is shown, not agreement or accuracy."
    markdown = header + "\n\n" + "\n".join(table(rows, real_weights=bool(args.checkpoint))) + "\n"
    stem = "int8_schemes" + (f"_{args.name}" if args.name else "")
    write_results(
        stem,
        {
            "model": str(args.model),
            "reference": reference_name,
            "n_texts": len(texts),
            "quick": args.quick,
            "schemes": rows,
        },
        markdown,
        models=[args.model],
        code=[*RUNTIME_HOT_PATH, *(f"export/emotion_onnx_export/{m}.py" for m in INT8_CODE)],
    )
    plot(rows, RESULTS / f"{stem}.png", f"INT8 schemes ({args.name or args.model.name})")
    print(markdown)
    return 0


def table(rows: dict, real_weights: bool) -> list[str]:
    """One row per scheme: agreement and accuracy where the weights are trained, else the largest
    logit distance to the reference."""
    fidelity = ("top-1 agreement", "accuracy") if real_weights else ("max \\|Δlogit\\| vs fp32",)
    header = ("scheme", *fidelity, "batch drift max\\|Δlogit\\|", "texts/s", "× fp32", "size MB", "× fp32 size")

    def cells(r: dict) -> tuple:
        if real_weights:
            return f"{r['top1_agreement']:.2%}", f"{r['accuracy']:.2%}"
        return (f"{r['max_abs_logit_diff_vs_reference']:.2e}",)

    def speed(r: dict) -> tuple:
        return (f"{r['batch_drift_max_abs_logit']:.2e}", f"{r['texts_per_s']:.1f}", f"{r['speedup_vs_fp32']:.2f}",
                f"{r['size_mb']:.1f}", f"{r['size_vs_fp32']:.0%}")  # fmt: skip

    return markdown_table(header, ((name, *cells(r), *speed(r)) for name, r in rows.items()))


def plot(rows: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = ["tab:green" if rows[n]["batch_invariant"] else "tab:red" for n in names]
    ax1.barh(names, [rows[n]["texts_per_s"] for n in names], color=colors)
    ax1.set_xlabel("texts/s (green: batch-invariant)")
    ax1.invert_yaxis()
    ax2.barh(names, [rows[n]["top1_agreement"] * 100 for n in names], color=colors)
    ax2.set_xlim(min(95, min(rows[n]["top1_agreement"] * 100 for n in names) - 0.5), 100.05)
    ax2.set_xlabel("top-1 agreement with the reference, %")
    ax2.invert_yaxis()
    ax2.set_yticklabels([])
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
