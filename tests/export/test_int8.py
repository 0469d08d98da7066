"""INT8 that does not depend on the batch: every scheme (per-token, mixed, static, and OpenVINO's NNCF
variant) against the opt-in per-tensor one, on real text; and the graph rewrites around them."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotion_onnx import EmotionClassifier
from emotion_onnx import manifest as manifest_io
from emotion_onnx.engines import engine_available
from emotion_onnx_export import ExportConfig, run_export
from emotion_onnx_export.fusion import op_counts
from emotion_onnx_export.gate import GateThresholds, batch_invariance, padded_batch_drift
from emotion_onnx_export.openvino_int8 import available as openvino_export_available

HAS_OPENVINO = openvino_export_available()


def _export(tmp_path_factory, checkpoints, validation_file, **kw):
    kw.setdefault("thresholds", GateThresholds(int8_max_size_ratio=0.40))  # a dim-32 toy: see conftest
    out = tmp_path_factory.mktemp("int8") / "model"
    result = run_export(
        ExportConfig(
            model=str(checkpoints("distilbert-tiny")), out=out, validation_file=validation_file, limit=300, **kw
        )  # fmt: skip
    )
    assert not result.failures, [g.reason for g in result.failures]
    return out


@pytest.fixture(scope="module")
def both_int8(tmp_path_factory, checkpoints, validation_file):
    """The default per-token int8, the opt-in per-tensor one, and OpenVINO's where it is installed."""
    return _export(tmp_path_factory, checkpoints, validation_file, per_tensor_int8=True, openvino=HAS_OPENVINO)


@pytest.fixture(scope="module")
def schemes(tmp_path_factory, checkpoints, validation_file, both_int8):
    """variant kind -> a classifier pair (one big batch, one text at a time)."""
    dirs = {"per-token": (both_int8, "int8")}
    for scheme in ("mixed", "static"):
        # the dim-32 toy's static ranges lose more than a trained model's: the gate is not the point here
        loose = {"thresholds": GateThresholds(int8_min_agreement=0.5, int8_max_accuracy_drop=1.0,
                                              int8_max_size_ratio=0.40)}  # fmt: skip
        dirs[scheme] = (_export(tmp_path_factory, checkpoints, validation_file, int8_scheme=scheme, **loose), "int8")
    if HAS_OPENVINO:
        dirs["openvino"] = (both_int8, "int8-openvino")
    clfs = {
        kind: (
            EmotionClassifier(d, variant=v, max_batch_tokens=100_000, max_batch_size=1000),
            EmotionClassifier(d, variant=v, max_batch_size=1),
            # many small batches, two at a time on one-thread engines (emotion_onnx.parallel)
            EmotionClassifier(d, variant=v, max_batch_tokens=64, batch_workers=2),
        )
        for kind, (d, v) in dirs.items()
    }
    return clfs


def test_manifest_marks_batch_invariance(both_int8):
    m = json.loads((both_int8 / "manifest.json").read_text())
    assert m["variants"][m["default_variant"]]["engine"] == "onnxruntime"
    assert m["variants"]["int8"]["batch_invariant"] is True
    assert m["variants"]["int8-per-tensor"]["batch_invariant"] is False
    assert m["variants"]["int8-per-tensor"]["quantization"]["scheme"] == "dynamic-per-tensor"
    assert m["variants"]["int8"]["batch_invariance"]["max_abs_logit_diff_padded_to_longest"] <= 1e-6
    per_tensor_drift = m["variants"]["int8-per-tensor"]["batch_invariance"]["max_abs_logit_diff_alone_vs_padded_batch"]
    assert per_tensor_drift > 1e-5  # the defect is real, and it is measured


def test_per_token_graph_uses_integer_gemms_and_keeps_fused_attention(both_int8):
    counts = op_counts(both_int8 / "model_int8.onnx")
    # the first layer: QKV, out, lin1, lin2; the last, which computes only the first token's row:
    # its query, key and value projections apart, out, lin1, lin2
    assert counts.get("MatMulIntegerToFloat") == 4 + 6
    assert counts.get("MultiHeadAttention") == 1
    assert counts.get("MatMul") == 2  # the last layer's query x keys and weights x values, in fp32
    assert "DynamicQuantizeLinear" not in counts and "SkipLayerNormalization" not in counts
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


