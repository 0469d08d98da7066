"""Shared helpers for the benchmark scripts (never imported by the package or the tests)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# tests point this elsewhere so that a --quick smoke run never overwrites the real results
RESULTS = Path(os.environ.get("EMOTION_ONNX_BENCH_RESULTS", Path(__file__).resolve().parent / "results"))


def vocab_file() -> Path:
    from emotion_onnx_export.data import vocab_file as find

    path = find()
    if path is None:
        raise SystemExit("the uncased BERT vocab was not found beside the emotion dataset; set EMOTION_DATA_DIR")
    return path


def read_split(split: str, limit: int | None = None) -> tuple[list[str], list[int]]:
    """(texts, label ids) of one emotion split, through the project's one reader."""
    from emotion_onnx_export.data import read_split as read

    data = read(split, limit)
    return data.texts, data.labels


def machine() -> dict:
    """What a result was measured on: the CPU's model and flags as lscpu prints them, the usable
    CPUs, Python and onnxruntime."""
    info = {"python": platform.python_version(), "cpus_usable": len(os.sched_getaffinity(0))}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        info["cpu"] = fields.get("Model name", "").strip()
        info["cpu_flags"] = fields.get("Flags", "").strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


def model_or_default(model) -> Path:
    """The model directory a script measured: the one given, or the embedded default."""
    from emotion_onnx import default_model_dir

    return Path(model) if model else default_model_dir()


def on_machine() -> str:
    """How a table names the machine it was measured on: "2 cores of an AMD EPYC"."""
    m = machine()
    return f"{m['cpus_usable']} cores of an {m.get('cpu') or 'unknown CPU'}"


