"""One batch at a time on every thread, against whole batches side by side, one thread each.

    python benchmarks/side_by_side.py --model build/emotion-minilm-l6/onnx-ov --name emotion-minilm-l6 \
        [--rounds 12] [--quick]

The same question asked of this runtime and of OpenVINO, so the comparison with OpenVINO stays
fair: this runtime with `batch_workers=1` and with its default (one worker per thread), on its
onnxruntime INT8 variant and, where the model has one, its OpenVINO variant; OpenVINO's own NNCF
INT8 (systems.py's peer) in its latency mode (one stream, batches in turn, as compare_systems.py
runs it) and its throughput mode (one stream per core, an AsyncInferQueue). Each system runs in
its own process, all alive, one pass over the emotion test split per round, round-robin.
Reported: the median texts/s over the rounds and the median of the per-round ratios to the row's
one-at-a-time twin. Results: benchmarks/results/side_by_side_NAME.{json,md,png}.
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

# system -> the row it is measured against (its one-at-a-time twin)
SYSTEMS = {
    "ours-int8 one at a time": "ours-int8 one at a time",
    "ours-int8 side by side": "ours-int8 one at a time",
    "ours-openvino one at a time": "ours-openvino one at a time",
    "ours-openvino side by side": "ours-openvino one at a time",
    "openvino-int8 latency mode": "openvino-int8 latency mode",
    "openvino-int8 throughput mode": "openvino-int8 latency mode",
}


def load(system: str, model_dir: Path, cache: Path, threads: int):
    from systems import OpenVinoSystem, OpenVinoThroughput, OursSystem, nncf_int8

    if system.startswith("ours-"):
        variant = "int8" if system.startswith("ours-int8") else "int8-openvino"
        options = {"batch_workers": 1} if system.endswith("one at a time") else {}
        return OursSystem(model_dir, threads, variant, **options)
    if system == "openvino-int8 latency mode":
        return OpenVinoSystem(model_dir, threads, None, nncf_int8(model_dir, cache))
    return OpenVinoThroughput(model_dir, threads, None, nncf_int8(model_dir, cache))


def jobs(system: str, model_dir: Path, cache: Path, threads: int, texts_file: Path) -> dict:
    """Worker side: load, one untimed pass; then each "batch" command times one pass."""
    texts = json.loads(texts_file.read_text())
    sys_obj = load(system, model_dir, cache, threads)
    sys_obj.batch(texts)

    def batch(cmd: dict) -> dict:
        t0 = time.perf_counter()
        sys_obj.batch(texts)
        return {"seconds": time.perf_counter() - t0}

    return {"batch": batch}


def available(system: str, model_dir: Path) -> bool:
    import importlib.util

    from emotion_onnx import manifest as manifest_io

    if system.startswith("ours-openvino"):
        return "int8-openvino" in manifest_io.load(model_dir).variants and importlib.util.find_spec("openvino")
    if system.startswith("openvino-"):
        return bool(importlib.util.find_spec("openvino") and importlib.util.find_spec("nncf"))
    return True


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, model=REPO / "build" / "emotion-minilm-l6" / "onnx-ov", name="emotion-minilm-l6",
                  threads=True, quick="two rounds on 100 texts (the CI smoke run)")  # fmt: skip
    p.add_argument("--cache", type=Path, help="where OpenVINO's NNCF model is built (default build/bench-cache/NAME)")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--serve", choices=SYSTEMS, help=argparse.SUPPRESS)
    p.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cache = args.cache or REPO / "build" / "bench-cache" / args.name
    if args.serve:
        return answer_jobs(lambda: jobs(args.serve, args.model, cache, args.threads, args.texts))

    texts, _ = read_split("test", 100 if args.quick else None)
    rounds = 2 if args.quick else args.rounds
    systems = [s for s in SYSTEMS if available(s, args.model)]
    if any(s.startswith("openvino-") for s in systems):  # OpenVINO's NNCF model, built once before any timing
        from systems import nncf_int8

        nncf_int8(args.model, cache)
    RESULTS.mkdir(parents=True, exist_ok=True)
    texts_file = RESULTS / f".side_by_side_{args.name}_texts.json"
    texts_file.write_text(json.dumps(texts))
    workers = {}
    try:
        for system in systems:
            cmd = [sys.executable, __file__, "--serve", system, "--model", str(args.model), "--cache", str(cache),
                   "--threads", str(args.threads), "--texts", str(texts_file)]  # fmt: skip
            workers[system] = Worker(system, cmd)
        seconds: dict[str, list[float]] = {s: [] for s in systems}
        for _ in range(rounds):
            for system, worker in workers.items():
                seconds[system].append(worker.ask(op="batch")["seconds"])
    finally:
        for worker in workers.values():
            worker.close()
        texts_file.unlink(missing_ok=True)

    rows = {}
    for system in systems:
        twin = SYSTEMS[system]
        ratios = [b / t for b, t in zip(seconds[twin], seconds[system])]
        rows[system] = {"texts_per_s": len(texts) / median(seconds[system]), "vs_twin": median(ratios),
                        "twin": twin, "seconds": seconds[system]}  # fmt: skip
    data = {"model": str(args.model), "texts": len(texts), "threads": args.threads, "rounds": rounds,
            "quick": args.quick, "systems": rows}  # fmt: skip
    cpu = machine().get("cpu", "unknown CPU")
    md = [
        f"One batch at a time against batches side by side (`python benchmarks/side_by_side.py --name {args.name}`; "
        f"{len(texts)} emotion test texts, {args.threads} threads, {cpu}, median of {rounds} interleaved rounds).",
        "",
        *markdown_table(
            ("system", "texts/s", "× its one-at-a-time twin"),
            ((s, f"{r['texts_per_s']:.1f}", f"{r['vs_twin']:.2f}×") for s, r in rows.items()),
        ),  # fmt: skip
        "",
    ]
    stem = f"side_by_side_{args.name}"
    write_results(stem, data, "\n".join(md), models=[args.model], code=RUNTIME_HOT_PATH)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(rows)))
    names = list(rows)[::-1]
    ax.barh(names, [rows[n]["texts_per_s"] for n in names],
            color=["tab:blue" if n.startswith("ours") else "tab:gray" for n in names])  # fmt: skip
    ax.set_xlabel("texts/s (higher is better)")
    ax.set_title(f"{args.name}: one batch at a time vs side by side ({cpu}, {args.threads} threads)", fontsize=9)
    save_figure(fig, RESULTS / f"{stem}.png")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
