"""The library API: pipeline-compatible output, probabilities, embeddings, streaming, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_onnx import EmotionClassifier, ModelNotFoundError
from emotion_onnx.calibration import apply_top1_map
from emotion_onnx_export.calibration import ece, reliability_bins, softmax, top_label_ece

LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]


@pytest.fixture(scope="module")
def clf(tiny_model):
    return EmotionClassifier(tiny_model)


@pytest.fixture(scope="module")
def clf_fp32(tiny_model):
    return EmotionClassifier(tiny_model, variant="fp32")


@pytest.fixture(scope="module")
def hf_pipeline(checkpoints):
    from transformers import pipeline

    return pipeline("text-classification", model=str(checkpoints("distilbert-tiny")), device=-1)


def _shape(obj):
    """The nesting structure and keys of a pipeline result, without the values."""
    if isinstance(obj, list):
        return [_shape(x) for x in obj]
    assert isinstance(obj, dict)
    return tuple(sorted(obj))


def assert_same_as_pipeline(ours, theirs) -> None:
    """The same nesting, labels and scores as transformers' pipeline gave."""
    assert _shape(ours) == _shape(theirs)

    def flat(x):
        return [d for item in x for d in (item if isinstance(item, list) else [item])]

    for a, b in zip(flat(ours), flat(theirs)):
        assert a["label"] == b["label"]
        assert a["score"] == pytest.approx(b["score"], abs=1e-5)


@pytest.mark.parametrize("kwargs", [{}, {"top_k": 1}, {"top_k": 2}, {"top_k": None}])
@pytest.mark.parametrize("inputs", ["i feel so happy today", ["i am scared of the dark", "what a lovely gift", ""]])
def test_output_shape_and_values_match_transformers_pipeline(clf_fp32, hf_pipeline, inputs, kwargs):
    ours = clf_fp32(inputs, calibrated=False, **kwargs)
    theirs = hf_pipeline(inputs, **kwargs)
    assert_same_as_pipeline(ours, theirs)


PIPELINE_KWARGS = [
    {"function_to_apply": "sigmoid"},
    {"function_to_apply": "none", "top_k": None},
    {"function_to_apply": "softmax", "top_k": 2},
    {"function_to_apply": "SIGMOID", "top_k": 1},
    {"return_all_scores": True},
    {"return_all_scores": False},
    {"return_all_scores": True, "top_k": 3},  # top_k wins, as in the pipeline
    {"batch_size": 2, "top_k": None},
    {"truncation": True},
]


@pytest.mark.filterwarnings("ignore:.*return_all_scores")
@pytest.mark.parametrize("kwargs", PIPELINE_KWARGS, ids=[str(k) for k in PIPELINE_KWARGS])
@pytest.mark.parametrize("inputs", ["i feel so happy today", ["i am scared of the dark", "what a lovely gift", ""]])
def test_the_pipelines_own_keywords_mean_the_same(clf_fp32, hf_pipeline, inputs, kwargs):
    """A user swapping this runtime in for pipeline("text-classification") passes these keywords."""
    ours = clf_fp32(inputs, calibrated=False, **kwargs)
    theirs = hf_pipeline(inputs, **kwargs)
    assert_same_as_pipeline(ours, theirs)


def test_return_all_scores_warns_as_the_pipeline_does(clf):
    with pytest.warns(UserWarning, match="return_all_scores is deprecated"):
        rows = clf(["a", "b"], return_all_scores=True)
    assert [[r["label"] for r in row] for row in rows] == [LABELS, LABELS]  # label order, not ranked


def test_unknown_and_bad_keywords(clf):
    with pytest.raises(TypeError, match="padding"):
        clf("x", padding=True)
    with pytest.raises(ValueError, match="function_to_apply"):
        clf("x", function_to_apply="relu")
    with pytest.raises(ValueError, match="batch_size"):
        clf("x", batch_size=0)
    with pytest.raises(ValueError, match="longer than the model's 512 tokens"):
        clf(["short", "word " * 600], truncation=False)
    assert clf("word " * 600, truncation=True)[0]["label"] in LABELS


def test_batch_size_bounds_each_batch_and_changes_no_answer(clf, test_texts):
    # every batch is padded on its way to an engine, one batch at a time or side by side
    seen = []
    pad = clf.encoder.pad
    clf.encoder.pad = lambda encodings, width=None: seen.append(len(encodings)) or pad(encodings, width)
    try:
        small = clf(test_texts[:40], top_k=None, batch_size=3)
    finally:
        clf.encoder.pad = pad
    assert len(seen) >= 14 and max(seen) <= 3
    assert small == clf(test_texts[:40], top_k=None)