def interleaved(systems: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    """Time each system `repeats` times, round-robin, so machine drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(repeats):
        for name, fn in systems.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def timed(fn: Callable[[], object], runs: int, warmup: int = 20) -> list[float]:
    """`warmup` untimed calls of fn, then the wall time of each of `runs` calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


class Worker:
    """A measured system in its own process, all kept alive so that rounds interleave: it first
    says {"ready": seconds it took to load}, then answers each JSON command on its stdin with one
    JSON line (the worker side is `answer_jobs`)."""

    def __init__(self, name: str, cmd: list[str], env: dict | None = None):
        self.name = name
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{name} failed to start (exit {self.proc.wait()})")
        self.load_s = json.loads(line)["ready"]

    def ask(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name} died during {cmd.get('op')} (exit {self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        """Closing stdin is the worker's signal to exit."""
        self.proc.stdin.close()
        self.proc.wait(timeout=120)


def answer_jobs(load: Callable[[], dict[str, Callable[[dict], dict]]], started: float | None = None) -> int:
    """The worker side of `Worker`: load (what libraries print goes to stderr, off the protocol),
    say ready, then answer each command with ops[command["op"]](command) until stdin closes."""
    t0 = time.perf_counter() if started is None else started
    protocol, sys.stdout = sys.stdout, sys.stderr
    ops = load()
    print(json.dumps({"ready": time.perf_counter() - t0}), file=protocol, flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] not in ops:
            return 0
        print(json.dumps(ops[cmd["op"]](cmd)), file=protocol, flush=True)
    return 0


def arguments(
    doc: str,
    *,
    model: str | Path | None = None,
    name: str | None = None,
    repeats: int | None = None,
    threads: bool = False,
    quick: str | None = None,
) -> argparse.ArgumentParser:
    """The options the scripts share, spelled once; each script adds its own. model: "required",
    "embedded" (defaults to the embedded model) or a default directory; name: the default suffix
    of the results files; quick: the help of --quick, the smoke run the tests use."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if model == "required":
        p.add_argument("--model", type=Path, required=True, help="exported model directory")
    elif model == "embedded":
        p.add_argument("--model", type=Path, help="model directory (default: the embedded model)")
    elif model is not None:
        p.add_argument("--model", type=Path, default=Path(model), help="exported model directory")
    if name is not None:
        p.add_argument("--name", default=name, help="what the results files are named after")
    if repeats is not None:
        p.add_argument("--repeats", type=int, default=repeats, help="interleaved rounds; medians are reported")
    if threads:
        p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    if quick is not None:
        p.add_argument("--quick", action="store_true", help=quick)
    return p


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A markdown table's lines: the header, its rule, one line per row."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows),
    ]


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def percentile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def short_text(clf, texts: list[str]) -> str:
    """The shortest text of 18-22 tokens: the single-text latency probe."""
    return min((t for t in texts if 18 <= len(clf.encoder.encode([t])[0].ids) <= 22), key=len)


def kernel_profile(clf, work: Callable[[object], None]) -> tuple[dict[str, float], dict[str, int]]:
    """Run `work(session)` on a profiling onnxruntime session of clf's variant; return the total
    kernel microseconds per op type and the number of nodes per op type."""
    import tempfile
    from collections import defaultdict

    import onnxruntime as ort

    from emotion_onnx.session import session_options

    opts = session_options(optimized=clf.variant.optimized)
    opts.enable_profiling = True
    opts.profile_file_prefix = str(Path(tempfile.gettempdir()) / f"emotion_onnx_profile_{clf.variant.name}")
    session = ort.InferenceSession(
        str(clf.manifest.directory / clf.variant.ref.file), opts, providers=["CPUExecutionProvider"]
    )
    work(session)
    path = Path(session.end_profiling())
    events = json.loads(path.read_text())
    path.unlink()
    by_op: dict[str, float] = defaultdict(float)
    nodes: dict[str, set] = defaultdict(set)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
            nodes[e["args"]["op_name"]].add(e["name"])
    return dict(by_op), {op: len(names) for op, names in nodes.items()}


def add_variant(model_dir: Path, name: str, onnx_file: Path, *, optimized: bool = True, **changes) -> None:
    """Register an extra ONNX file as a variant of an exported model directory (benchmarks only):
    a copy of the default variant's entry with the new file, no calibration and no invariance claim."""
    from dataclasses import replace

    from emotion_onnx import manifest as manifest_io
    from emotion_onnx.manifest import Calibration, FileRef

    target = model_dir / f"bench_{name}.onnx"
    shutil.copyfile(onnx_file, target)
    m = manifest_io.load(model_dir)
    variant = replace(
        m.variant(),
        name=name,
        ref=FileRef.of(model_dir, target.name),
        optimized=optimized,
        calibration=Calibration(),
        batch_invariant=False,
        **changes,
    )
    manifest_io.write(replace(m, variants={**m.variants, name: variant}), model_dir)


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


# The runtime's path from texts to probabilities: a change to any of these can move a timing
RUNTIME_HOT_PATH = tuple(
    f"runtime/emotion_onnx/{name}.py"
    for name in ("classifier", "batching", "session", "engines", "tokenization", "calibration", "parallel")
)


# What builds an exported model directory: a change to any of these can move an export's figures
EXPORT_CODE = tuple(
    f"export/emotion_onnx_export/{name}.py"
    for name in ("pipeline", "onnx_graph", "fusion", "int8", "int8_activations", "int8_graph", "quantization",
                 "openvino_int8", "reference", "gate", "calibration")
)  # fmt: skip


# What a served request goes through beyond the runtime
SERVING_CODE = tuple(
    f"runtime/emotion_onnx/{name}.py"
    for name in ("handling", "requests", "contracts", "responses", "serving/app", "serving/batcher", "serving/guard",
                 "serving/protocol")
)  # fmt: skip


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes (what update_docs.py --check compares)."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def provenance(models: Sequence[Path] = (), code: Sequence[str] = ()) -> dict:
    """What a result describes, so that update_docs.py --check can tell when it no longer does:
    each model directory measured (its path, relative to the repository when inside it, and its
    manifest's hash: any new weights, variant or calibration changes it) and each code file whose
    behaviour the figures time (its path in the repository and its hash)."""
    out: dict = {"models": [], "code": {}}
    for model in models:
        path = Path(model).resolve()
        shown = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(model)
        out["models"].append({"path": shown, "manifest_sha256": file_hash(path / "manifest.json")})
    for name in code:
        out["code"][name] = file_hash(REPO / name)
    return out


def write_results(stem: str, data: dict, markdown: str, *, models: Sequence[Path] = (),
                  code: Sequence[str] = ()) -> None:  # fmt: skip
    """benchmarks/results/STEM.{json,md}: the figures with the machine, commit, date and provenance."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine(), "git": git_revision(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "provenance": provenance(models, code), **data}  # fmt: skip
    (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown)


def pyplot():
    """matplotlib's pyplot, headless."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


# ---------------------------------------------------------------------------- a served model
async def post_predict(reader, writer, payload: dict) -> tuple[int, bytes]:
    """One POST /predict on an open keep-alive connection: (status, body)."""
    body = json.dumps(payload).encode()
    head = b"POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    header = await reader.readuntil(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    length = next(int(h.split(b":", 1)[1]) for h in header.split(b"\r\n") if h.lower().startswith(b"content-length"))
    return status, await reader.readexactly(length)


def start_server(model: Path | None, port: int, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "emotion_onnx", "serve", "--port", str(port), *extra]
    if model:
        cmd += ["--model", str(model)]
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not become ready")