def test_static_and_mixed_graphs_drop_the_per_row_chain(schemes):
    static = op_counts(schemes["static"][0].manifest.path(schemes["static"][0].variant.ref))
    mixed = op_counts(schemes["mixed"][0].manifest.path(schemes["mixed"][0].variant.ref))
    per_token = op_counts(schemes["per-token"][0].manifest.path(schemes["per-token"][0].variant.ref))
    assert "ReduceMax" not in static and "Abs" not in static
    assert static["QuantizeLinear"] == per_token["QuantizeLinear"] == per_token["ReduceMax"]  # one per activation
    assert 0 < mixed["ReduceMax"] < per_token["ReduceMax"]  # per-token rows only where a static scale fails


def test_runtime_warns_for_batch_dependent_variant(both_int8):
    clf = EmotionClassifier(both_int8, variant="int8-per-tensor")
    with pytest.warns(RuntimeWarning, match="not batch-invariant"):
        clf.warn_if_batch_dependent("a batching server")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EmotionClassifier(both_int8).warn_if_batch_dependent("a batching server")


WORDS = ["i", "feel", "so", "happy", "sad", "angry", "today", "because", "the", "weather", "is", "awful", "!"]
text_strategy = st.lists(st.sampled_from(WORDS), min_size=0, max_size=100).map(" ".join)


