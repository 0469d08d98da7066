"""The export stage on real (locally built) checkpoints: files, manifest, axes, fusion, gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emotion_onnx import EmotionClassifier
from emotion_onnx import manifest as manifest_io
from emotion_onnx.integrity import file_sha256
from helpers import graph_axes, opset

VARIANT_FILES = {"fp32": "model.onnx", "fp32-fused": "model_fused.onnx", "int8": "model_int8.onnx"}
manifest_of = manifest_io.load


@pytest.mark.parametrize("shape", ["distilbert-tiny", "bert-tiny", "roberta-tiny"])
def test_export_writes_every_variant_with_matching_hashes(exported, shape):
    model_dir = exported(shape)
    assert json.loads((model_dir / "manifest.json").read_text())["schema_version"] == 3  # no temperature per text
    m = manifest_of(model_dir)
    assert m.labels == ["sadness", "joy", "love", "anger", "fear", "surprise"]
    assert set(m.variants) == set(VARIANT_FILES)
    # the default: the fastest onnxruntime variant the export measured (for a dim-32 toy, fp32 can win)
    assert m.default_variant == next(n for n in m.variant_order if m.variants[n].engine == "onnxruntime")
    for name, v in m.variants.items():
        path = model_dir / v.ref.file
        assert v.ref.file == VARIANT_FILES[name]
        assert v.ref.sha256 == file_sha256(path)
        assert v.ref.size == path.stat().st_size
        assert v.validation["n_texts"] == 300
        assert v.calibration.details["n_texts"] == 300
        assert v.temperature > 0
    tok = m.tokenizer
    assert tok.ref.sha256 == file_sha256(model_dir / tok.ref.file)
    assert tok.max_length == 512
    assert tok.vocab_size == EmotionClassifier(model_dir).encoder.vocab_size
    assert m.source["content_sha256"]
    # the checkpoint by a path relative to the run (the model directory's parent), never the builder's absolute path
    assert "local_path" not in m.source and not Path(m.source["model"]).is_absolute()
    assert (model_dir.parent / m.source["model"] / "config.json").is_file()
    for dist in ("torch", "transformers", "optimum-onnx", "onnxruntime"):
        assert m.versions[dist], dist
    # nothing but the model directory's own files
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        [*VARIANT_FILES.values(), "manifest.json", "tokenizer.json"]
    )


@pytest.mark.parametrize(
    ("shape", "inputs", "lowercase"),
    [
        ("distilbert-tiny", ["input_ids", "attention_mask"], True),
        ("bert-tiny", ["input_ids", "attention_mask", "token_type_ids"], True),
        ("roberta-tiny", ["input_ids", "attention_mask"], False),
    ],
)
def test_symbolic_axes_opset_and_inputs(exported, shape, inputs, lowercase):
    model_dir = exported(shape)
    m = manifest_of(model_dir)
    assert m.input_names == inputs
    assert m.tokenizer.lowercase is lowercase
    for v in m.variants.values():
        axes = graph_axes(model_dir / v.ref.file)
        assert opset(model_dir / v.ref.file) >= 17
        for name in inputs:
            assert axes[name] == ["batch", "sequence"], (v.ref.file, name, axes[name])
        assert axes["logits"] == ["batch", 6]
        assert axes["embedding"] == ["batch", m.embedding_dim]
        assert set(axes) == {*inputs, "logits", "embedding"}


def test_fused_op_counts_tiny(tiny_model):
    graph = manifest_of(tiny_model).variants["fp32-fused"].graph
    counts = graph["op_counts"]
    layers = 2
    assert graph["last_layer"] == "first token only"
    assert counts.get("Attention") == layers - 1  # the last block attends from the first token only, unfused
    # onnxruntime 1.30+ runs Add + LayerNormalization faster than its fused SkipLayerNormalization
    assert "SkipLayerNormalization" not in counts and counts.get("LayerNormalization") == 2 * layers
    assert counts.get("BiasGelu") == layers
    assert "FastGelu" not in counts  # Gelu approximation stays off


def test_embedding_output_is_what_the_head_reads(checkpoints, tiny_model, test_texts):
    """ReLU(pre_classifier(h[CLS])) from PyTorch equals the graph's `embedding` output."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ckpt = checkpoints("distilbert-tiny")
    model = AutoModelForSequenceClassification.from_pretrained(ckpt).eval()
    tok = AutoTokenizer.from_pretrained(ckpt)
    texts = test_texts[:16]
    with torch.inference_mode():
        enc = tok(texts, padding=True, return_tensors="pt")
        hidden = model.distilbert(**enc).last_hidden_state[:, 0]
        expected = torch.relu(model.pre_classifier(hidden)).numpy()
    clf = EmotionClassifier(tiny_model, variant="fp32")
    assert clf.embedding_dim == 32
    np.testing.assert_allclose(clf.embed(texts, normalize=False), expected, atol=1e-5)


def test_gate_figures_recorded(tiny_model):
    m = manifest_of(tiny_model)
    for name in ("fp32", "fp32-fused"):
        assert m.variants[name].validation["max_abs_logit_diff"] <= 1e-4
    q = m.variants["int8"].validation
    assert q["top1_agreement"] >= 0.99
    for key in ("max_abs_prob_diff", "mean_abs_prob_diff", "accuracy", "reference_accuracy"):
        assert key in q
    assert m.variants["int8"].quantization["scheme"] == "per-token-int8"
    for name, v in m.variants.items():  # measured, not asserted, by the export
        drift = v.batch_invariance["max_abs_logit_diff_alone_vs_padded_batch"]
        assert v.batch_invariant is (drift <= 1e-6), name
    assert m.variants["int8"].batch_invariant is True
