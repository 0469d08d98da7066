"""Where one short text's latency goes: end to end, tokenisation, the bare session call,
and onnxruntime's per-op kernel times, for one or more variants of an exported model.

    python benchmarks/latency_breakdown.py MODEL_DIR [VARIANT ...] [--runs 300]

The text is the shortest 18-22-token text of the emotion test split (the one
`runtime_speed.py` times). Prints a table; nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import kernel_profile, percentile, read_split, short_text, timed


def breakdown(clf, texts: list[str], runs: int) -> None:
    short = short_text(clf, texts)
    enc = clf.encoder.encode([short])
    feeds = clf.encoder.pad(enc)
    rows = {
        "clf([text]) end to end": timed(lambda: clf([short]), runs),
        "tokenise": timed(lambda: clf.encoder.encode([short]), runs),
        "session.run": timed(lambda: clf.session.run(None, feeds), runs),
    }
    print(f"\n{clf.variant.name} ({len(enc[0].ids)} tokens): {short!r}")
    for name, values in rows.items():
        p50, p90 = percentile(values, 50) * 1e3, percentile(values, 90) * 1e3
        print(f"  {name:28s} p50 {p50:6.3f} ms  p90 {p90:6.3f} ms")

    def repeat_run(session) -> None:
        for _ in range(runs):
            session.run(None, feeds)

    totals, counts = kernel_profile(clf, repeat_run)
    by = {op: us / runs for op, us in totals.items()}
    total = sum(by.values())
    print(f"  kernel time {total / 1e3:.3f} ms per call over {sum(counts.values())} nodes")
    for op, us in sorted(by.items(), key=lambda kv: -kv[1]):
        print(f"    {op:28s} {counts[op]:4d} nodes {us:8.1f} us  {us / total:5.1%}  {us / counts[op]:6.1f} us/node")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("variants", nargs="*", default=[None])
    p.add_argument("--runs", type=int, default=300)
    args = p.parse_args(argv)

    from emotion_onnx import EmotionClassifier

    texts, _ = read_split("test", 500)
    for variant in args.variants:
        breakdown(EmotionClassifier(args.model, variant=variant), texts, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