KINDS = ["per-token", "mixed", "static"] + (["openvino"] if HAS_OPENVINO else [])


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(text_strategy, min_size=1, max_size=24), neighbours=st.lists(text_strategy, max_size=24))
def test_int8_logits_do_not_depend_on_the_batch(schemes, kind, texts, neighbours):
    """A text's int8 logits are the same alone and batched with any other texts, within 1e-6, and
    whether its batch ran on the multi-thread engine or beside others on a one-thread one."""
    batched_clf, single_clf, side_by_side_clf = schemes[kind]
    together = batched_clf.logits([*texts, *neighbours])[: len(texts)]
    alone = np.vstack([single_clf.logits([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-6, rtol=0)
    np.testing.assert_allclose(side_by_side_clf.logits([*neighbours, *texts])[len(neighbours) :], alone,
                               atol=1e-6, rtol=0)  # fmt: skip


@pytest.mark.parametrize("kind", ["per-token", "mixed", "static"])
@pytest.mark.parametrize("width_step", [1, 4])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(text_strategy, min_size=2, max_size=24))
def test_int8_rows_do_not_see_the_padding(schemes, kind, width_step, texts):
    """Lengths mixed in one padded batch, against each text alone and unpadded: onnxruntime's
    width step (1) pads every row but the longest to its length; a step of 4 pads as a runtime
    with that step would. The per-token graph's rows are independent of the padding either way."""
    batched_clf = schemes[kind][0]
    assert batched_clf.engine.width_step == 1  # alone, nothing is padded
    assert padded_batch_drift(batched_clf, texts, width_step) <= 1e-6


def test_padded_batch_drift_sees_a_batch_dependent_graph(both_int8):
    """The measure can fail: per-tensor int8 quantises a whole batch with one scale."""
    clf = EmotionClassifier(both_int8, variant="int8-per-tensor")
    texts = ["i feel so happy today", "the weather is awful because i feel sad and angry " * 6, "love"]
    assert padded_batch_drift(clf, texts) > 1e-5
    # the runtime batches only texts of one length: these share one, so per-tensor scales mix them
    same_length = ["i feel so happy today", "i feel so sad today", "i feel so angry today"]
    assert batch_invariance(clf, same_length)["runtime_batches"] > 1e-5


@pytest.mark.skipif(not HAS_OPENVINO, reason="the export-openvino extra is not installed")
def test_openvino_variant_is_gated_hashed_and_preferred(both_int8):
    m = manifest_io.load(both_int8)
    v = m.variant("int8-openvino")
    assert v.engine == "openvino" and v.weights is not None and v.batch_invariant
    assert v.validation["top1_agreement"] >= 0.99 and v.validation["engine"] == "openvino"
    assert v.quantization["scheme"] == "nncf-int8"
    assert m.variants[m.default_variant].engine == "onnxruntime"  # what every installation can run
    assert "int8-openvino" in m.variant_order and "int8-per-tensor" not in m.variant_order  # only invariant ones
    assert all(m.variants[a].validation["texts_per_s"] >= m.variants[b].validation["texts_per_s"]
               for a, b in zip(m.variant_order, m.variant_order[1:]))  # fmt: skip
    # the runtime takes the fastest variant whose engine is installed; engine= narrows the choice
    assert EmotionClassifier(both_int8).variant.name == m.variant_order[0]
    fastest_ort = next(n for n in m.variant_order if m.variants[n].engine == "onnxruntime")
    assert EmotionClassifier(both_int8, engine="onnxruntime").variant.name == fastest_ort
    assert EmotionClassifier(both_int8, engine="openvino").variant.name == "int8-openvino"


@pytest.mark.skipif(not engine_available("openvino"), reason="openvino is not installed")
def test_without_openvino_the_onnxruntime_variant_loads(both_int8, tmp_path):
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["openvino"] = None  # as if it were not installed
        from emotion_onnx import EmotionClassifier, ModelNotFoundError
        clf = EmotionClassifier({str(both_int8)!r})
        assert clf.variant.engine == "onnxruntime", clf.variant.name
        try:
            EmotionClassifier({str(both_int8)!r}, variant="int8-openvino")
        except ModelNotFoundError as exc:
            assert "pip install 'emotion-onnx[openvino]'" in str(exc), exc
        else:
            raise SystemExit("loaded without openvino")
        print("OK")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr


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

    from emotion_onnx_export.int8 import quantize_int8

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
    stats = quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx")
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


@pytest.mark.skipif(not engine_available("openvino"), reason="openvino is not installed")
def test_openvino_compile_cache_gives_the_same_bits(both_int8, tmp_path, test_texts):
    cache = tmp_path / "cache"
    texts = test_texts[:40]
    plain = EmotionClassifier(both_int8, variant="int8-openvino", compile_cache=False)
    assert plain.engine.cache_dir is None
    first = EmotionClassifier(both_int8, variant="int8-openvino", compile_cache=cache)
    blobs = sorted((cache / "openvino").glob("*.blob"))
    assert len(blobs) == 1, blobs  # the latency-mode compile
    again = EmotionClassifier(both_int8, variant="int8-openvino", compile_cache=cache)
    assert sorted((cache / "openvino").glob("*.blob")) == blobs  # imported, not compiled anew
    for clf in (first, again):
        np.testing.assert_array_equal(clf.logits(texts), plain.logits(texts))
        np.testing.assert_array_equal(clf.logits(texts[:1]), plain.logits(texts[:1]))


@pytest.mark.skipif(not engine_available("openvino"), reason="openvino is not installed")
def test_openvino_compile_cache_never_serves_another_model(both_int8, tmp_path, test_texts):
    """The same file path with other weights compiles anew: OpenVINO keys the cache by the graph's
    content, not by its path."""
    import shutil

    from emotion_onnx.engines import OpenvinoEngine

    m = manifest_io.load(both_int8)
    v = m.variant("int8-openvino")
    model_dir = tmp_path / "model"
    shutil.copytree(both_int8, model_dir)
    xml, weights = model_dir / v.ref.file, model_dir / v.weights.file
    widths = {m.logits_output: len(m.labels), m.embedding_output: m.embedding_dim}
    clf = EmotionClassifier(both_int8, variant="int8-openvino", compile_cache=False)
    feeds = clf.encoder.pad(clf.encoder.encode(test_texts[:8]))

    def logits(cache):
        return OpenvinoEngine(xml, weights, v.ref.file, m.input_names, widths, threads=2, cache_dir=cache).run(feeds)[0]

    cache = tmp_path / "cache"
    cache.mkdir()
    original = logits(cache)
    data = bytearray(weights.read_bytes())
    for i in range(0, len(data), 61):  # the lowest bit of scattered bytes: every tensor moves a little
        data[i] ^= 1
    weights.write_bytes(bytes(data))
    changed = logits(cache)
    assert not np.array_equal(changed, original)
    np.testing.assert_array_equal(changed, logits(None))
    assert len(list(cache.glob("*.blob"))) == 2


def test_openvino_precision_rule(tmp_path):
    from emotion_onnx.engines import cpu_flags, inference_precision

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx512f avx512_vnni avx512_bf16\n\n"
                       "processor\t: 1\nflags\t\t: fpu avx512f avx512_vnni avx512_bf16\n")  # fmt: skip
    assert cpu_flags(cpuinfo) == {"fpu", "avx512f", "avx512_vnni", "avx512_bf16"}
    assert cpu_flags(tmp_path / "absent") == frozenset()  # not Linux: no flags, so f32
    assert inference_precision(cpu_flags(cpuinfo)) == "bf16"
    assert inference_precision(frozenset({"avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"})) == "f32"
    assert inference_precision(frozenset({"avx2", "fma"})) == inference_precision(frozenset()) == "f32"


@pytest.mark.skipif(not HAS_OPENVINO, reason="the export-openvino extra is not installed")
def test_openvino_engine_runs_at_the_precision_it_names(both_int8):
    """The compiled model takes the engine's precision."""
    from emotion_onnx.engines import inference_precision

    clf = EmotionClassifier(both_int8, variant="int8-openvino", compile_cache=False)
    assert clf.engine.precision == inference_precision()
    assert clf.engine.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == clf.engine.precision


def test_compile_cache_dir_settings(tmp_path, monkeypatch):
    from emotion_onnx.engines import CACHE_ENV, compile_cache_dir

    assert compile_cache_dir(tmp_path / "here") == tmp_path / "here" / "openvino"
    assert (tmp_path / "here" / "openvino").is_dir()
    assert compile_cache_dir(False) is None
    monkeypatch.setenv(CACHE_ENV, "off")
    assert compile_cache_dir() is None
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert compile_cache_dir() == tmp_path / "env" / "openvino"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache_dir() == tmp_path / "xdg" / "emotion-onnx" / "openvino"
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert compile_cache_dir(blocked) is None  # cannot be created: no cache, no error


def test_openvino_calibration_texts_spread_over_the_file():
    """Calibration files list their corpora one after another: a head would be one corpus alone."""
    from emotion_onnx_export.openvino_int8 import spread

    texts = [f"tweet {i}" for i in range(10)] + [f"reddit {i}" for i in range(10)]
    assert spread(texts, 4) == ["tweet 0", "tweet 5", "reddit 0", "reddit 5"]
    assert spread(texts[:3], 4) == texts[:3]


@pytest.mark.skipif(not HAS_OPENVINO, reason="the export-openvino extra is not installed")
def test_openvino_variant_takes_the_exports_smoothquant_strength(tmp_path_factory, checkpoints, validation_file,
                                                                 both_int8):  # fmt: skip
    smoothed = _export(tmp_path_factory, checkpoints, validation_file, openvino=True, smooth_alpha=0.5)
    q = manifest_io.load(smoothed).variant("int8-openvino").quantization
    assert q["smooth_quant_alpha"] == 0.5 and q["calibration_texts"] == 300
    assert "smooth_quant_alpha" not in manifest_io.load(both_int8).variant("int8-openvino").quantization
    weights = [manifest_io.load(d).variant("int8-openvino").weights for d in (smoothed, both_int8)]
    assert (smoothed / weights[0].file).read_bytes() != (both_int8 / weights[1].file).read_bytes()


@pytest.mark.skipif(not HAS_OPENVINO, reason="the export-openvino extra is not installed")
def test_openvino_variant_can_take_its_own_smoothquant_strength(tmp_path_factory, checkpoints, validation_file):
    """The two quantisers clip differently, so a model may pass the gate at a different strength in each."""
    out = _export(tmp_path_factory, checkpoints, validation_file, openvino=True, smooth_alpha=0.5,
                  openvino_smooth_alpha=0.8)  # fmt: skip
    manifest = manifest_io.load(out)
    assert manifest.variant("int8-openvino").quantization["smooth_quant_alpha"] == 0.8
    assert manifest.variant("int8").quantization["smooth_alpha"] == 0.5
