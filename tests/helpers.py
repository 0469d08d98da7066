"""Small shared helpers for the tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import onnx

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, input: str | bytes | None = None, env: dict | None = None, timeout: int = 600):
    """Run `python -m emotion_onnx ARGS` in a fresh interpreter."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "emotion_onnx", *args],
        input=input.encode() if isinstance(input, str) else input,
        capture_output=True,
        env=full_env,
        timeout=timeout,
    )


# what a long command logs as it goes (the export's finished steps), before any error
PROGRESS_LINE = re.compile(r"^export: .+: [\d.]+ s \(step \d+ of \d+\)$")


def assert_clean_error(proc, *fragments: str) -> None:
    """Exit code 2 and exactly one line on stderr naming the problem (after any progress lines), no
    traceback."""
    err = proc.stderr.decode()
    lines = [ln for ln in err.splitlines() if ln.strip() and "Warning" not in ln and "warn(" not in ln]
    lines = [ln for ln in lines if not PROGRESS_LINE.match(ln)]
    assert proc.returncode == 2, (proc.returncode, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def graph_axes(path: Path) -> dict[str, list]:
    model = onnx.load(str(path), load_external_data=False)
    axes = {}
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        axes[value.name] = [d.dim_param or d.dim_value for d in dims]
    return axes


def opset(path: Path) -> int:
    model = onnx.load(str(path), load_external_data=False)
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def load_script(folder: str, name: str):
    """A script under models/ or benchmarks/ (not a package) imported as a module, for its functions.
    Its folder goes on sys.path, as it is when the script runs, so scripts can import each other."""
    import importlib.util

    if str(REPO / folder) not in sys.path:
        sys.path.insert(0, str(REPO / folder))
    spec = importlib.util.spec_from_file_location(name, REPO / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
