"""`emotion-onnx finetune`: seeded training, early stopping, outputs, chained export, bad input."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from emotion_onnx_export.errors import ExportInputError
from emotion_onnx_export.finetune import (
    FinetuneConfig,
    average_states,
    class_weights,
    focal_loss,
    mixup_loss,
    pooled_and_head,
    run_finetune,
    with_partial_labels,
)
from helpers import assert_clean_error, run_cli


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, emotion_dir):
    root = tmp_path_factory.mktemp("data")
    for split, n in (("train", 400), ("validation", 150), ("test", 150)):
        lines = (emotion_dir / f"{split}.jsonl").read_text().splitlines()[:n]
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _config(small_data, checkpoints, out, **kw):
    return FinetuneConfig(
        train=small_data / "train.jsonl",
        validation=small_data / "validation.jsonl",
        out=out,
        base=str(checkpoints("distilbert-tiny")),
        **{"epochs": 2, "lr": 5e-4, "batch_size": 16, **kw},
    )


def test_finetune_then_export(small_data, checkpoints, tmp_path):
    out = tmp_path / "run"
    proc = run_cli(
        "finetune", "--train", str(small_data / "train.jsonl"), "--validation", str(small_data / "validation.jsonl"),
        "--test", str(small_data / "test.jsonl"), "--base", str(checkpoints("distilbert-tiny")), "--out", str(out),
        "--epochs", "2", "--lr", "5e-4", "--batch-size", "16", "--class-weights", "sqrt", "--export",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    # a log (not a TTY) shows how far each epoch is, then the epoch's figures
    log = proc.stderr.decode()
    assert re.search(r"epoch 1/2: step \d+/\d+, loss [\d.]+, \d+ s", log), log[-2000:]
    assert log.index("epoch 2/2: step") > log.index("epoch 1: train_loss=")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labels"] == ["sadness", "joy", "love", "anger", "fear", "surprise"]
    assert metrics["config"]["class_weights"] == "sqrt"
    w = metrics["class_weights"]
    assert w["surprise"] > w["joy"]  # the rarest class weighs more than the commonest
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    for e in metrics["epochs"]:
        assert {"train_loss", "val_loss", "val_accuracy", "val_macro_f1", "val_per_class_f1"} <= set(e)
    assert metrics["test"]["accuracy"] > 0
    for png in ("training_curves.png", "confusion_matrix.png", "confusion_matrix_test.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((out / "onnx" / "manifest.json").read_text())
    assert manifest["labels"] == metrics["labels"]
    cal = manifest["variants"]["int8"]["calibration"]
    assert cal["texts"].endswith("validation.jsonl") and cal["status"] == "calibrated"
    assert (out / "test_logits.npy").is_file()


def test_training_is_reproducible(small_data, checkpoints, tmp_path):
    a = run_finetune(_config(small_data, checkpoints, tmp_path / "a", epochs=1))
    b = run_finetune(_config(small_data, checkpoints, tmp_path / "b", epochs=1))
    assert a["epochs"][0]["train_loss"] == b["epochs"][0]["train_loss"]
    assert a["validation"] == b["validation"]


def test_class_weights():
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    balanced = class_weights(labels, 3, "balanced")
    # n / (k * count), rescaled so the weights average 1 over the training rows
    np.testing.assert_allclose(balanced / balanced[0], [1.0, 2.0, 6.0])
    assert balanced[labels].mean() == pytest.approx(1.0)
    sqrt = class_weights(labels, 3, "sqrt")
    np.testing.assert_allclose(sqrt / sqrt[0], np.sqrt([1.0, 2.0, 6.0]))
    assert sqrt[labels].mean() == pytest.approx(1.0)
    np.testing.assert_array_equal(class_weights(labels, 3, "none"), np.ones(3))
    with pytest.raises(ExportInputError, match="class id.s. 3 have none"):
        class_weights(labels, 4, "balanced")
    with pytest.raises(ExportInputError, match="unknown class weighting 'inverse'"):
        class_weights(labels, 3, "inverse")


def test_weighted_loss_changes_training(small_data, checkpoints, tmp_path):
    plain = run_finetune(_config(small_data, checkpoints, tmp_path / "plain", epochs=1))
    weighted = run_finetune(_config(small_data, checkpoints, tmp_path / "w", epochs=1, class_weights="balanced"))
    assert weighted["class_weights"]["surprise"] > 1.0 > weighted["class_weights"]["joy"]
    assert weighted["epochs"][0]["train_loss"] != plain["epochs"][0]["train_loss"]


def test_label_smoothing_changes_the_loss(small_data, checkpoints, tmp_path):
    plain = run_finetune(_config(small_data, checkpoints, tmp_path / "plain", epochs=1))
    smooth = run_finetune(_config(small_data, checkpoints, tmp_path / "ls", epochs=1, label_smoothing=0.1))
    # a smoothed target cannot be fitted to zero loss, so the training loss sits higher
    assert smooth["epochs"][0]["train_loss"] > plain["epochs"][0]["train_loss"]
    assert smooth["config"]["label_smoothing"] == 0.1
    with pytest.raises(ExportInputError, match=r"label smoothing must be in \[0, 1\), got 1.0"):
        run_finetune(_config(small_data, checkpoints, tmp_path / "bad", epochs=1, label_smoothing=1.0))


def test_focal_loss_against_cross_entropy():
    import torch

    logits = torch.tensor([[4.0, 0.0, -1.0], [0.2, 0.1, 0.0], [-2.0, 3.0, 0.5]])
    target = torch.tensor([0, 2, 0])
    ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    assert torch.allclose(focal_loss(logits, target, 0.0), ce.mean())
    p = torch.softmax(logits, -1)[torch.arange(3), target]
    assert torch.allclose(focal_loss(logits, target, 2.0), ((1 - p) ** 2 * ce).mean())
    # the confident right answer (p = 0.976) is scaled by 6e-4, the confident wrong one (p = 0.006) by 0.99
    per_row = [(1 - p[i]) ** 2 for i in range(3)]
    assert per_row[0] < 1e-3 and per_row[2] > 0.98
    weight = torch.tensor([2.0, 1.0, 0.5])
    expected = ((1 - p) ** 2 * ce * weight[target]).mean()
    assert torch.allclose(focal_loss(logits, target, 2.0, weight), expected)


def test_focal_gamma_trains_and_is_validated(small_data, checkpoints, tmp_path):
    plain = run_finetune(_config(small_data, checkpoints, tmp_path / "plain", epochs=1))
    focal = run_finetune(_config(small_data, checkpoints, tmp_path / "focal", epochs=1, focal_gamma=2.0))
    # (1 - p)^2 <= 1 scales every text's cross-entropy down
    assert focal["epochs"][0]["train_loss"] < plain["epochs"][0]["train_loss"]
    assert focal["config"]["focal_gamma"] == 2.0
    with pytest.raises(ExportInputError, match=r"focal gamma must be in \[0, 10\], got -1.0"):
        run_finetune(_config(small_data, checkpoints, tmp_path / "bad", epochs=1, focal_gamma=-1.0))
    with pytest.raises(ExportInputError, match="cannot be combined"):
        run_finetune(_config(small_data, checkpoints, tmp_path / "bad", epochs=1, focal_gamma=2.0, label_smoothing=0.1))


@pytest.mark.parametrize("name", ["distilbert-tiny", "bert-tiny"])
def test_pooled_and_head_compose_to_the_model(checkpoints, name):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(checkpoints(name)).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoints(name))
    feeds = tokenizer(["i feel great today", "i am scared"], padding=True, return_tensors="pt")
    pooled, head = pooled_and_head(model)
    with torch.inference_mode():
        x = pooled(feeds)
        assert x.shape == (2, model.config.hidden_size if name == "bert-tiny" else model.config.dim)
        assert torch.equal(head(x), model(**feeds).logits)


def test_pooled_and_head_rejects_other_architectures(checkpoints):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(checkpoints("roberta-tiny"))
    with pytest.raises(ExportInputError, match="supports DistilBERT and BERT checkpoints, not model type 'roberta'"):
        pooled_and_head(model)


def test_mixup_loss_by_hand():
    import torch

    w = torch.tensor([[1.0, -1.0, 0.5], [0.0, 2.0, -0.5]])  # a linear head: 2 features -> 3 classes

    def head(x):
        return x @ w

    pooled = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    target, perm = torch.tensor([0, 1, 2]), torch.tensor([2, 0, 1])
    ce = torch.nn.CrossEntropyLoss()
    # lam = 1 is the plain loss
    assert torch.allclose(mixup_loss(ce, pooled, head, target, 1.0, perm), ce(head(pooled), target))
    # lam = 0.3: the mixed vectors 0.3 x + 0.7 x[perm], scored 0.3 against y and 0.7 against y[perm]
    mixed = head(0.3 * pooled + 0.7 * pooled[perm])
    expected = 0.3 * ce(mixed, target) + 0.7 * ce(mixed, target[perm])
    assert torch.allclose(mixup_loss(ce, pooled, head, target, 0.3, perm), expected)
    # with an identity permutation it is the loss on the unmixed vectors, whatever lam
    same = torch.arange(3)
    assert torch.allclose(mixup_loss(ce, pooled, head, target, 0.3, same), ce(head(pooled), target))


def test_mixup_trains_reproducibly_and_is_validated(small_data, checkpoints, tmp_path):
    plain = run_finetune(_config(small_data, checkpoints, tmp_path / "plain", epochs=1))
    mixed = [run_finetune(_config(small_data, checkpoints, tmp_path / f"mix{i}", epochs=1, mixup=0.4)) for i in (1, 2)]
    assert mixed[0]["config"]["mixup"] == 0.4
    assert mixed[0]["epochs"][0]["train_loss"] == mixed[1]["epochs"][0]["train_loss"]
    assert mixed[0]["validation"] == mixed[1]["validation"]
    # same batches, same seed: only the mixing differs, and it changes what was trained on
    assert mixed[0]["epochs"][0]["train_loss"] != plain["epochs"][0]["train_loss"]
    with pytest.raises(ExportInputError, match=r"mixup alpha must be in \[0, 10\], got -0.5"):
        run_finetune(_config(small_data, checkpoints, tmp_path / "bad", epochs=1, mixup=-0.5))


def test_early_stopping_keeps_the_best_epoch(small_data, checkpoints, tmp_path):
    # a vanishing learning rate cannot improve macro-F1, so patience 1 stops after epoch 2
    m = run_finetune(_config(small_data, checkpoints, tmp_path / "es", epochs=5, lr=1e-12, patience=1))
    assert len(m["epochs"]) == 2
    assert m["best_epoch"] == 1
    assert m["validation"]["macro_f1"] == m["epochs"][0]["val_macro_f1"]


def test_average_states():
    import torch

    a = {"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([0, 1])}
    b = {"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([0, 1])}
    avg = average_states([a, b])
    torch.testing.assert_close(avg["w"], torch.tensor([2.0, 4.0]))
    assert avg["ids"].dtype == torch.int64 and avg["ids"].tolist() == [0, 1]


def test_checkpoint_averaging_is_scored_and_kept_when_best(small_data, checkpoints, tmp_path):
    m = run_finetune(_config(small_data, checkpoints, tmp_path / "avg", epochs=3, average_last=2, patience=3))
    first, *later = m["epochs"]
    assert "averaged" not in first
    assert [e["averaged"]["epochs"] for e in later] == [[1, 2], [2, 3]]
    # the saved checkpoint is the candidate with the best validation macro-F1, and says which it is
    scores = {"epoch": max(e["val_macro_f1"] for e in m["epochs"])}
    for e in later:
        scores["average of epochs " + ", ".join(map(str, e["averaged"]["epochs"]))] = e["averaged"]["val_macro_f1"]
    assert m["validation"]["macro_f1"] == pytest.approx(max(scores.values()), abs=1e-9)
    assert scores[m["best_weights"]] == pytest.approx(max(scores.values()), abs=1e-9)


def test_any_taxonomy_from_csv_with_label_order_file(checkpoints, tmp_path):
    rows = [("i love this", "pos"), ("this is bad", "neg"), ("it is a table", "neutral")] * 20
    csv_text = "text,label\n" + "\n".join(f'"{t}",{lab}' for t, lab in rows) + "\n"
    (tmp_path / "train.csv").write_text(csv_text)
    (tmp_path / "val.csv").write_text(csv_text)
    (tmp_path / "order.txt").write_text("neg\nneutral\npos\n")
    m = run_finetune(
        FinetuneConfig(
            train=tmp_path / "train.csv", validation=tmp_path / "val.csv", out=tmp_path / "o",
            base=str(checkpoints("distilbert-tiny")), labels_file=tmp_path / "order.txt", epochs=1, batch_size=8,
        )
    )  # fmt: skip
    assert m["labels"] == ["neg", "neutral", "pos"]
    saved = json.loads((tmp_path / "o" / "checkpoint" / "config.json").read_text())
    assert saved["id2label"] == {"0": "neg", "1": "neutral", "2": "pos"}


def test_partial_label_loss_by_hand():
    import torch

    z = torch.randn(4, 7, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, -7, 3, -2])  # full labels 0 and 3; "not 6" and "not 1"
    p = z.softmax(1)
    expected = -(p[0, 0].log() + (1 - p[1, 6]).log() + p[2, 3].log() + (1 - p[3, 1]).log()) / 4
    got = with_partial_labels(torch.nn.CrossEntropyLoss(), z, target)
    assert float(got) == pytest.approx(float(expected), rel=1e-5)
    full = torch.tensor([0, 6, 3, 1])
    assert float(with_partial_labels(torch.nn.CrossEntropyLoss(), z, full)) == pytest.approx(
        float(torch.nn.functional.cross_entropy(z, full)), rel=1e-6
    )


def test_partial_labels_teach_what_a_text_is_not(checkpoints, tmp_path):
    full = [("i love this so much", "pos"), ("this is bad and awful", "neg"), ("it is a table", "neutral")] * 12
    partial = [(f"wow what a day number {i}", "!neutral") for i in range(24)]
    rows = full + partial
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows))
    (tmp_path / "val.jsonl").write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in full))
    config = FinetuneConfig(
        train=tmp_path / "train.jsonl", validation=tmp_path / "val.jsonl", out=tmp_path / "o",
        base=str(checkpoints("distilbert-tiny")), epochs=3, batch_size=8, lr=1e-3,
    )  # fmt: skip
    m = run_finetune(config)
    assert m["labels"] == ["neg", "neutral", "pos"]  # "!neutral" is no label of its own
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "o" / "checkpoint")
    tok = AutoTokenizer.from_pretrained(tmp_path / "o" / "checkpoint")
    import torch

    with torch.no_grad():
        p = model(**tok([t for t, _ in partial], return_tensors="pt", padding=True)).logits.softmax(1)
    assert float(p[:, 1].mean()) < 0.5  # the texts said to be "not neutral" are mostly not called neutral
    # a partial label names a training label, and only training files may hold one
    (tmp_path / "bad.jsonl").write_text(json.dumps({"text": "x", "label": "!neutral"}) + "\n")
    with pytest.raises(ExportInputError, match="'!neutral'.*not in the training labels"):
        run_finetune(replace(config, validation=tmp_path / "bad.jsonl", out=tmp_path / "o2"))
    (tmp_path / "bad2.jsonl").write_text(
        "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in [*full, ("x", "!joy")])
    )
    with pytest.raises(ExportInputError, match="'!joy'.*not in the training labels"):
        run_finetune(replace(config, train=tmp_path / "bad2.jsonl", out=tmp_path / "o3"))


@pytest.mark.parametrize(
    ("train", "val", "fragments"),
    [
        ('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n', '{"text": "c", "label": "z"}\n',
         ["'z'", "not in the training labels"]),
        ('{"body": "a", "label": "x"}\n', '{"text": "c", "label": "x"}\n', ["no 'text' column"]),
        ('{"text": "a", "label": "x"}\n{"text": "b", "label": "x"}\n', '{"text": "c", "label": "x"}\n',
         ["1 class", "at least 2"]),
        ("", '{"text": "c", "label": "x"}\n', ["is empty"]),
    ],
)  # fmt: skip
def test_bad_training_data(tmp_path, checkpoints, train, val, fragments):
    (tmp_path / "train.jsonl").write_text(train)
    (tmp_path / "val.jsonl").write_text(val)
    proc = run_cli(
        "finetune", "--train", str(tmp_path / "train.jsonl"), "--validation", str(tmp_path / "val.jsonl"),
        "--base", str(checkpoints("distilbert-tiny")), "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert_clean_error(proc, *fragments)
    assert not (tmp_path / "out").exists()