def test_predict_proba_is_calibrated_by_default(clf):
    texts = ["i feel wonderful", "i am furious about this", "nothing"]
    logits = clf.logits(texts)
    assert logits.shape == (3, 6)
    calibrated = clf.predict_proba(texts)
    plain = clf.predict_proba(texts, calibrated=False)
    temperature_only = clf.predict_proba(texts, calibrated="temperature")
    cal = clf.calibration
    assert cal.top1_map is not None  # the export fitted one
    after_t = softmax(logits, clf.temperature)
    np.testing.assert_allclose(temperature_only, after_t, atol=1e-6)
    np.testing.assert_allclose(calibrated, apply_top1_map(after_t, cal.top1_map.x, cal.top1_map.y), atol=1e-6)
    np.testing.assert_allclose(plain, softmax(logits), atol=1e-6)
    np.testing.assert_allclose(calibrated.sum(1), 1.0, atol=1e-6)
    assert np.array_equal(calibrated.argmax(1), logits.argmax(1))
    assert clf.temperature != 1.0
    assert clf.labels == LABELS
    with pytest.raises(ValueError, match="calibrated must be"):
        clf.predict_proba(texts, calibrated="isotonic")


def test_softmax_is_stable_for_extreme_logits():
    p = softmax(np.array([[1e4, -1e4, 0.0], [-1e30, -1e30, -1e30]]))
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-12)


def test_ece_and_its_bins_by_hand():
    # two texts at 0.95 (one right) fall in the bin (14/15, 1]; two at 0.55 (both right) in (8/15, 9/15]
    conf, correct = np.array([0.95, 0.55, 0.95, 0.55]), np.array([True, True, False, True])
    bins = reliability_bins(conf, correct)
    assert [b["texts"] for b in bins] == [2, 2]
    np.testing.assert_allclose([b["bin"] for b in bins], [[8 / 15, 9 / 15], [14 / 15, 1.0]])
    np.testing.assert_allclose([b["accuracy"] for b in bins], [1.0, 0.5])
    np.testing.assert_allclose([b["confidence"] for b in bins], [0.55, 0.95])
    # |1.0 - 0.55| * 2/4 + |0.5 - 0.95| * 2/4
    assert top_label_ece(conf, correct) == pytest.approx(0.45)
    probs = np.array([[0.95, 0.05], [0.45, 0.55], [0.05, 0.95], [0.55, 0.45]])
    assert ece(probs, np.array([0, 1, 0, 0])) == pytest.approx(0.45)
    assert top_label_ece(np.array([]), np.array([])) == 0.0


def test_one_row_softmax_equals_the_batch_softmax():
    """A single row takes a numpy-free path; it must agree with the batch path row for row."""
    rng = np.random.default_rng(0)
    logits = np.concatenate([rng.normal(0, 8, (50, 6)), [[1e4, -1e4, 0, 0, 0, 0], [-1e30] * 6]])
    for t in (0.4, 1.0, 1.283):
        batch = softmax(logits, t)
        rows = np.concatenate([softmax(logits[i : i + 1], t) for i in range(len(logits))])
        assert rows.shape == batch.shape and rows.dtype == batch.dtype
        np.testing.assert_allclose(rows, batch, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="temperature"):
        softmax(logits[:1], 0)


def test_embed_comes_from_the_same_pass(clf):
    texts = ["i love my dog", "this is terrifying"]
    logits, raw = clf.forward(texts)
    emb = clf.embed(texts)
    assert emb.shape == (2, clf.embedding_dim)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(emb, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(clf.embed(texts, normalize=False), raw, atol=1e-6)
    np.testing.assert_allclose(clf.logits(texts), logits, atol=1e-6)


def test_stream_takes_a_generator_and_keeps_order(clf, test_texts):
    # the default int8 variant is batch-invariant, so chunking cannot change the scores
    texts = test_texts[:300]
    expected = clf(texts)
    gen = (t for t in texts)
    streamed = list(clf.stream(gen, chunk_size=64, return_probabilities=True, return_embedding=True))
    assert len(streamed) == len(texts)
    for got, want in zip(streamed, expected):
        assert got["label"] == want["label"]
        assert got["score"] == pytest.approx(want["score"], abs=1e-5)
        assert set(got["probabilities"]) == set(LABELS)
        assert len(got["embedding"]) == clf.embedding_dim


def test_stream_is_lazy(clf):
    pulled = []

    def source():
        for i in range(10_000):
            pulled.append(i)
            yield f"text number {i}"

    it = clf.stream(source(), chunk_size=16)
    first = next(it)
    assert "label" in first
    assert len(pulled) <= 17  # one chunk (plus the look-ahead that ended it), not the whole input


def test_pandas_series(clf):
    pd = pytest.importorskip("pandas")
    series = pd.Series(["i am happy", "i am sad"], index=[10, 20])
    assert clf(series) == clf(["i am happy", "i am sad"])
    np.testing.assert_allclose(clf.predict_proba(series), clf.predict_proba(["i am happy", "i am sad"]))


def test_numpy_array_of_strings(clf):
    arr = np.array(["i am happy", "i am sad"])
    assert clf(arr) == clf(["i am happy", "i am sad"])


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        (["fine", 3, "ok"], "index 1 is int"),
        (["fine", "ok", None], "index 2 is NoneType"),
        ([b"bytes"], "index 0 is bytes"),
    ],
)
def test_non_string_item_raises_type_error_naming_index(clf, inputs, fragment):
    with pytest.raises(TypeError, match=fragment):
        clf(inputs)
    with pytest.raises(TypeError, match=fragment):
        list(clf.stream(iter(inputs)))


