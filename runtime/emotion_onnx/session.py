"""onnxruntime sessions: construction (threads from the usable CPUs, spinning and providers
overridable) and the check of a graph against the manifest that describes it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .cpu import available_cpus
from .errors import ManifestError, first_line


def session_options(
    intra_op_threads: int | None = None,
    spinning: bool | None = None,
    optimized: bool = True,
) -> ort.SessionOptions:
    """Options for one inference session.

    optimized=True means the graph was optimised offline by the export stage, so
    loading skips graph optimisation (this is what keeps cold start low).
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads or available_cpus()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL if optimized else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    if spinning is not None:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.log_severity_level = 3
    return opts


def create_session(
    model_path: str | Path,
    *,
    intra_op_threads: int | None = None,
    spinning: bool | None = None,
    providers: Sequence[str] | None = None,
    optimized: bool = True,
) -> ort.InferenceSession:
    opts = session_options(intra_op_threads, spinning, optimized)
    available = ort.get_available_providers()
    chosen = list(providers) if providers else ["CPUExecutionProvider"]
    missing = [p for p in chosen if p not in available]
    if missing:
        raise ValueError(
            f"execution provider(s) {', '.join(missing)} are not available in this onnxruntime build; "
            f"available: {', '.join(available)}"
        )
    try:
        return ort.InferenceSession(str(model_path), sess_options=opts, providers=chosen)
    except Exception as exc:  # onnxruntime's own exception types are not importable in a stable way
        first = first_line(exc).replace(str(model_path), Path(model_path).name)
        raise ManifestError(f"{Path(model_path).name} is not a graph onnxruntime can load: {first}") from None


def _last_dim(value) -> int | None:
    shape = value.shape or []
    return shape[-1] if shape and isinstance(shape[-1], int) else None


def check_graph(session: ort.InferenceSession, file: str, input_names: Sequence[str], outputs: dict[str, int]) -> None:
    """Raise ManifestError unless the graph takes exactly the manifest's inputs and has each named
    output with the width the manifest gives it ({name: width})."""
    graph_inputs = sorted(i.name for i in session.get_inputs())
    if graph_inputs != sorted(input_names):
        raise ManifestError(
            f"{file} takes inputs {', '.join(graph_inputs)} but manifest.json lists {', '.join(input_names)}"
        )
    by_name = {o.name: o for o in session.get_outputs()}
    for name, width in outputs.items():
        if name not in by_name:
            raise ManifestError(f"{file} has no output {name!r} (its outputs: {', '.join(by_name)})")
        dim = _last_dim(by_name[name])
        if dim is not None and dim != width:
            raise ManifestError(f"{file}'s output {name!r} has width {dim} but manifest.json says {width}")


def check_outputs(arrays: dict[str, np.ndarray], rows: int, file: str, outputs: dict[str, int]) -> None:
    """The warm-up's outputs have the shapes the manifest promises and finite values."""
    for name, width in outputs.items():
        got = arrays[name]
        if got.shape != (rows, width):
            raise ManifestError(
                f"{file}'s output {name!r} has shape {tuple(got.shape)} for {rows} texts; manifest.json promises "
                f"({rows}, {width})"
            )
        if not np.isfinite(got).all():
            raise ManifestError(f"{file}'s output {name!r} is not finite on the warm-up texts")
