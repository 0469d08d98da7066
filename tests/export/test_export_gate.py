"""The gate rejects a broken graph; an interrupted export leaves nothing behind."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from emotion_onnx_export import ExportConfig, pipeline, run_export


def _perturb_largest_matmul_weight(path):
    model = onnx.load(str(path))
    matmul_inputs = {name for node in model.graph.node if node.op_type == "MatMul" for name in node.input}
    weights = [t for t in model.graph.initializer if t.name in matmul_inputs]
    target = max(weights, key=lambda t: np.prod(t.dims))
    array = numpy_helper.to_array(target).copy()
    # nudge one output channel of one FFN weight (random signs: LayerNorm'd inputs sum to ~0)
    array[:, 0] += np.random.default_rng(0).normal(0.0, 0.05, array.shape[0]).astype(array.dtype)
    target.CopyFrom(numpy_helper.from_array(array, target.name))
    onnx.save(model, str(path))
    return target.name


def test_gate_rejects_perturbed_weight(tmp_path, checkpoints, validation_file, monkeypatch, capsys):
    real_export = pipeline.export_onnx
    perturbed = []

    def export_then_break(ckpt, path, **kw):
        names = real_export(ckpt, path, **kw)
        perturbed.append(_perturb_largest_matmul_weight(path))
        return names

    monkeypatch.setattr(pipeline, "export_onnx", export_then_break)
    out = tmp_path / "broken"
    result = run_export(
        ExportConfig(model=str(checkpoints("distilbert-tiny")), out=out, validation_file=validation_file, limit=200)
    )
    assert perturbed
    fp32 = {g.variant: g for g in result.gate}
    for name in ("fp32", "fp32-fused"):
        assert not fp32[name].passed
        assert fp32[name].figures["max_abs_logit_diff"] > 1e-4
        assert "max |Δlogit|" in fp32[name].reason
    assert not fp32["int8"].passed and "built from fp32-fused" in fp32["int8"].reason
    assert result.out is None  # nothing passed, nothing written
    assert not out.exists()
    assert not list(tmp_path.glob(".broken*"))


def test_interrupted_export_leaves_no_directory(tmp_path, checkpoints, validation_file, monkeypatch):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "quantize_int8", interrupted)
    out = tmp_path / "model"
    with pytest.raises(KeyboardInterrupt):
        run_export(
            ExportConfig(model=str(checkpoints("distilbert-tiny")), out=out, validation_file=validation_file, limit=50)
        )
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_existing_model(tmp_path, checkpoints, validation_file):
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.onnx").write_text("old")
    result = run_export(
        ExportConfig(
            model=str(checkpoints("distilbert-tiny")), out=out, force=True, validation_file=validation_file, limit=50
        )
    )
    assert result.out == out
    assert not (out / "stale.onnx").exists()
    assert (out / "manifest.json").is_file()


def test_int8_gate_is_top1_agreement():
    from emotion_onnx_export.gate import GateThresholds, compare

    rng = np.random.default_rng(0)
    ref = rng.normal(size=(1000, 6)).astype(np.float32)
    flipped = ref.copy()
    flipped[:20] = flipped[:20, ::-1]  # 2 % of rows change their top-1
    labels = ref.argmax(1)
    result = compare("int8", "int8", flipped, ref, labels, GateThresholds(int8_min_agreement=0.99))
    assert not result.passed
    assert result.figures["top1_agreement"] <= 0.98
    assert result.figures["accuracy"] == result.figures["top1_agreement"]
    assert "agreement" in result.reason
    ok = compare("int8", "int8", ref + 1e-3, ref, labels, GateThresholds())
    assert ok.passed and ok.figures["max_abs_prob_diff"] < 1e-2
