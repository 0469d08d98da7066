"""Graph fusion with onnxruntime's transformer optimizer, and offline ORT optimisation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def fuse(src: Path, dst: Path, num_heads: int, hidden_size: int, gelu_approximation: bool = False) -> None:
    """Fuse attention, skip-layernorm, bias-gelu, embed-layernorm (python fusions only)."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_gelu_approximation = gelu_approximation
    optimized = optimize_model(
        str(src),
        model_type="bert",
        num_heads=num_heads,
        hidden_size=hidden_size,
        optimization_options=options,
        opt_level=0,
    )
    optimized.save_model_to_file(str(dst))


def ort_optimize(src: Path, dst: Path) -> None:
    """Run onnxruntime's own graph optimisations once, offline, and save the result.

    ORT_ENABLE_EXTENDED is the highest level whose output stays hardware independent;
    the runtime then loads `dst` with optimisation disabled (faster cold start).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(dst)
    opts.log_severity_level = 3
    ort.InferenceSession(str(src), sess_options=opts, providers=["CPUExecutionProvider"])


def op_counts(path: Path) -> dict[str, int]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return dict(sorted(Counter(node.op_type for node in model.graph.node).items()))
