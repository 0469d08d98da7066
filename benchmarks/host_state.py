"""A trace of this shared host's speed state: one short text's latency against the CPU clock
and memory bandwidth, sampled every few seconds.

    python benchmarks/host_state.py [--model build/distilbert-base] [--name distilbert-base]
                                    [--seconds 200] [--interval 3] [--quick]

Each sample times 30 calls each of bare `session.run` and `clf([text])` on the single-text
probe (the shortest 18-22-token test text, as in runtime_speed.py), then the clock (a chain of
dependent adds, compiled with gcc; cpu_peak.py explains it) and the bandwidth of a 64 MB
numpy copy. If latency jumps while the clock and bandwidth stay put, the host (not the model
or the runtime) decides which latency a run sees. Results go to
benchmarks/results/host_state[_NAME].{json,md,png}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS, median, percentile, read_split, short_text, timed, write_results  # noqa: E402
from cpu_peak import compile_clock, run_clock  # noqa: E402

GOAL_MS = 5.0


def p50_ms(fn, calls: int) -> float:
    return percentile(timed(fn, calls, warmup=0), 50) * 1e3


def copy_gbs(src: np.ndarray, dst: np.ndarray, repeats: int = 5) -> float:
    best = min(timed(lambda: np.copyto(dst, src), repeats, warmup=0))
    return 2 * src.nbytes / best / 1e9  # read + write


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "build" / "distilbert-base")
    p.add_argument("--name", default="distilbert-base")
    p.add_argument("--seconds", type=float, default=200.0)
    p.add_argument("--interval", type=float, default=3.0, help="pause between samples")
    p.add_argument("--quick", action="store_true", help="3 samples of 5 calls: checks the script, not the host")
    args = p.parse_args(argv)

    from emotion_onnx import EmotionClassifier

    clf = EmotionClassifier(args.model)
    texts, _ = read_split("test", 200 if args.quick else None)
    text = short_text(clf, texts)
    feeds = clf.encoder.pad(clf.encoder.encode([text]))
    calls = 5 if args.quick else 30
    for _ in range(20):
        clf([text])
    src = np.ones((8 if args.quick else 64) * 2**20 // 8)
    dst = np.empty_like(src)
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        clock_exe = compile_clock(Path(tmp))
        start = time.perf_counter()
        while (len(samples) < 3) if args.quick else (time.perf_counter() - start < args.seconds):
            samples.append(
                {
                    "t_s": time.perf_counter() - start,
                    "session_run_p50_ms": p50_ms(lambda: clf.session.run(clf._outputs, feeds), calls),
                    "clf_p50_ms": p50_ms(lambda: clf([text]), calls),
                    "clock_ghz": run_clock(clock_exe) if clock_exe and not args.quick else None,
                    "copy_gb_s": copy_gbs(src, dst),
                }
            )
            if not args.quick:
                time.sleep(args.interval)

    run = [s["session_run_p50_ms"] for s in samples]
    whole = [s["clf_p50_ms"] for s in samples]
    clocks = [s["clock_ghz"] for s in samples if s["clock_ghz"] is not None]
    copies = [s["copy_gb_s"] for s in samples]
    data = {
        "model": str(args.model),
        "variant": clf.variant.name,
        "tokens": len(clf.encoder.encode([text])[0].ids),
        "calls_per_sample": calls,
        "samples": samples,
        "summary": {
            "session_run_p50_ms": {"min": min(run), "median": median(run), "max": max(run)},
            "clf_p50_ms": {"min": min(whole), "median": median(whole), "max": max(whole)},
            "share_of_samples_clf_within_goal": sum(x <= GOAL_MS for x in whole) / len(whole),
            "clock_ghz": {"min": min(clocks), "max": max(clocks)} if clocks else None,
            "copy_gb_s": {"min": min(copies), "max": max(copies)},
        },
    }
    sm = data["summary"]
    clock_row = (
        f"{sm['clock_ghz']['min']:.2f} to {sm['clock_ghz']['max']:.2f} GHz" if clocks else "not measured (no gcc)"
    )
    md = (
        f"Host state trace, `{args.model.name}` variant `{clf.variant.name}`, one {data['tokens']}-token text, "
        f"{len(samples)} samples over {samples[-1]['t_s']:.0f} s, p50 of {calls} calls each.\n\n"
        "| figure | min | median | max |\n|---|---|---|---|\n"
        f"| bare `session.run` p50, ms | {sm['session_run_p50_ms']['min']:.2f} | "
        f"{sm['session_run_p50_ms']['median']:.2f} | {sm['session_run_p50_ms']['max']:.2f} |\n"
        f"| `clf([text])` p50, ms | {sm['clf_p50_ms']['min']:.2f} | {sm['clf_p50_ms']['median']:.2f} | "
        f"{sm['clf_p50_ms']['max']:.2f} |\n\n"
        f"Samples with `clf` p50 ≤ {GOAL_MS:g} ms: {sm['share_of_samples_clf_within_goal']:.0%}. "
        f"Clock over the trace: {clock_row}. 64 MB copy: {sm['copy_gb_s']['min']:.1f} to "
        f"{sm['copy_gb_s']['max']:.1f} GB/s.\n"
    )
    stem = "host_state" + (f"_{args.name}" if args.name else "")
    write_results(stem, data, md)
    plot(data, RESULTS / f"{stem}.png")
    print(md)
    return 0


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = data["samples"]
    t = [s["t_s"] for s in samples]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(t, [s["clf_p50_ms"] for s in samples], "o-", ms=3, label="clf([text]) p50")
    ax.plot(t, [s["session_run_p50_ms"] for s in samples], "s--", ms=3, label="bare session.run p50")
    ax.axhline(GOAL_MS, color="tab:red", lw=0.8, label=f"goal {GOAL_MS:g} ms")
    ax.set_xlabel("seconds")
    ax.set_ylabel("ms")
    ax.set_title(f"one {data['tokens']}-token text over time ({Path(data['model']).name})")
    if all(s["clock_ghz"] is not None for s in samples):
        twin = ax.twinx()
        twin.plot(t, [s["clock_ghz"] for s in samples], color="tab:gray", lw=0.8, label="clock GHz")
        twin.set_ylabel("clock GHz")
        twin.set_ylim(0, max(s["clock_ghz"] for s in samples) * 1.2)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
