"""A trace of this shared host's speed state: one short text's latency against the CPU clock,
memory bandwidth, the CPU pair's parallel throughput and its core-to-core latency, sampled every
few seconds.

    python benchmarks/host_state.py [--model build/distilbert-base] [--name distilbert-base]
                                    [--seconds 200] [--interval 3] [--also-variant int8-per-tensor]
                                    [--quick]

Each sample times 30 calls each of bare `session.run` and `clf([text])` on the single-text
probe (the shortest 18-22-token test text, as in runtime_speed.py), and 30 calls of the same
`session.run` on a second session limited to 1 thread (and, with --also-variant, the bare
`session.run` of another variant from the same manifest, 2 threads, for comparison). Then it
measures the host, on the first two CPUs this process may use (probes compiled with gcc;
cpu_peak.py holds them):
- the clock: a chain of dependent adds;
- the bandwidth of a 64 MB numpy copy;
- the CPU pair ratio: a throughput-bound multiply-add kernel pinned to each CPU alone, then to
  both at once; the GFLOP/s of both at once over the mean of one alone (about 2 when the two
  CPUs do not share a core);
- the core-to-core latency: two threads, one pinned to each CPU, handing a cache line back and
  forth (one-way ns, median of 3 runs). Tens of ns means the two CPUs share a last-level cache;
  hundreds means the host has placed them on different core complexes.
The samples are then grouped by core-to-core latency (below or above NEAR_NS). Results go to
benchmarks/results/host_state[_NAME].{json,md,png}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS, median, percentile, read_split, short_text, timed, write_results  # noqa: E402
from cpu_peak import (  # noqa: E402
    compile_clock,
    compile_pingpong,
    compile_throughput,
    run_clock,
    run_pingpong,
    run_pinned,
)

GOAL_MS = 5.0
NEAR_NS = 100.0  # one-way core-to-core latency below which the two CPUs share a cache


def p50_ms(fn, calls: int) -> float:
    return percentile(timed(fn, calls, warmup=0), 50) * 1e3


def copy_gbs(src: np.ndarray, dst: np.ndarray, repeats: int = 5) -> float:
    best = min(timed(lambda: np.copyto(dst, src), repeats, warmup=0))
    return 2 * src.nbytes / best / 1e9  # read + write


def cpu_pair(exe: Path | None, cpus: list[int]) -> dict | None:
    """The throughput kernel on each CPU of `cpus` alone, then on both at once (None without gcc or a 2nd CPU)."""
    if exe is None or len(cpus) < 2:
        return None
    alone = [run_pinned(exe, [c])[0] for c in cpus]
    both = run_pinned(exe, cpus)
    return {"cpus": cpus, "alone_gflops": alone, "both_gflops": both, "pair_ratio": sum(both) / (sum(alone) / 2)}


def core_to_core_ns(exe: Path | None, cpus: list[int]) -> float | None:
    if exe is None or len(cpus) < 2:
        return None
    return median([run_pingpong(exe, cpus) for _ in range(3)])


def spread(values: list[float]) -> dict | None:
    return {"min": min(values), "median": median(values), "max": max(values)} if values else None


def group(samples: list[dict], near: bool) -> dict:
    chosen = [s for s in samples if s["core_to_core_ns"] is not None and (s["core_to_core_ns"] < NEAR_NS) == near]
    if not chosen:
        return {"samples": 0}
    return {
        "samples": len(chosen),
        "core_to_core_ns": median([s["core_to_core_ns"] for s in chosen]),
        "session_run_p50_ms": median([s["session_run_p50_ms"] for s in chosen]),
        "session_run_1thread_p50_ms": median([s["session_run_1thread_p50_ms"] for s in chosen]),
        "clf_p50_ms": median([s["clf_p50_ms"] for s in chosen]),
        "also_variant_p50_ms": median([s["also_variant_p50_ms"] for s in chosen])
        if chosen[0]["also_variant_p50_ms"] is not None
        else None,
        "share_clf_within_goal": sum(s["clf_p50_ms"] <= GOAL_MS for s in chosen) / len(chosen),
        "pair_ratio": median([s["cpu_pair"]["pair_ratio"] for s in chosen if s["cpu_pair"]] or [float("nan")]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "build" / "distilbert-base")
    p.add_argument("--name", default="distilbert-base")
    p.add_argument("--seconds", type=float, default=200.0)
    p.add_argument("--interval", type=float, default=3.0, help="pause between samples")
    p.add_argument("--also-variant", help="also time this manifest variant's bare session.run (2 threads)")
    p.add_argument("--quick", action="store_true", help="3 samples of 5 calls: checks the script, not the host")
    args = p.parse_args(argv)

    from emotion_onnx import EmotionClassifier

    clf = EmotionClassifier(args.model)
    one_thread = EmotionClassifier(args.model, intra_op_threads=1)
    also = EmotionClassifier(args.model, variant=args.also_variant) if args.also_variant else None
    texts, _ = read_split("test", 200 if args.quick else None)
    text = short_text(clf, texts)
    feeds = clf.encoder.pad(clf.encoder.encode([text]))
    also_feeds = also.encoder.pad(also.encoder.encode([text])) if also else None
    calls = 5 if args.quick else 30
    for _ in range(20):
        clf([text])
        one_thread.session.run(one_thread._outputs, feeds)
        if also:
            also.session.run(also._outputs, also_feeds)
    cpus = sorted(os.sched_getaffinity(0))[:2]
    src = np.ones((8 if args.quick else 64) * 2**20 // 8)
    dst = np.empty_like(src)
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        clock_exe = compile_clock(Path(tmp))
        pair_exe = compile_throughput(Path(tmp))
        pingpong_exe = compile_pingpong(Path(tmp))
        start = time.perf_counter()
        while (len(samples) < 3) if args.quick else (time.perf_counter() - start < args.seconds):
            samples.append(
                {
                    "t_s": time.perf_counter() - start,
                    "session_run_p50_ms": p50_ms(lambda: clf.session.run(clf._outputs, feeds), calls),
                    "clf_p50_ms": p50_ms(lambda: clf([text]), calls),
                    "session_run_1thread_p50_ms": p50_ms(
                        lambda: one_thread.session.run(one_thread._outputs, feeds), calls
                    ),
                    "also_variant_p50_ms": p50_ms(lambda: also.session.run(also._outputs, also_feeds), calls)
                    if also
                    else None,
                    "core_to_core_ns": core_to_core_ns(pingpong_exe, cpus),
                    "clock_ghz": run_clock(clock_exe) if clock_exe and not args.quick else None,
                    "copy_gb_s": copy_gbs(src, dst),
                    "cpu_pair": cpu_pair(pair_exe, cpus),
                }
            )
            if not args.quick:
                time.sleep(args.interval)

    run = [s["session_run_p50_ms"] for s in samples]
    whole = [s["clf_p50_ms"] for s in samples]
    clocks = [s["clock_ghz"] for s in samples if s["clock_ghz"] is not None]
    ratios = [s["cpu_pair"]["pair_ratio"] for s in samples if s["cpu_pair"]]
    c2c = [s["core_to_core_ns"] for s in samples if s["core_to_core_ns"] is not None]
    data = {
        "model": str(args.model),
        "variant": clf.variant.name,
        "also_variant": args.also_variant,
        "tokens": len(clf.encoder.encode([text])[0].ids),
        "calls_per_sample": calls,
        "cpus": cpus,
        "samples": samples,
        "summary": {
            "session_run_p50_ms": spread(run),
            "clf_p50_ms": spread(whole),
            "session_run_1thread_p50_ms": spread([s["session_run_1thread_p50_ms"] for s in samples]),
            "also_variant_p50_ms": spread([s["also_variant_p50_ms"] for s in samples]) if also else None,
            "share_of_samples_clf_within_goal": sum(x <= GOAL_MS for x in whole) / len(whole),
            "clock_ghz": spread(clocks),
            "copy_gb_s": spread([s["copy_gb_s"] for s in samples]),
            "pair_ratio": spread(ratios),
            "core_to_core_ns": spread(c2c),
            "core_to_core_vs_session_run_correlation": (
                float(np.corrcoef(c2c, run)[0, 1]) if len(c2c) == len(run) > 2 and np.std(c2c) > 0 else None
            ),
            "cpus_near": group(samples, True),
            "cpus_far": group(samples, False),
        },
    }
    md = report(data, args.model.name)
    stem = "host_state" + (f"_{args.name}" if args.name else "")
    write_results(stem, data, md)
    plot(data, RESULTS / f"{stem}.png")
    print(md)
    return 0


def report(data: dict, model_name: str) -> str:
    sm, samples = data["summary"], data["samples"]

    def row(name: str, key: str, fmt: str) -> str:
        v = sm[key]
        return f"| {name} | {v['min']:{fmt}} | {v['median']:{fmt}} | {v['max']:{fmt}} |\n" if v else ""

    md = (
        f"Host state trace, `{model_name}` variant `{data['variant']}`, one {data['tokens']}-token text, "
        f"{len(samples)} samples over {samples[-1]['t_s']:.0f} s, p50 of {data['calls_per_sample']} calls each.\n\n"
        "| figure | min | median | max |\n|---|---|---|---|\n"
        + row("bare `session.run` p50, ms", "session_run_p50_ms", ".2f")
        + row("`clf([text])` p50, ms", "clf_p50_ms", ".2f")
        + row("the same `session.run`, 1 thread, p50, ms", "session_run_1thread_p50_ms", ".2f")
        + row(f"variant `{data['also_variant']}`, bare `session.run` p50, ms", "also_variant_p50_ms", ".2f")
        + row("core-to-core latency, one way, ns", "core_to_core_ns", ".0f")
        + row("CPU pair ratio (both at once / one alone)", "pair_ratio", ".2f")
        + row("clock, GHz", "clock_ghz", ".2f")
        + row("64 MB copy, GB/s", "copy_gb_s", ".1f")
        + f"\nSamples with `clf` p50 ≤ {GOAL_MS:g} ms: {sm['share_of_samples_clf_within_goal']:.0%}."
        + ("" if sm["clock_ghz"] else " Clock not measured (quick mode, or no gcc).")
        + "\n"
    )
    if not sm["core_to_core_ns"]:
        return md + "\nCore-to-core latency not measured (needs gcc and 2 usable CPUs).\n"
    also = data["also_variant"]
    rows = []
    for key, name in (("cpus_near", f"< {NEAR_NS:g} ns"), ("cpus_far", f"≥ {NEAR_NS:g} ns")):
        g = sm[key]
        if not g["samples"]:
            rows.append(f"| {name} | 0 | | | | | | |" + (" |" if also else ""))
            continue
        rows.append(
            f"| {name} | {g['samples']} | {g['core_to_core_ns']:.0f} | {g['session_run_p50_ms']:.2f} | "
            f"{g['session_run_1thread_p50_ms']:.2f} | {g['clf_p50_ms']:.2f} | {g['share_clf_within_goal']:.0%} | "
            f"{g['pair_ratio']:.2f} |" + (f" {g['also_variant_p50_ms']:.2f} |" if also else "")
        )
    corr = sm["core_to_core_vs_session_run_correlation"]
    return (
        md + "\nSamples grouped by core-to-core latency (medians):\n\n"
        "| core-to-core | samples | ns | `session.run` 2 threads, ms | 1 thread, ms | `clf` p50, ms | "
        f"`clf` ≤ {GOAL_MS:g} ms | pair ratio |"
        + (f" `{also}` `session.run`, ms |" if also else "")
        + "\n|---|---|---|---|---|---|---|---|"
        + ("---|" if also else "")
        + "\n"
        + "\n".join(rows)
        + "\n"
        + (
            f"\nCorrelation of core-to-core latency with bare `session.run` p50: {corr:.2f}.\n"
            if corr is not None
            else ""
        )
    )


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = data["samples"]
    t = [s["t_s"] for s in samples]
    fig, (ax, pair_ax) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[2, 1])
    ax.plot(t, [s["clf_p50_ms"] for s in samples], "o-", ms=3, label="clf([text]) p50")
    ax.plot(t, [s["session_run_p50_ms"] for s in samples], "s--", ms=3, label="bare session.run p50")
    ax.plot(t, [s["session_run_1thread_p50_ms"] for s in samples], "^:", ms=3, label="session.run, 1 thread")
    if data["also_variant"]:
        also = [s["also_variant_p50_ms"] for s in samples]
        ax.plot(t, also, "x-.", ms=3, label=f"{data['also_variant']} session.run")
    ax.axhline(GOAL_MS, color="tab:red", lw=0.8, label=f"goal {GOAL_MS:g} ms")
    pair_ax.set_xlabel("seconds")
    ax.set_ylabel("ms")
    c2c = [(x, s["core_to_core_ns"]) for x, s in zip(t, samples) if s["core_to_core_ns"] is not None]
    if c2c:
        pair_ax.plot([x for x, _ in c2c], [v for _, v in c2c], "o-", ms=3, color="tab:green")
        pair_ax.axhline(NEAR_NS, color="tab:gray", lw=0.8, ls="--")
        pair_ax.set_ylim(0, max(v for _, v in c2c) * 1.2)
    pair_ax.set_ylabel("core-to-core ns")
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
