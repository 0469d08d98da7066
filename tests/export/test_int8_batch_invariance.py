"""INT8 that does not depend on the batch: the default per-token variant against the opt-in
per-tensor one, on real text."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotion_onnx import EmotionClassifier
from emotion_onnx_export import ExportConfig, run_export
from emotion_onnx_export.fusion import op_counts


@pytest.fixture(scope="module")
def both_int8(tmp_path_factory, checkpoints, validation_file):
    out = tmp_path_factory.mktemp("int8") / "model"
    result = run_export(
        ExportConfig(
            model=str(checkpoints("distilbert-tiny")),
            out=out,
            validation_file=validation_file,
            limit=300,
            per_tensor_int8=True,
        )
    )
    assert not result.failures
    return out


def test_manifest_marks_batch_invariance(both_int8):
    m = json.loads((both_int8 / "manifest.json").read_text())
    assert m["default_variant"] == "int8"
    assert m["variants"]["int8"]["batch_invariant"] is True
    assert m["variants"]["int8-per-tensor"]["batch_invariant"] is False
    assert m["variants"]["int8-per-tensor"]["quantization"]["scheme"] == "dynamic-per-tensor"
    per_tensor_drift = m["variants"]["int8-per-tensor"]["batch_invariance"]["max_abs_logit_diff_alone_vs_padded_batch"]
    assert per_tensor_drift > 1e-5  # the defect is real, and it is measured


def test_per_token_graph_uses_integer_gemms_and_keeps_fused_attention(both_int8):
    counts = op_counts(both_int8 / "model_int8.onnx")
    assert counts.get("MatMulIntegerToFloat") == 8  # QKV, out, lin1, lin2 in each of 2 layers
    assert counts.get("MultiHeadAttention") == 2
    assert "DynamicQuantizeLinear" not in counts and "MatMul" not in counts
    # GELU in its tanh form in the int8 graph only; the fp32 graph keeps the exact erf
    assert counts.get("FastGelu") == 2 and "BiasGelu" not in counts
    assert op_counts(both_int8 / "model_fused.onnx").get("BiasGelu") == 2
    gelu = json.loads((both_int8 / "manifest.json").read_text())["variants"]["int8"]["quantization"]["gelu"]
    assert gelu == "tanh approximation (FastGelu)"


def test_embedding_table_is_int8(both_int8):
    import onnx

    model = onnx.load(str(both_int8 / "model_int8.onnx"))
    big = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    assert list(big.dims) == [30522, 32]
    assert big.data_type == onnx.TensorProto.INT8


def test_runtime_warns_for_batch_dependent_variant(both_int8):
    clf = EmotionClassifier(both_int8, variant="int8-per-tensor")
    with pytest.warns(RuntimeWarning, match="not batch-invariant"):
        clf.warn_if_batch_dependent("a batching server")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EmotionClassifier(both_int8).warn_if_batch_dependent("a batching server")


WORDS = ["i", "feel", "so", "happy", "sad", "angry", "today", "because", "the", "weather", "is", "awful", "!"]
text_strategy = st.lists(st.sampled_from(WORDS), min_size=0, max_size=100).map(" ".join)


@pytest.fixture(scope="module")
def shipped_int8(both_int8):
    return (
        EmotionClassifier(both_int8, max_batch_tokens=100_000, max_batch_size=1000),
        EmotionClassifier(both_int8, max_batch_size=1),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(text_strategy, min_size=1, max_size=24), neighbours=st.lists(text_strategy, max_size=24))
def test_int8_logits_do_not_depend_on_batch_or_padding(shipped_int8, texts, neighbours):
    """A text's int8 logits are the same alone and in any padded batch, within 1e-6."""
    batched_clf, single_clf = shipped_int8
    together = batched_clf.logits([*texts, *neighbours])[: len(texts)]
    alone = np.vstack([single_clf.logits([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-6, rtol=0)


def test_per_tensor_variant_drifts_with_its_neighbours(both_int8, test_texts):
    """The control: the same check fails for onnxruntime's per-tensor dynamic quantisation."""
    batched = EmotionClassifier(both_int8, variant="int8-per-tensor", max_batch_tokens=100_000, max_batch_size=1000)
    single = EmotionClassifier(both_int8, variant="int8-per-tensor", max_batch_size=1)
    texts = test_texts[:32]
    together = batched.logits(texts)
    alone = np.vstack([single.logits([t]) for t in texts])
    assert np.abs(together - alone).max() > 1e-5


def test_per_token_gemm_on_a_single_matmul(tmp_path):
    """The rewritten GEMM alone: each row's result is its own (identical in any batch), close to
    fp32 within int8 error, and an all-zero row (scale max|row| = 0) gives exactly 0, not NaN."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from emotion_onnx_export.per_token_int8 import quantize_per_token

    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 16)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "one_gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", 16])],
        [numpy_helper.from_array(w, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "fp32.onnx")
    stats = quantize_per_token(tmp_path / "fp32.onnx", tmp_path / "int8.onnx")
    assert stats["int8_matmuls"] == 1
    session = ort.InferenceSession(str(tmp_path / "int8.onnx"), providers=["CPUExecutionProvider"])

    x = rng.normal(size=(6, 64)).astype(np.float32) * np.array([[1], [0], [100], [1e-3], [0], [5]], np.float32)
    y = session.run(None, {"x": x})[0]
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(y[[1, 4]], 0.0)
    alone = np.vstack([session.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))])
    np.testing.assert_array_equal(y, alone)
    exact = x @ w
    scale = np.abs(x).max(axis=1, keepdims=True) * np.abs(w).max() + 1e-30
    assert (np.abs(y - exact) / scale).max() < 0.05
