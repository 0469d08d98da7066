"""Export the full-size DistilBERT graph (random weights, real vocab) and record the export
time per step, the file sizes and the gate figures.

    python benchmarks/export_full_size.py [--out build/distilbert-base]

Results go to benchmarks/results/export_full_size.{json,md}; the model directory stays at
--out for the other benchmarks.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from common import EXPORT_CODE, REPO, arguments, markdown_table, on_machine, vocab_file, write_results


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__)
    p.add_argument("--out", type=Path, default=REPO / "build" / "distilbert-base")
    p.add_argument("--checkpoint", type=Path, default=REPO / "build" / "distilbert-base-ckpt")
    args = p.parse_args(argv)
    from emotion_onnx_export import ExportConfig, run_export
    from emotion_onnx_export.cli import quiet_third_party
    from emotion_onnx_export.data import emotion_split
    from emotion_onnx_export.synthetic import build_checkpoint

    quiet_third_party()
    if not (args.checkpoint / "config.json").is_file():
        build_checkpoint("distilbert-base", args.checkpoint, vocab_file=vocab_file())
    t0 = time.perf_counter()
    result = run_export(
        ExportConfig(
            model=str(args.checkpoint),
            out=args.out,
            force=True,
            validation_file=emotion_split("validation"),
            per_tensor_int8=True,
            openvino=importlib.util.find_spec("nncf") is not None,  # the int8-openvino variant, where it can be built
        )
    )
    total = time.perf_counter() - t0
    m = result.manifest
    md = markdown(m, total, result.seconds)
    write_results(
        "export_full_size",
        {"seconds_total": total, "seconds": result.seconds, "manifest": m.to_dict()},
        md,
        models=[args.out],
        code=EXPORT_CODE,
    )
    print(md)
    return 0 if not result.failures else 1


def markdown(m, total: float, seconds: dict[str, float]) -> str:
    """The export's table: each variant's size and gate figures, the steps' seconds, the machine."""
    fp32 = m.variants["fp32"].ref.size
    rows = []
    for name, v in m.variants.items():
        val = v.validation
        size = v.size  # OpenVINO's .bin beside its .xml included
        rows.append((name, f"{size / 1e6:.1f} MB ({size / fp32:.0%})", f"{val['max_abs_logit_diff']:.2e}",
                     f"{val['top1_agreement']:.2%}", f"{val['max_abs_prob_diff']:.2e}",
                     f"{v.batch_invariance['max_abs_logit_diff_alone_vs_padded_batch']:.1e}",
                     "yes" if v.batch_invariant else "no"))  # fmt: skip
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())
    header = ("variant", "file size (× fp32)", "max \\|Δlogit\\| vs PyTorch", "top-1 agreement", "max \\|Δprob\\|",
              "batch drift", "batch-invariant")  # fmt: skip
    return (
        f"Export of the full-size graph on {on_machine()}: {total:.0f} s in all ({steps}); gate on the "
        f"{m.variants['fp32'].validation['n_texts']} validation texts.\n\n"
        + "\n".join(markdown_table(header, rows))
        + "\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
