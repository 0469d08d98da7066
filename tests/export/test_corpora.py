"""The corpora beside the emotion dataset, mapped into the six labels and neutral, read from the
shared data itself: the counts the data's SOURCE.md files give, the mapping rules, and a held-out
slice that is the same on every machine and never overlaps training."""

from __future__ import annotations

import json

import pytest

from emotion_onnx_export import corpora
from emotion_onnx_export.corpora import LABELS, Mapping


@pytest.fixture(scope="module")
def root(emotion_dir):
    return emotion_dir.parent


def test_single_label_rows_match_the_source_counts(root):
    train = corpora.goemotions("train", Mapping(near=False, multi_label=False), root)
    counts = corpora.counts(train)
    # goemotions/SOURCE.md: rows with exactly one label, train
    assert counts == {"sadness": 817, "joy": 853, "love": 1427, "anger": 1025, "fear": 430, "surprise": 720,
                      "neutral": 12823}  # fmt: skip
    dev = corpora.counts(corpora.goemotions("dev", Mapping(near=False, multi_label=False), root))
    assert dev == {"sadness": 84, "joy": 106, "love": 173, "anger": 109, "fear": 58, "surprise": 95, "neutral": 1592}


def test_xed_maps_five_of_its_eight_and_its_neutral_lines(root):
    rows = corpora.xed(Mapping(multi_label=False), root)
    counts = corpora.counts(rows)
    # xed/SOURCE.md: lines with exactly one label; anticipation, disgust and trust map to nothing
    assert counts["anger"] == 2391 and counts["fear"] == 1529 and counts["joy"] == 1721
    assert counts["sadness"] == 1527 and counts["surprise"] == 1429 and counts["love"] == 0
    assert counts["neutral"] == 9674 - sum(1 for r in rows if r["label"] == "neutral" and not r["text"].strip())


def test_near_labels_and_multi_label_rows_only_when_asked(root):
    core = corpora.goemotions("train", Mapping(near=False, multi_label=False), root)
    near = corpora.goemotions("train", Mapping(near=True, multi_label=False), root)
    multi = corpora.goemotions("train", Mapping(near=True, multi_label=True), root)
    assert len(core) < len(near) < len(multi)
    assert corpora.counts(near)["anger"] > corpora.counts(core)["anger"]  # annoyance joins anger
    assert {r["label"] for r in multi} <= set(LABELS)


def test_a_row_whose_labels_map_apart_or_not_at_all_is_dropped():
    m = Mapping(near=True, multi_label=True)
    assert corpora._one_label(["joy", "joy"], m) == "joy"
    assert corpora._one_label(["joy", "anger"], m) is None
    assert corpora._one_label(["joy", None], m) is None
    assert corpora._one_label(["joy", "joy"], Mapping(multi_label=False)) is None


def test_other_emotions_are_kept_apart_as_not_neutral(root, tmp_path, monkeypatch):
    m = Mapping(near=False, multi_label=False, other_emotions=True)
    assert corpora._one_label([None], m) == corpora.NOT_NEUTRAL  # admiration, curiosity, ...
    assert corpora._one_label(["joy", "anger"], m) == corpora.NOT_NEUTRAL
    assert corpora._one_label(["joy", "neutral"], m) is None  # some rater saw no emotion: neither
    assert corpora._one_label(["joy"], m) == "joy"
    monkeypatch.setattr(corpora, "data_root", lambda: root)
    plain = corpora.build(tmp_path / "plain", Mapping(near=False, multi_label=False))
    other = corpora.build(tmp_path / "other", m)
    for name in plain["files"]:  # the seven-label files stay as they were: validation never holds a partial label
        file = f"{name}.jsonl"
        assert (tmp_path / "plain" / file).read_bytes() == (tmp_path / "other" / file).read_bytes()
    for name in ("goemotions_train_other", "xed_train_other"):
        labels = {json.loads(line)["label"] for line in (tmp_path / "other" / f"{name}.jsonl").read_text().splitlines()}
        assert labels == {corpora.NOT_NEUTRAL} and other["files"][name]["rows"] > 5000


def test_the_held_out_slice_is_stable_and_disjoint(root):
    rows = corpora.goemotions("train", Mapping(), root)
    train, held = corpora.split_rows(rows, 0.06)
    again_train, again_held = corpora.split_rows(rows, 0.06)
    assert [r["id"] for r in held] == [r["id"] for r in again_held] and len(train) == len(again_train)
    assert 0.04 < len(held) / len(rows) < 0.08
    assert not {r["id"] for r in held} & {r["id"] for r in train}


def test_build_writes_every_file_and_keeps_dev_out_of_training(root, tmp_path, monkeypatch):
    monkeypatch.setattr(corpora, "data_root", lambda: root)
    report = corpora.build(tmp_path, Mapping(near=False, multi_label=False))
    assert set(report["files"]) == {"emotion_train", "goemotions_train", "xed_train", "validation", "goemotions_dev"}
    assert (tmp_path / "labels.txt").read_text().split() == list(LABELS)
    dev = {json.loads(line)["text"] for line in (tmp_path / "goemotions_dev.jsonl").read_text().splitlines()}
    for name in ("goemotions_train", "validation"):
        texts = {json.loads(line)["text"] for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()}
        assert len(texts & dev) < 0.01 * len(dev), name  # Reddit repeats a few short comments across splits
