"""Install footprint: the on-disk size of a distribution's dependency closure, from the installed
files' RECORDs (what a fresh venv holding only that would contain, less pip itself).

    python benchmarks/footprint.py
"""

from __future__ import annotations

import importlib.metadata as md
import json
from pathlib import Path

from packaging.requirements import Requirement

RUNTIME = ["onnxruntime", "tokenizers", "numpy"]  # emotion-onnx's own dependencies (no extras)
TORCH_STACK = ["transformers", "torch"]


def closure(roots: list[str]) -> list[str]:
    seen: dict[str, md.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen[key] = dist
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return sorted(seen)


def size_bytes(name: str) -> int:
    dist = md.distribution(name)
    total = 0
    for f in dist.files or []:
        path = Path(dist.locate_file(f))
        if path.is_file():
            total += path.stat().st_size
    return total


def measure() -> dict:
    runtime, stack = closure(RUNTIME), closure(TORCH_STACK)
    return {
        "runtime_distributions": runtime,
        "runtime_mb": sum(size_bytes(d) for d in runtime) / 1e6,
        "torch_stack_distributions": stack,
        "torch_stack_mb": sum(size_bytes(d) for d in stack) / 1e6,
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
