"""Export of the full-size DistilBERT graph (dim 768, 6 layers, 12 heads, 6 labels; random weights)."""

from __future__ import annotations

import json

import pytest

from helpers import graph_axes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full_model(exported):
    return exported("distilbert-base", limit=None)  # the whole 2000-text validation split


def test_full_size_fp32_gate_on_real_text(full_model):
    m = json.loads((full_model / "manifest.json").read_text())
    assert m["embedding_dim"] == 768
    for name in ("fp32", "fp32-fused"):
        figures = m["variants"][name]["validation"]
        assert figures["n_texts"] == 2000
        assert figures["max_abs_logit_diff"] <= 1e-4, figures
    int8 = m["variants"]["int8"]
    assert int8["validation"]["top1_agreement"] >= 0.995  # against its own fp32 export
    assert int8["validation"]["size_ratio_vs_fp32"] <= 0.30
    assert int8["batch_invariant"] is True
    # exact in the runtime's own batches; padded to the longest text, only the order of the float
    # sums over padded positions in attention differs (a few 1e-6 at width 768)
    drift = int8["batch_invariance"]
    assert drift["max_abs_logit_diff_alone_vs_padded_batch"] <= 1e-6
    assert 0 <= drift["max_abs_logit_diff_padded_to_longest"] < 1e-4


def test_full_size_fusion_counts_on_saved_file(full_model):
    from emotion_onnx_export.fusion import op_counts

    m = json.loads((full_model / "manifest.json").read_text())
    counts = op_counts(full_model / m["variants"]["fp32-fused"]["file"])
    # the last block computes only the first token's query, which onnxruntime's attention fusion
    # does not match; SkipLayerNormalization is unfused again into Add + LayerNormalization
    assert counts["Attention"] == 5
    assert counts.get("SkipLayerNormalization", 0) == 0
    assert counts["LayerNormalization"] == 12
    assert counts["BiasGelu"] == 6


def test_full_size_symbolic_axes_on_saved_files(full_model):
    m = json.loads((full_model / "manifest.json").read_text())
    for v in m["variants"].values():
        axes = graph_axes(full_model / v["file"])
        assert axes["input_ids"] == ["batch", "sequence"]
        assert axes["attention_mask"] == ["batch", "sequence"]
        assert axes["logits"] == ["batch", 6]
        assert axes["embedding"] == ["batch", 768]
