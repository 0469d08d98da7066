"""Lambda bundle size and cold start.

    python benchmarks/lambda_bundle.py [--model build/distilbert-base --name distilbert-base] [--runs 5] [--quick]

1. Builds the deployable bundle (`emotion-onnx lambda-bundle`, x86_64, Python 3.12: the
   Lambda runtime) and records its zipped and unzipped sizes.
2. Builds the same bundle for this machine's Python, unzips it into an empty directory and
   measures the cold start as Lambda's init + first invoke would see it: a fresh interpreter
   (`python -I -S`, the bundle as its only import path) → import the handler (which loads the
   model) → the first response to an HTTP API v2 event. Median of --runs.
Results: benchmarks/results/lambda_bundle[_NAME].{json,md}.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from common import RUNTIME_HOT_PATH, arguments, median, model_or_default, on_machine, write_results

INVOKE = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from emotion_onnx.aws_lambda import handler, LOAD_SECONDS
t1 = time.perf_counter()
event = {"version": "2.0", "rawPath": "/predict", "requestContext": {"http": {"method": "POST", "path": "/predict"}},
         "body": json.dumps({"inputs": "i feel a little nervous about tomorrow"}), "isBase64Encoded": False}
reply = handler(event, None)
assert reply["statusCode"] == 200, reply
t2 = time.perf_counter()
print(json.dumps({"import_and_load_s": t1 - t0, "model_load_s": LOAD_SECONDS, "first_invoke_s": t2 - t1}))
"""


def bundle(model: Path | None, out: Path, python: str) -> dict:
    cmd = [sys.executable, "-m", "emotion_onnx", "lambda-bundle", "--out", str(out), "--python", python]
    if model:
        cmd += ["--model", str(model)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    with zipfile.ZipFile(out) as zf:
        unzipped = sum(i.file_size for i in zf.infolist())
    return {
        "build_s": time.perf_counter() - t0,
        "zipped_mib": out.stat().st_size / 2**20,
        "unzipped_mib": unzipped / 2**20,
    }


def cold_starts(task_root: Path, runs: int) -> dict:
    walls, parts = [], []
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    for _ in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", INVOKE, str(task_root)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        walls.append(time.perf_counter() - t0)
        parts.append(json.loads(out))
    return {
        "process_to_first_response_s_median": median(walls),
        "process_to_first_response_s": walls,
        "import_and_load_s_median": median([p["import_and_load_s"] for p in parts]),
        "model_load_s_median": median([p["model_load_s"] for p in parts]),
        "first_invoke_s_median": median([p["first_invoke_s"] for p in parts]),
    }


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, model="embedded", name="emotion-minilm-l6", quick="one cold start, no 3.12 bundle")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    host_python = f"{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory(prefix="lambda-bench-") as tmp:
        tmp = Path(tmp)
        deploy = None if args.quick else bundle(args.model, tmp / "deploy" / "bundle.zip", "3.12")
        local = bundle(args.model, tmp / "local" / "bundle.zip", host_python)
        task_root = tmp / "task"
        with zipfile.ZipFile(tmp / "local" / "bundle.zip") as zf:
            zf.extractall(task_root)
        cold = cold_starts(task_root, 1 if args.quick else args.runs)
    data = {"model": args.name, "deploy_bundle_x86_64_py312": deploy, "local_bundle": local, "cold_start": cold}
    size = deploy or local
    runs = len(cold["process_to_first_response_s"])
    md = (
        f"Lambda bundle of `{args.name}` on {on_machine()} (`python benchmarks/lambda_bundle.py"
        f"{' --model ' + str(args.model) if args.model else ''} --name {args.name}`):\n\n"
        "| | figure | goal |\n|---|---|---|\n"
        f"| bundle, x86_64, Python {'3.12' if deploy else host_python}: zipped | {size['zipped_mib']:.1f} MiB | |\n"
        f"| unzipped | {size['unzipped_mib']:.1f} MiB | ≤ 200 MB = 190.7 MiB (AWS cap 250 MiB) |\n"
        f"| cold start: fresh process → import + model load → first response (median of {runs}) "
        f"| {cold['process_to_first_response_s_median']:.3f} s | |\n"
        f"| of which model load | {cold['model_load_s_median']:.3f} s | |\n"
        f"| of which first invoke | {1000 * cold['first_invoke_s_median']:.1f} ms | |\n"
    )
    write_results(f"lambda_bundle_{args.name}", data, md, models=[model_or_default(args.model)],
                  code=[*RUNTIME_HOT_PATH, "runtime/emotion_onnx/aws_lambda.py", "runtime/emotion_onnx/handling.py",
                        "export/emotion_onnx_export/lambda_bundle.py"])  # fmt: skip
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
