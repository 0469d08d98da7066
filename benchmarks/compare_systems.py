"""PyTorch, Optimum, OpenVINO and this runtime side by side, against the machine's limit.

    python benchmarks/compare_systems.py [--full-size build/distilbert-base] \
        [--trained build/emotion-minilm-l6/onnx] [--quick]

Models (an exported model directory each; the PyTorch checkpoint is the one its manifest
records, or --*-checkpoint):
- full-size: DistilBERT-base with random weights and the real vocab (speed only), made by
  `python benchmarks/export_full_size.py`;
- trained: the embedded default model's run (speed, accuracy, agreement), made by the recipe
  in models/emotion-minilm-l6/README.md.
Systems (benchmarks/systems.py, one process each, all alive, interleaved workload by workload
and round by round): transformers pipeline fp32 (at its best of 1 or 2 threads), PyTorch
dynamic int8, Optimum fp32 and avx512_vnni int8 through Optimum's pipeline, OpenVINO on our
fp32 ONNX (default precision hint, f32 forced, and OpenVINO's NNCF INT8 recipe in its latency
and its throughput mode), CTranslate2
int8, and this runtime: fp32, int8 (onnxruntime) and int8-openvino (the OpenVINO engine, when the
model was exported with --openvino).
Workloads: the emotion test split (2000 texts) as one batch job; 500 texts one at a time;
100 long texts (300-500 tokens, built from test texts); batch drift (300 texts classified alone
against the same texts in the batch job: the largest logit difference); cold start (fresh
process → import → load → first prediction; our OpenVINO engine with its compile cache filled,
as on every start after a machine's first, and that first start beside it); peak RSS (VmHWM); install footprint.
Results: benchmarks/results/compare_systems.{json,md} and compare_systems_*.png; the README
table comes from `python benchmarks/update_docs.py`. --quick runs every system on a small
slice (the CI smoke run) and asserts nothing about speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import footprint
import numpy as np
from common import (
    REPO,
    RESULTS,
    RUNTIME_HOT_PATH,
    Worker,
    arguments,
    machine,
    median,
    percentile,
    read_split,
    write_results,
)
from systems import SYSTEMS, ours_variant

from emotion_onnx.manifest import is_model_dir

HERE = Path(__file__).resolve().parent

GOALS = {
    "int8_batch_vs_pipeline_fp32": 15.0,
    "int8_batch_vs_optimum_int8": 1.5,
    # OpenVINO's fastest path here: NNCF INT8 (latency or throughput mode) or its default precision
    "int8_batch_vs_openvino_best": 1.2,
    "p50_vs_openvino_best": 1.0,
    "p50_ms": 5.0,
    "cold_start_s": 1.0,
    "peak_rss_mb": 300.0,
    "accuracy_delta_pt": 0.3,
}


COLD_TEXT = "i feel a bit anxious about the interview tomorrow"


def system_cmd(system: str, model: Path, checkpoint: Path, cache: Path, *extra: str) -> list[str]:
    """The command line of benchmarks/systems.py for one system (extra: --threads, --cold, --prepare)."""
    return [sys.executable, str(HERE / "systems.py"), system, "--model", str(model), "--checkpoint",
            str(checkpoint), "--cache", str(cache), *extra]  # fmt: skip


def worker(system: str, model: Path, checkpoint: Path, cache: Path, threads: int) -> Worker:
    """One system in its own process, answering the commands of systems.jobs."""
    return Worker(system, system_cmd(system, model, checkpoint, cache, "--threads", str(threads)), env=_env(cache))


def _cold(r: dict) -> str:
    first = f" (first {r['first_start_s']:.2f})" if "first_start_s" in r else ""
    return f"{r['cold_start_s']:.2f}{first}"


def _env(cache: Path | None = None, compile_cache: Path | None = None) -> dict:
    """The systems' environment. Our OpenVINO engine keeps its compiled models in the benchmark
    cache (as it would in ~/.cache), or in `compile_cache` for a first start."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
    if compile_cache or cache:
        env["EMOTION_ONNX_CACHE_DIR"] = str(compile_cache or cache / "compile-cache")
    return env


def checkpoint_of(model_dir: Path) -> Path:
    from emotion_onnx import manifest as manifest_io

    source = manifest_io.load(model_dir).source
    # a local checkpoint is recorded by its content hash and its path relative to the run (the model's parent)
    path = model_dir.parent / source["model"] if source.get("content_sha256") else None
    if path is None or not path.is_dir():
        raise SystemExit(f"{model_dir}: its manifest names no local checkpoint here; pass the checkpoint explicitly")
    return path


