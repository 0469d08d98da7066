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


def unfuse_skip_layer_norm(src: Path, dst: Path) -> int:
    """Replace every SkipLayerNormalization by Add (+ its bias, when it has one) and the standard
    LayerNormalization; returns how many were replaced.

    From onnxruntime 1.30 the CPU kernel of the fused SkipLayerNormalization is a scalar loop,
    several times slower than Add plus the vectorised LayerNormalization kernel
    (benchmarks/int8_schemes.py measures both forms). Run this after `ort_optimize`, whose
    extended level would fuse the pair back."""
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    nodes, count = [], 0
    for node in model.graph.node:
        if node.op_type != "SkipLayerNormalization" or node.domain != "com.microsoft":
            nodes.append(node)
            continue
        x, skip, gamma, beta, bias = (list(node.input) + [""] * 5)[:5]
        outs = (list(node.output) + [""] * 4)[:4]
        if outs[1] or outs[2]:  # mean / inverse std deviation outputs: keep the fused op
            nodes.append(node)
            continue
        eps = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "epsilon"), 1e-12)
        if bias:
            biased = node.name + "_biased"
            nodes.append(helper.make_node("Add", [x, bias], [biased], name=node.name + "_bias"))
            x = biased
        total = outs[3] or node.name + "_sum"
        nodes.append(helper.make_node("Add", [x, skip], [total], name=node.name + "_skip"))
        ln_inputs = [total, gamma] + ([beta] if beta else [])
        nodes.append(
            helper.make_node("LayerNormalization", ln_inputs, [outs[0]], name=node.name + "_ln", axis=-1, epsilon=eps)
        )
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(dst))
    return count
