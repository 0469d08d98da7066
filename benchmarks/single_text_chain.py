"""What the per-row activation scales cost one short text: bare `session.run` of the shipped
per-token INT8 graph, of a timing probe with the per-row ops cut out, and of the per-tensor
`quantize_dynamic` graph when the model has one; plus the runtime's own `clf([text])`.

    python benchmarks/single_text_chain.py [--model build/distilbert-base] [--name distilbert-base] [--quick]

The probe is NOT a usable model: it feeds each activation to `QuantizeLinear` without
dividing by its row's max|x| and skips the row rescale after the GEMM (`Abs`, `ReduceMax`,
`Div` and the rescale `Mul` removed, 4 of the 6 ops per quantised activation). Its outputs are
wrong; only its time means something: the price of the per-row chain in standard ONNX ops at
batch 1. All sessions share the runtime's session options and run interleaved, in one process.
Results go to benchmarks/results/single_text_chain[_NAME].{json,md,png}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS, median, percentile, read_split, short_text, timed, write_results  # noqa: E402


def strip_row_scales(src: Path, dst: Path) -> int:
    """Write the timing probe of `src` to `dst`; return how many nodes it removed."""
    import onnx
    from onnx import helper

    from emotion_onnx_export.int8 import drop_dead_nodes

    model = onnx.load(str(src))
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    nodes = []
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and getattr(producer.get(node.input[0]), "op_type", "") == "Div":
            node.input[0] = producer[node.input[0]].input[0]  # the unscaled activation
        if node.op_type == "Mul" and node.name.startswith("rescale"):
            node = helper.make_node("Identity", [node.input[0]], list(node.output), name=node.name)
        nodes.append(node)
    before = len(nodes)
    del graph.node[:]
    graph.node.extend(nodes)
    drop_dead_nodes(graph)  # what nothing reads any more: Abs, ReduceMax, Div
    onnx.save(model, str(dst))
    return before - len(graph.node)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "build" / "distilbert-base")
    p.add_argument("--name", default="distilbert-base")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--calls", type=int, default=200, help="timed calls per system per round")
    p.add_argument("--quick", action="store_true", help="1 round of 5 calls: checks the script, not the speed")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.calls = 1, 5
    import onnxruntime as ort

    from emotion_onnx import EmotionClassifier

    clf = EmotionClassifier(args.model, variant="int8")  # the per-token graph, whichever runs fastest
    texts, _ = read_split("test", 500)
    text = short_text(clf, texts)
    encodings = clf.encoder.encode([text])
    feeds = clf.encoder.pad(encodings)
    options = clf.session.get_session_options()
    sessions = {"per-token int8 (shipped)": clf.session}
    tmp = tempfile.TemporaryDirectory()
    probe = Path(tmp.name) / "probe.onnx"
    removed = strip_row_scales(clf.manifest.directory / clf.variant.ref.file, probe)
    sessions["probe: per-row ops removed"] = ort.InferenceSession(
        str(probe), options, providers=clf.session.get_providers()
    )
    if "int8-per-tensor" in clf.manifest.variants:
        sessions["per-tensor int8 (quantize_dynamic)"] = EmotionClassifier(
            args.model, variant="int8-per-tensor"
        ).session

    def run_bare(session):
        names = {i.name for i in session.get_inputs()}
        f = {k: v for k, v in feeds.items() if k in names}
        return lambda: session.run(None, f)

    systems = {name: run_bare(s) for name, s in sessions.items()}
    systems["clf([text]), shipped"] = lambda: clf([text])
    times: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(args.rounds):
        for name, fn in systems.items():
            times[name] += timed(fn, args.calls)
    tmp.cleanup()
    rows = {
        name: {"p50_ms": median(t) * 1e3, "p99_ms": percentile(t, 99) * 1e3, "calls": len(t)}
        for name, t in times.items()
    }
    data = {
        "model": str(args.model),
        "text_tokens": len(encodings[0].ids),
        "nodes_removed_in_probe": removed,
        "intra_op_threads": options.intra_op_num_threads,
        "rounds": args.rounds,
        "latency": rows,
    }
    shipped = rows["per-token int8 (shipped)"]["p50_ms"]
    md = (
        f"One {data['text_tokens']}-token text, `{args.name}`, {args.rounds} interleaved rounds × {args.calls} calls "
        f"per system (one process, the runtime's session options, {options.intra_op_num_threads} intra-op threads). "
        f"The probe removes {removed} nodes and gives wrong outputs; it only prices the per-row chain.\n\n"
        "| system | p50 | p99 | vs shipped session.run |\n|---|---|---|---|\n"
        + "\n".join(
            f"| {name} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['p50_ms'] - shipped:+.2f} ms |"
            for name, r in rows.items()
        )
        + "\n"
    )
    stem = f"single_text_chain_{args.name}"
    write_results(stem, data, md)
    plot(rows, RESULTS / f"{stem}.png", data["text_tokens"])
    print(md)
    return 0


def plot(rows: dict, path: Path, tokens: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    names = list(rows)
    ax.barh(names, [rows[n]["p50_ms"] for n in names], color="tab:blue")
    ax.axvline(5.0, color="tab:red", linestyle="--", label="5 ms goal")
    ax.set_xlabel("p50 ms")
    ax.set_title(f"one {tokens}-token text")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