def long_texts(model_dir: Path, texts: list[str], count: int, lo: int = 300, hi: int = 500) -> list[str]:
    """Consecutive test texts joined until each holds lo..hi tokens (this model's tokenizer)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    out, current, i = [], [], 0
    while len(out) < count:
        current.append(texts[i % len(texts)])
        i += 1
        n = len(tok.encode(" ".join(current)).ids)
        if n >= lo:
            if n <= hi:
                out.append(" ".join(current))
            current = []
    return out


def macs_per_text(checkpoint: Path, lengths: list[int], labels: int) -> np.ndarray:
    """Multiply-accumulates for each text from the model's config and its real token count:
    per layer n·(4d² + 2·d·d_ff) for the projections and FFN plus 2·n²·d for attention,
    and the classification head on one token."""
    cfg = json.loads((checkpoint / "config.json").read_text())
    d = cfg.get("dim") or cfg["hidden_size"]
    ff = cfg.get("hidden_dim") or cfg["intermediate_size"]
    layers = cfg.get("n_layers") or cfg["num_hidden_layers"]
    n = np.asarray(lengths, dtype=np.float64)
    return layers * (n * (4 * d * d + 2 * d * ff) + 2 * n * n * d) + d * d + d * labels


def available(system: str, model: Path) -> bool:
    """Whether a system can run on this model here: its package is installed, and for our rows,
    the model directory has the variant."""
    import importlib.util

    needs = {"openvino-default": "openvino", "openvino-f32": "openvino", "openvino-int8": "nncf",
             "openvino-int8-throughput": "nncf", "ctranslate2-int8": "ctranslate2",
             "ours-openvino": "openvino"}.get(system)  # fmt: skip
    if needs and importlib.util.find_spec(needs) is None:
        return False
    return not system.startswith("ours-") or ours_variant(system, model) is not None


def cold_start(system: str, model: Path, checkpoint: Path, cache: Path, threads: int, runs: int,
               first: bool = False) -> float:  # fmt: skip
    """Median wall time of a fresh process that loads the system and classifies one text. With
    `first`, each start finds an empty compile cache (the first start on a machine)."""
    walls = []
    for _ in range(runs):
        cmd = system_cmd(system, model, checkpoint, cache, "--threads", str(threads), "--cold", COLD_TEXT)
        with tempfile.TemporaryDirectory(prefix="compile-cache-") as empty:
            env = _env(cache, Path(empty) if first else None)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            walls.append(time.perf_counter() - t0)
    return median(walls)


def bench_model(name: str, model: Path, checkpoint: Path, args, labels_known: bool) -> dict:
    from emotion_onnx.manifest import load as load_manifest
    from emotion_onnx.tokenization import TextEncoder

    quick = args.quick
    texts, labels = read_split("test", 64 if quick else None)
    single = texts[: 20 if quick else 500]
    longs = long_texts(model, texts if not quick else read_split("test")[0], 8 if quick else 100)
    # Optimum's exports, cached per checkpoint (path and weights' mtime), never per name
    weights = max((checkpoint / f).stat().st_mtime for f in os.listdir(checkpoint))
    key = hashlib.sha1(f"{checkpoint.resolve()}:{weights}".encode()).hexdigest()[:12]
    cache = REPO / "build" / "bench-cache" / f"{name}-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    print(f"[{name}] preparing Optimum exports", file=sys.stderr)
    subprocess.run(system_cmd("optimum-fp32", model, checkpoint, cache, "--prepare"), check=True, env=_env(cache))
    manifest = load_manifest(model)
    encoder = TextEncoder(manifest)
    lengths = {k: [len(e.ids) for e in encoder.encode(v)] for k, v in (("batch", texts), ("long", longs))}
    macs = {k: float(macs_per_text(checkpoint, v, len(manifest.labels)).sum()) for k, v in lengths.items()}

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmp = Path(tmp)
        files = {}
        for key, items in (
            ("batch", texts),
            ("single", single),
            ("long", longs),
            ("probe", texts[: 16 if quick else 300]),
        ):
            files[key] = tmp / f"{key}.json"
            files[key].write_text(json.dumps(items))

        # PyTorch at its best thread setting (1 or 2), probed on a slice
        probe = {}
        for threads in (1, 2):
            w = worker("pytorch-fp32", model, checkpoint, cache, threads)
            w.ask(op="batch", texts=str(files["probe"]))
            probe[threads] = median([w.ask(op="batch", texts=str(files["probe"]))["seconds"] for _ in range(2)])
            w.close()
        pt_threads = min(probe, key=probe.get)
        print(f"[{name}] pytorch threads: {probe} -> {pt_threads}", file=sys.stderr)

        systems = [s for s in SYSTEMS if s in args.systems and available(s, model)]
        threads_of = {s: (pt_threads if s.startswith("pytorch") else args.threads) for s in systems}
        workers = {}
        for s in systems:
            print(f"[{name}] loading {s}", file=sys.stderr)
            workers[s] = worker(s, model, checkpoint, cache, threads_of[s])
        results = {s: {"threads": threads_of[s], "load_s": workers[s].load_s, "batch_s": [], "long_s": [],
                       "latencies": []} for s in systems}  # fmt: skip
        for w in workers.values():  # warm-up
            w.ask(op="batch", texts=str(files["probe"]))
        rounds = 1 if quick else args.rounds
        for r in range(rounds):
            for s, w in workers.items():
                out = tmp / f"{s}.npy" if r == 0 else None
                results[s]["batch_s"].append(
                    w.ask(op="batch", texts=str(files["batch"]), logits=str(out) if out else None)["seconds"]
                )
                print(
                    f"[{name}] round {r} batch {s}: {len(texts) / results[s]['batch_s'][-1]:.1f} texts/s",
                    file=sys.stderr,
                )
            for s, w in workers.items():
                results[s]["latencies"] += w.ask(op="latency", texts=str(files["single"]))["latencies"]
            for s, w in workers.items():
                results[s]["long_s"].append(w.ask(op="batch", texts=str(files["long"]))["seconds"])
        for s, w in workers.items():
            w.ask(op="alone", texts=str(files["probe"]), logits=str(tmp / f"{s}_alone.npy"))
        for s, w in workers.items():
            info = w.ask(op="rss")
            results[s]["peak_rss_mb"] = info["vmhwm_kb"] / 1024
            if info.get("precision"):
                results[s]["inference_precision"] = info["precision"]
            w.close()
        logits = {s: np.load(tmp / f"{s}.npy") for s in systems}
        alone = {s: np.load(tmp / f"{s}_alone.npy") for s in systems}

    for s in systems:
        print(f"[{name}] cold start {s}", file=sys.stderr)
        runs = 1 if quick else args.cold_runs
        results[s]["cold_start_s"] = cold_start(s, model, checkpoint, cache, threads_of[s], runs)
        if s == "ours-openvino":  # the one system with a compile cache: its first start too
            results[s]["first_start_s"] = cold_start(s, model, checkpoint, cache, threads_of[s], runs, first=True)

    # every system compared on the default answer's columns: the peers return a neutral logit too
    # where the model has one, this runtime's default answer does not
    columns = manifest.answer_columns(False)
    logits, alone = ({s: answer_logits(z, columns) for s, z in d.items()} for d in (logits, alone))
    answer = manifest.answer_labels(False)
    label_ids = np.asarray([answer.index(x) if isinstance(x, str) else x for x in labels])
    ref = logits.get("pytorch-fp32")
    for s in systems:
        r = results[s]
        r["batch_texts_per_s"] = len(texts) / median(r["batch_s"])
        r["long_texts_per_s"] = len(longs) / median(r["long_s"])
        r["p50_ms"] = 1000 * percentile(r["latencies"], 50)
        r["p99_ms"] = 1000 * percentile(r["latencies"], 99)
        del r["latencies"]
        r["batch_gmacs"] = macs["batch"] / median(r["batch_s"]) / 1e9
        r["long_gmacs"] = macs["long"] / median(r["long_s"]) / 1e9
        r["batch_drift"] = float(np.abs(alone[s] - logits[s][: len(alone[s])]).max())
        pred = logits[s].argmax(1)
        if labels_known:
            r["accuracy"] = float((pred == label_ids).mean())
        if ref is not None:
            r["agreement_with_pytorch"] = float((pred == ref.argmax(1)).mean())
            r["max_abs_logit_diff"] = float(np.abs(logits[s] - ref).max())
    return {
        "checkpoint": str(checkpoint),
        "texts": {"batch": len(texts), "single": len(single), "long": len(longs)},
        "tokens": {k: int(sum(v)) for k, v in lengths.items()},
        "long_token_range": [min(lengths["long"]), max(lengths["long"])],
        "macs": macs,
        "pytorch_thread_probe_s": probe,
        "systems": results,
    }


def answer_logits(z: np.ndarray, columns: list[int]) -> np.ndarray:
    """A system's logits on the default answer's columns (already so when it returns no others)."""
    return z if z.shape[1] == len(columns) else z[:, columns]


def best_of_ours(systems: dict) -> tuple[str, dict] | None:
    """Our fastest int8 row on the batch job (onnxruntime or the OpenVINO engine)."""
    rows = [(n, systems[n]) for n in ("ours-int8", "ours-openvino") if n in systems]
    return max(rows, key=lambda nr: nr[1]["batch_texts_per_s"]) if rows else None


def evaluate_goals(model: dict, accuracy: bool) -> dict:
    s = model["systems"]
    best = best_of_ours(s)
    if best is None:
        return {}
    ours_name, ours = best
    goals = {}

    def record(key: str, value: float, higher_is_better: bool = True) -> None:
        target = GOALS[key]
        met = value >= target if higher_is_better else value <= target
        goals[key] = {"value": value, "goal": target, "met": bool(met),
                      "gap": 0.0 if met else (target - value if higher_is_better else value - target)}  # fmt: skip

    if "pytorch-fp32" in s:
        record("int8_batch_vs_pipeline_fp32", ours["batch_texts_per_s"] / s["pytorch-fp32"]["batch_texts_per_s"])
    if "optimum-int8" in s:
        record("int8_batch_vs_optimum_int8", ours["batch_texts_per_s"] / s["optimum-int8"]["batch_texts_per_s"])
    openvino = [s[n] for n in ("openvino-int8", "openvino-int8-throughput", "openvino-default") if n in s]
    if openvino:
        fastest = max(r["batch_texts_per_s"] for r in openvino)
        record("int8_batch_vs_openvino_best", ours["batch_texts_per_s"] / fastest)
        record("p50_vs_openvino_best", ours["p50_ms"] / min(r["p50_ms"] for r in openvino), higher_is_better=False)
    record("p50_ms", ours["p50_ms"], higher_is_better=False)
    record("cold_start_s", ours["cold_start_s"], higher_is_better=False)
    record("peak_rss_mb", ours["peak_rss_mb"], higher_is_better=False)
    if accuracy and "accuracy" in ours and "pytorch-fp32" in s:
        record("accuracy_delta_pt", abs(ours["accuracy"] - s["pytorch-fp32"]["accuracy"]) * 100, higher_is_better=False)
    return {"system": ours_name, **goals}


def _verdict(goal: dict) -> str:
    return "met" if goal["met"] else f"MISSED by {goal['gap']:.3g}"


def markdown(data: dict) -> str:
    lines = [
        "Systems side by side (`python benchmarks/compare_systems.py`; one run, systems interleaved; "
        f"{data['machine'].get('cpus_usable', '?')} cores, {data['machine'].get('cpu', '?')}).",
        "",
    ]
    for name, model in data["models"].items():
        s = model["systems"]
        base = s.get("pytorch-fp32", {}).get("batch_texts_per_s")
        acc = any("accuracy" in r for r in s.values())
        lo, hi = model["long_token_range"]
        lines += [
            f"**{name}** ({model['texts']['batch']} test texts, {model['tokens']['batch']} tokens; "
            f"{model['texts']['long']} long texts of {lo}–{hi} tokens; "
            f"latency over {model['texts']['single']} texts one at a time):",
            "",
            "| system | threads | batch texts/s | × pipeline | long texts/s | p50 ms | p99 ms | cold start s "
            "| peak RSS MB | useful GMAC/s (batch) | batch drift |" + (" accuracy | agreement |" if acc else ""),
            "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if acc else ""),
        ]
        for sysname, r in s.items():
            label = sysname + (f" ({r['inference_precision']})" if r.get("inference_precision") else "")
            ratio = f"{r['batch_texts_per_s'] / base:.1f}×" if base else "—"
            row = (f"| {label} | {r['threads']} | {r['batch_texts_per_s']:.1f} | {ratio} | {r['long_texts_per_s']:.1f} "
                   f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {_cold(r)} | {r['peak_rss_mb']:.0f} "
                   f"| {r['batch_gmacs']:.0f} | {r['batch_drift']:.1e} |")  # fmt: skip
            if acc:
                nan = float("nan")
                row += f" {100 * r.get('accuracy', nan):.2f} % | {100 * r.get('agreement_with_pytorch', nan):.2f} % |"
            lines.append(row)
        goals = dict(data["goals"].get(name, {}))
        if goals:
            who = goals.pop("system")
            lines += ["", f"Goals for our fastest int8 row ({who}): " + "; ".join(
                f"{k} = {g['value']:.4g} (goal {g['goal']:g}: {_verdict(g)})"
                for k, g in goals.items())]  # fmt: skip
        lines.append("")
    fp = data["footprint"]
    lines += [
        f"Install footprint (files of the dependency closure, `benchmarks/footprint.py`): runtime only "
        f"**{fp['runtime_mb']:.0f} MB** ({', '.join(fp['runtime_distributions'])}); transformers + torch "
        f"**{fp['torch_stack_mb']:.0f} MB** ({len(fp['torch_stack_distributions'])} distributions).",
        "",
    ]
    return "\n".join(lines)


def summary_markdown(data: dict) -> str:
    """The README's table: every system on both models, side by side (one interleaved run)."""
    models = data["models"]
    names = list(dict.fromkeys(n for m in models.values() for n in m["systems"]))

    def cell(model: str, system: str, key: str, fmt: str) -> str:
        r = models.get(model, {}).get("systems", {}).get(system, {})
        return format(r[key], fmt) if r.get(key) is not None else "—"

    machine = data.get("machine", {})
    lines = [
        f"{machine.get('cpus_usable', '?')} cores of an {machine.get('cpu', '?')} "
        f"({data.get('date', '?')}, `python benchmarks/compare_systems.py`; details in docs/benchmarks.md).",
        "",
        "| system | full-size texts/s | embedded model texts/s | one text p50, full / embedded | batch drift "
        "| agreement with PyTorch | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in names:
        lines.append(
            f"| {n} | {cell('full-size', n, 'batch_texts_per_s', '.0f')} "
            f"| {cell('trained', n, 'batch_texts_per_s', '.0f')} "
            f"| {cell('full-size', n, 'p50_ms', '.2f')} / {cell('trained', n, 'p50_ms', '.2f')} ms "
            f"| {cell('full-size', n, 'batch_drift', '.1e')} | {cell('trained', n, 'agreement_with_pytorch', '.2%')} "
            f"| {cell('trained', n, 'accuracy', '.2%')} |"
        )
    return "\n".join(lines) + "\n"


def plots(data: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, model in data["models"].items():
        s = model["systems"]
        names = list(s)
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        colors = ["#2a7" if n.startswith("ours") else "#888" for n in names]
        axes[0].barh(names, [s[n]["batch_texts_per_s"] for n in names], color=colors)
        axes[0].set_xlabel("texts/s, emotion test split (higher is better)")
        axes[1].barh(names, [s[n]["p50_ms"] for n in names], color=colors, label="p50")
        axes[1].scatter([s[n]["p99_ms"] for n in names], names, color="k", marker="|", s=200, label="p99")
        axes[1].set_xlabel("single-text latency, ms (lower is better)")
        axes[1].legend()
        axes[2].barh(names, [s[n]["batch_gmacs"] for n in names], color=colors)
        axes[2].set_xlabel("useful GMAC/s (batch)")
        for ax in axes[1:]:
            ax.set_yticklabels([])
        fig.suptitle(f"{name}: {model['texts']['batch']} texts, {data['machine'].get('cpus_usable', '?')} cores")
        fig.tight_layout()
        fig.savefig(RESULTS / f"compare_systems_{name}.png", dpi=110)
        plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, threads=True, quick="a small slice of everything (CI smoke run)")
    p.add_argument("--full-size", type=Path, default=REPO / "build" / "distilbert-base")
    p.add_argument("--full-size-checkpoint", type=Path)
    p.add_argument("--trained", type=Path, default=REPO / "build" / "emotion-minilm-l6" / "onnx")
    p.add_argument("--trained-checkpoint", type=Path)
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--cold-runs", type=int, default=2)
    p.add_argument("--skip", nargs="*", default=[], choices=("full-size", "trained"), help="models to leave out")
    args = p.parse_args(argv)
    if "pytorch-fp32" not in args.systems:
        args.systems.insert(0, "pytorch-fp32")  # the reference every ratio is taken against
    started = time.perf_counter()
    models = {}
    for key, model, ckpt, accuracy in (
        ("full-size", args.full_size, args.full_size_checkpoint, False),
        ("trained", args.trained, args.trained_checkpoint, True),
    ):
        if key in args.skip:
            continue
        if not is_model_dir(model):
            raise SystemExit(f"{model}: no exported model; see this script's --help for how to make it")
        models[key] = bench_model(key, model, ckpt or checkpoint_of(model), args, accuracy)
    data = {
        "quick": args.quick,
        "footprint": footprint.measure(),
        "models": models,
        "goals": {k: evaluate_goals(m, k == "trained") for k, m in models.items()},
        "wall_s": time.perf_counter() - started,
    }
    data["machine"] = machine()
    md = markdown(data)
    paths = {"full-size": args.full_size, "trained": args.trained}
    write_results("compare_systems", data, md, models=[paths[k] for k in models], code=RUNTIME_HOT_PATH)
    plots(data)
    print(md)
    print(f"wall time {data['wall_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