def test_stream_type_error_counts_across_chunks(clf):
    items = ["a"] * 5 + [None]
    with pytest.raises(TypeError, match="index 5"):
        list(clf.stream(items, chunk_size=2))


def test_empty_inputs(clf):
    assert clf([]) == []
    assert clf.predict_proba([]).shape == (0, 6)
    assert clf.embed([]).shape == (0, clf.embedding_dim)
    # the empty string is a text like any other ([CLS] [SEP]), as in the reference pipeline
    (result,) = clf("")
    assert result["label"] in LABELS and 0 < result["score"] <= 1


@pytest.mark.parametrize("inputs", [["input_ids", "attention_mask"], ["input_ids", "attention_mask", "token_type_ids"]])
def test_one_text_inputs_equal_the_batch_path(clf, inputs):
    """One text skips padding; its arrays must equal a row of the padded batch path."""
    from dataclasses import replace

    from emotion_onnx.tokenization import TextEncoder

    encoder = TextEncoder(replace(clf.manifest, input_names=inputs))
    short, long = encoder.encode(["i am fine", "i am fine but a little tired of all this"])
    one, batch = encoder.pad([short]), encoder.pad([short, long])
    assert list(one) == list(batch) == inputs
    width = len(short.ids)
    for name in inputs:
        assert one[name].dtype == batch[name].dtype == np.int64
        assert np.array_equal(one[name][0], batch[name][0, :width])
    assert clf.forward_encodings([short])[0].shape == (1, len(LABELS))


def test_top1_takes_the_first_of_tied_scores(clf):
    row = np.array([0.1, 0.35, 0.35, 0.1, 0.05, 0.05])
    assert clf.rank(row, 1) == clf.rank(row, None)[:1] == [{"label": LABELS[1], "score": 0.35}]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_top_k(clf, bad):
    with pytest.raises(ValueError, match="top_k"):
        clf("text", top_k=bad)


def test_unsupported_container(clf):
    with pytest.raises(TypeError, match="stream"):
        clf(x for x in ["a"])


def test_no_path_and_no_embedded_model_is_a_clear_error(monkeypatch, tmp_path):
    from emotion_onnx import classifier

    monkeypatch.setattr(classifier, "default_model_dir", lambda: tmp_path / "absent")
    with pytest.raises(ModelNotFoundError, match="embedded default model is missing"):
        EmotionClassifier()


# ---------------------------------------------------------------------------- the same rules for stream()
@pytest.mark.parametrize("top_k", [-1, 0, True, 1.5, "2"])
def test_stream_refuses_the_top_k_that_call_refuses(clf, top_k):
    for run in (lambda: clf("x", top_k=top_k), lambda: list(clf.stream(["x"], top_k=top_k))):
        with pytest.raises(ValueError, match="top_k must be a positive int or None"):
            run()


@pytest.mark.parametrize("chunk_size", [0, -3, 1.5, True, "8"])
def test_stream_refuses_a_bad_chunk_size(clf, chunk_size):
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        list(clf.stream(["x"], chunk_size=chunk_size))


def test_a_lone_surrogate_is_named_and_the_records_before_it_kept(clf):
    with pytest.raises(ValueError, match=r"index 0 holds a lone surrogate \(\\ud800\)"):
        clf("a\ud800")
    records, stream = [], clf.stream(["i am thrilled", "i am furious", "b\udfff", "fine"], chunk_size=8)
    with pytest.raises(ValueError, match="index 2 holds a lone surrogate"):
        for record in stream:
            records.append(record)
    assert len(records) == 2


def test_threads_beyond_the_cpus_are_capped(tiny_model):
    from emotion_onnx.cpu import available_cpus

    capped = EmotionClassifier(tiny_model, intra_op_threads=100_000, batch_workers=100_000)
    assert capped.engine.session.get_session_options().intra_op_num_threads == available_cpus()
    with pytest.raises(ValueError, match="intra_op_threads must be a whole number"):
        EmotionClassifier(tiny_model, intra_op_threads=0)
