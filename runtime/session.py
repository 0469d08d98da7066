"""onnxruntime session construction: threads from the usable CPUs, spinning and providers overridable."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

from .cpu import available_cpus


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
        flag = "1" if spinning else "0"
        opts.add_session_config_entry("session.intra_op.allow_spinning", flag)
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
    return ort.InferenceSession(str(model_path), sess_options=opts, providers=chosen)
