"""The width step per engine: texts padded to their own length, or rounded up to a multiple of 2, 4 or 8.

    python benchmarks/width_step.py --model build/emotion-minilm-l6/onnx-ov --name emotion-minilm-l6 \
        [--rounds 6] [--steps 1 2 4 8] [--quick]

The runtime pads a text to a width that depends on the text alone (emotion_onnx.batching), in
steps that each engine names (`width_step`). A smaller step pads fewer tokens and makes more,
smaller batches of distinct shapes. This measures each step on each of the model's int8 engines
(onnxruntime's `int8`, and OpenVINO's `int8-openvino` where the model has it): the emotion test
split as one call (texts/s), and one text at a time (p50 over 200 texts of 13 to 16 words). Each
engine and step runs in its own process, all alive, one round each in turn. Reported: medians,
and the median per-round ratio to the engine's own step. Results:
benchmarks/results/width_step_NAME.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import (
    REPO,
    RESULTS,
    RUNTIME_HOT_PATH,
    Worker,
    answer_jobs,
    arguments,
    machine,
    markdown_table,
    median,
    pyplot,
    read_split,
    save_figure,
    write_results,
)

VARIANTS = ("int8", "int8-openvino")


def jobs(variant: str, step: int, model_dir: Path, threads: int, texts_file: Path) -> dict:
    """Worker side: load, one untimed pass; "batch" times the split as one call, "one" answers the
    median of one text at a time over the short texts."""
    from emotion_onnx import EmotionClassifier

    texts = json.loads(texts_file.read_text())
    short = [t for t in texts if 13 <= len(t.split()) <= 16][:200]
    clf = EmotionClassifier(model_dir, variant=variant, intra_op_threads=threads)
    clf.engine.width_step = step
    clf.logits(texts)

    def batch(cmd: dict) -> dict:
        t0 = time.perf_counter()
        clf.logits(texts)
        return {"seconds": time.perf_counter() - t0}

    def one(cmd: dict) -> dict:
        latencies = []
        for text in short:
            t0 = time.perf_counter()
            clf.logits([text])
            latencies.append(time.perf_counter() - t0)
        return {"seconds": median(latencies)}

    return {"batch": batch, "one": one}


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, model=REPO / "build" / "emotion-minilm-l6" / "onnx-ov", name="emotion-minilm-l6",
                  threads=True, quick="two rounds on 100 texts (the CI smoke run)")  # fmt: skip
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--serve", help=argparse.SUPPRESS)
    p.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        variant, step = args.serve.rsplit(":", 1)
        return answer_jobs(lambda: jobs(variant, int(step), args.model, args.threads, args.texts))

    from emotion_onnx import EmotionClassifier
    from emotion_onnx import manifest as manifest_io
    from emotion_onnx.engines import engine_available

    manifest = manifest_io.load(args.model)
    variants = [v for v in VARIANTS if v in manifest.variants and engine_available(manifest.variants[v].engine)]
    default_step = {v: EmotionClassifier(args.model, variant=v).engine.width_step for v in variants}
    texts, _ = read_split("test", 100 if args.quick else None)
    rounds = 2 if args.quick else args.rounds
    RESULTS.mkdir(parents=True, exist_ok=True)
    texts_file = RESULTS / f".width_step_{args.name}_texts.json"
    texts_file.write_text(json.dumps(texts))
    systems = [(v, s) for v in variants for s in sorted(set(args.steps) | {default_step[v]})]
    workers, batch_s, one_s = {}, {}, {}
    try:
        for v, s in systems:
            cmd = [sys.executable, __file__, "--serve", f"{v}:{s}", "--model", str(args.model),
                   "--threads", str(args.threads), "--texts", str(texts_file)]  # fmt: skip
            workers[v, s] = Worker(f"{v} step {s}", cmd)
            batch_s[v, s], one_s[v, s] = [], []
        for _ in range(rounds):
            for key, worker in workers.items():
                batch_s[key].append(worker.ask(op="batch")["seconds"])
                one_s[key].append(worker.ask(op="one")["seconds"])
    finally:
        for worker in workers.values():
            worker.close()
        texts_file.unlink(missing_ok=True)

    rows = {}
    for v, s in systems:
        own = (v, default_step[v])
        rows[f"{v} step {s}"] = {
            "variant": v,
            "step": s,
            "engine_step": default_step[v],
            "texts_per_s": len(texts) / median(batch_s[v, s]),
            "vs_engine_step": median([b / t for b, t in zip(batch_s[own], batch_s[v, s])]),
            "one_text_p50_ms": 1000 * median(one_s[v, s]),
            "seconds": batch_s[v, s],
        }
    data = {"model": str(args.model), "texts": len(texts), "threads": args.threads, "rounds": rounds,
            "quick": args.quick, "systems": rows}  # fmt: skip
    cpu = machine().get("cpu", "unknown CPU")
    md = [
        f"Width steps per engine (`python benchmarks/width_step.py --name {args.name}`; {len(texts)} emotion "
        f"test texts, {args.threads} threads, {cpu}, median of {rounds} interleaved rounds; the engine's own "
        "step in bold).",
        "",
        *markdown_table(
            ("engine, step", "texts/s", "× the engine's own step", "one text p50 ms"),
            (
                (
                    f"**{name}**" if r["step"] == r["engine_step"] else name,
                    f"{r['texts_per_s']:.1f}",
                    f"{r['vs_engine_step']:.3f}×",
                    f"{r['one_text_p50_ms']:.2f}",
                )  # fmt: skip
                for name, r in rows.items()
            ),
        ),
        "",
    ]
    stem = f"width_step_{args.name}"
    write_results(stem, data, "\n".join(md), models=[args.model], code=RUNTIME_HOT_PATH)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.8 + 0.4 * len(rows)))
    names = list(rows)[::-1]
    colors = ["tab:blue" if rows[n]["step"] == rows[n]["engine_step"] else "tab:gray" for n in names]
    axes[0].barh(names, [rows[n]["texts_per_s"] for n in names], color=colors)
    axes[0].set_xlabel("texts/s, one call (higher is better)")
    axes[1].barh(names, [rows[n]["one_text_p50_ms"] for n in names], color=colors)
    axes[1].set_xlabel("one text p50, ms (lower is better)")
    axes[1].set_yticklabels([])
    fig.suptitle(f"{args.name}: width steps ({cpu}, {args.threads} threads)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, RESULTS / f"{stem}.png")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
