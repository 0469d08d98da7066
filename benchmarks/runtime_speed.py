"""Runtime speed on one exported model: bucketing vs fixed batches, single-text latency,
cold start and peak RSS.

    python benchmarks/runtime_speed.py --model MODEL_DIR [--name NAME] [--quick]

Texts: the emotion test split (2000 real texts). Everything runs on the same onnxruntime
session, interleaved, and the figures are medians. The single-text latency is taken in one
block of calls after each throughput round, so its blocks span the whole run (this shared
host's speed drifts by tens of percent within minutes); each block also times bare
`session.run` on the same text, to separate the runtime's own cost from onnxruntime's.
Results go to benchmarks/results/runtime_speed[_NAME].{json,md,png}.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from common import (
    RESULTS,
    RUNTIME_HOT_PATH,
    arguments,
    interleaved,
    median,
    on_machine,
    percentile,
    read_split,
    short_text,
    write_results,
)

COLD_START = """
import sys, time
t0 = time.perf_counter()
from emotion_onnx import EmotionClassifier
t_import = time.perf_counter()
clf = EmotionClassifier({model!r}{variant})
t_load = time.perf_counter()
clf("i feel a little nervous about tomorrow")
t_first = time.perf_counter()
print("first", flush=True)
texts = [line for line in open({texts!r}).read().splitlines()]
clf.predict_proba(texts)
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report the parent's size
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(t_import - t0, t_load - t_import, t_first - t_load, hwm)
"""


def fixed_batches(clf, texts: list[str], size: int = 32):
    """The plain loop: batches of 32 in input order, each padded to its longest text."""
    for start in range(0, len(texts), size):
        feeds = clf.encoder.pad(clf.encoder.encode(texts[start : start + size]))
        clf.session.run(clf._outputs, feeds)


def latency_block(clf, text: str, calls: int) -> dict[str, list[float]]:
    """`calls` timings each of clf([text]) and of bare session.run on its inputs, alternating."""
    feeds = clf.encoder.pad(clf.encoder.encode([text]))
    out: dict[str, list[float]] = {"clf": [], "session_run": []}
    for _ in range(calls):
        t0 = time.perf_counter()
        clf([text])
        t1 = time.perf_counter()
        clf.session.run(clf._outputs, feeds)
        t2 = time.perf_counter()
        out["clf"].append(t1 - t0)
        out["session_run"].append(t2 - t1)
    return out


def cold_start(model: Path, variant: str | None, texts_file: Path, runs: int) -> dict:
    code = COLD_START.format(
        model=str(model), variant=f", variant={variant!r}" if variant else "", texts=str(texts_file)
    )
    walls, parts = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "first"
        walls.append(time.perf_counter() - t0)  # spawn -> first prediction returned
        rest, _ = proc.communicate()
        parts.append([float(x) for x in rest.split()])
    return {
        "process_to_first_prediction_s_median": median(walls),
        "in_process_import_load_first_s_median": median([p[0] + p[1] + p[2] for p in parts]),
        "import_s_median": median([p[0] for p in parts]),
        "load_s_median": median([p[1] for p in parts]),
        "first_prediction_s_median": median([p[2] for p in parts]),
        "peak_rss_mb_after_2000_texts": max(p[3] for p in parts) / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, model="required", name="", repeats=7, quick="200 texts, 1 repeat (CI smoke run)")
    p.add_argument("--variant", help="an onnxruntime variant to measure (default: the fastest)")
    args = p.parse_args(argv)

    from emotion_onnx import EmotionClassifier

    texts, _ = read_split("test", 200 if args.quick else None)
    repeats = 1 if args.quick else args.repeats
    # the fixed-batch loop drives onnxruntime's session itself: by default the fastest onnxruntime variant
    clf = EmotionClassifier(args.model, variant=args.variant, engine=None if args.variant else "onnxruntime")
    clf.logits(texts[:64])  # warm-up
    lengths = [len(e.ids) for e in clf.encoder.encode(texts)]
    short = short_text(clf, texts)
    n_tokens = len(clf.encoder.encode([short])[0].ids)
    systems = {
        "clf (token-budget bucketing)": lambda: clf.logits(texts),
        "fixed batches of 32": lambda: fixed_batches(clf, texts),
    }
    batch: dict[str, list[float]] = {name: [] for name in systems}
    blocks = []
    for _ in range(repeats):
        for name, seconds in interleaved(systems, 1).items():
            batch[name] += seconds
        blocks.append(latency_block(clf, short, 30 if args.quick else 100))
    latencies = [t for b in blocks for t in b["clf"]]
    bare = [t for b in blocks for t in b["session_run"]]
    texts_file = RESULTS / ".cold_start_texts.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    texts_file.write_text("\n".join(texts) + "\n")
    cold = cold_start(args.model, clf.variant.name, texts_file, 2 if args.quick else 5)
    texts_file.unlink()

    bucket_tps = len(texts) / median(batch["clf (token-budget bucketing)"])
    fixed_tps = len(texts) / median(batch["fixed batches of 32"])
    data = {
        "model": str(args.model),
        "variant": clf.variant.name,
        "n_texts": len(texts),
        "mean_tokens": sum(lengths) / len(lengths),
        "repeats": repeats,
        "throughput_texts_per_s": {"bucketed": bucket_tps, "fixed_batches_32": fixed_tps},
        "bucketing_speedup": bucket_tps / fixed_tps,
        "single_text": {
            "tokens": n_tokens,
            "p50_ms": percentile(latencies, 50) * 1e3,
            "p99_ms": percentile(latencies, 99) * 1e3,
            "n": len(latencies),
            "block_p50_ms": [percentile(b["clf"], 50) * 1e3 for b in blocks],
            "session_run_p50_ms": percentile(bare, 50) * 1e3,
            "session_run_block_p50_ms": [percentile(b["session_run"], 50) * 1e3 for b in blocks],
        },
        "cold_start": cold,
        "goals": {
            "bucketing_speedup>=1.3": bucket_tps / fixed_tps >= 1.3,
            "single_text_p50<=5ms": percentile(latencies, 50) * 1e3 <= 5,
            "cold_start<=1s": cold["process_to_first_prediction_s_median"] <= 1.0,
            "peak_rss<=300MB": cold["peak_rss_mb_after_2000_texts"] <= 300,
        },
        "raw_seconds": batch,
    }
    single = data["single_text"]
    md = (
        f"Runtime speed, `{args.model.name}` variant `{clf.variant.name}`, {len(texts)} emotion test texts "
        f"(mean {data['mean_tokens']:.1f} tokens), median of {repeats} interleaved runs; "
        f"{on_machine()}.\n\n"
        "| figure | value | goal |\n|---|---|---|\n"
        f"| token-budget bucketing (clf) | {bucket_tps:.1f} texts/s | |\n"
        f"| fixed batches of 32, padded to longest | {fixed_tps:.1f} texts/s | |\n"
        f"| bucketing speed-up | {bucket_tps / fixed_tps:.2f}× | ≥ 1.3× |\n"
        f"| one {n_tokens}-token text, p50 / p99 | {single['p50_ms']:.2f} / {single['p99_ms']:.2f} ms "
        f"(p50 per block {min(single['block_p50_ms']):.2f} to {max(single['block_p50_ms']):.2f}) | p50 ≤ 5 ms |\n"
        f"| the same text, bare `session.run` p50 | {single['session_run_p50_ms']:.2f} ms (per block "
        f"{min(single['session_run_block_p50_ms']):.2f} to {max(single['session_run_block_p50_ms']):.2f}) | |\n"
        f"| cold start: process → import → load → first prediction | "
        f"{cold['process_to_first_prediction_s_median']:.3f} s (import {cold['import_s_median']:.3f}, load "
        f"{cold['load_s_median']:.3f}, first {cold['first_prediction_s_median']:.3f}) | ≤ 1 s |\n"
        f"| peak RSS after 2000 texts | {cold['peak_rss_mb_after_2000_texts']:.0f} MB | ≤ 300 MB |\n"
    )
    stem = "runtime_speed" + (f"_{args.name}" if args.name else "")
    write_results(stem, data, md, models=[args.model], code=RUNTIME_HOT_PATH)
    plot(data, RESULTS / f"{stem}.png")
    print(md)
    return 0


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 3.8))
    tp = data["throughput_texts_per_s"]
    ax1.bar(["bucketed", "fixed 32"], [tp["bucketed"], tp["fixed_batches_32"]], color=["tab:green", "tab:gray"])
    ax1.set_ylabel("texts/s")
    ax1.set_title(f"2000 test texts ({data['variant']})")
    c = data["cold_start"]
    parts = ["import_s_median", "load_s_median", "first_prediction_s_median"]
    ax2.bar(["import", "load", "first"], [c[k] for k in parts], color="tab:blue")
    ax2.set_ylabel("seconds")
    ax2.set_title(f"cold start {c['process_to_first_prediction_s_median']:.2f} s")
    single = data["single_text"]
    rounds = range(1, len(single["block_p50_ms"]) + 1)
    ax3.plot(rounds, single["block_p50_ms"], "o-", label="clf([text])")
    ax3.plot(rounds, single["session_run_block_p50_ms"], "s--", label="bare session.run")
    ax3.axhline(5.0, color="tab:red", lw=0.8, label="goal 5 ms")
    ax3.set_xlabel("block (after each throughput round)")
    ax3.set_ylabel("p50 ms")
    ax3.set_title(f"one {single['tokens']}-token text")
    ax3.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
