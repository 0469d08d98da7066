"""Bad input to `emotion-onnx export`: one line on stderr, exit code 2, nothing written."""

from __future__ import annotations

import json

import pytest

from helpers import assert_clean_error, run_cli


def test_missing_path(tmp_path):
    proc = run_cli("export", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert_clean_error(proc, "does not exist", "nope")
    assert not (tmp_path / "out").exists()


def test_unreachable_hub_id(tmp_path):
    proc = run_cli("export", "no-such-org/no-such-model", "--out", str(tmp_path / "out"))
    assert_clean_error(proc, "no-such-org/no-such-model", "Hugging Face Hub")


def test_checkpoint_without_classification_head(tmp_path, checkpoints):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    src = checkpoints("distilbert-tiny")
    bare = tmp_path / "bare"
    AutoModelForSequenceClassification.from_pretrained(src).distilbert.save_pretrained(bare)
    AutoTokenizer.from_pretrained(src).save_pretrained(bare)
    proc = run_cli("export", str(bare), "--out", str(tmp_path / "out"))
    assert_clean_error(proc, "no trained classification head", "bare encoder")


def test_unsupported_architecture(tmp_path):
    ckpt = tmp_path / "gpt2ish"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1}))
    proc = run_cli("export", str(ckpt), "--out", str(tmp_path / "out"))
    assert_clean_error(proc, "'gpt2'", "not supported", "bert, distilbert, roberta")


def test_non_empty_output_directory_needs_force(tmp_path, checkpoints):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    proc = run_cli("export", str(checkpoints("distilbert-tiny")), "--out", str(out))
    assert_clean_error(proc, "not empty", "--force")
    assert (out / "keep.txt").read_text() == "precious"


def test_unknown_label_in_validation_file(tmp_path, checkpoints):
    data = tmp_path / "val.jsonl"
    data.write_text(json.dumps({"text": "i am calm", "label": "serenity"}) + "\n")
    proc = run_cli(
        "export", str(checkpoints("distilbert-tiny")), "--out", str(tmp_path / "o"), "--validation", str(data)
    )
    assert_clean_error(proc, "serenity", "does not know")


@pytest.mark.parametrize("content", ["", '{"words": "x"}\n'])
def test_unusable_validation_file(tmp_path, checkpoints, content):
    data = tmp_path / "val.jsonl"
    data.write_text(content)
    proc = run_cli(
        "export", str(checkpoints("distilbert-tiny")), "--out", str(tmp_path / "o"), "--validation", str(data)
    )
    assert_clean_error(proc, str(data))
