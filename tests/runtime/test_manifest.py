"""manifest.json, the contract between export and runtime: round trip, old versions, malformed
fields, file integrity, confinement to the model directory, and the check against the graph."""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from emotion_onnx import EmotionClassifier, IntegrityError, ManifestError, ModelNotFoundError
from emotion_onnx import manifest as manifest_io
from emotion_onnx.integrity import file_sha256
from emotion_onnx.manifest import TEMPERATURE_FEATURES, Calibration, ConfidenceMap, FileRef, TemperatureFeatures

V1 = Path(__file__).resolve().parent / "data" / "manifest_v1.json"


@pytest.fixture
def model_copy(tiny_model, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(tiny_model, dst)
    return dst


def edit_json(model_dir: Path, edit) -> None:
    path = model_dir / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def rehash(model_dir: Path, data: dict, key: str, name: str) -> None:
    """Point a file entry of the manifest (JSON) at `name`, with its real hash and size."""
    entry = data["tokenizer"] if key == "tokenizer" else data["variants"][key]
    ref = FileRef.of(model_dir, name)
    entry.update(file=name, sha256=ref.sha256, size=ref.size)


# ---------------------------------------------------------------------------- round trip and versions
def test_round_trip_through_write_and_load(tiny_model, tmp_path):
    m = manifest_io.load(tiny_model)
    calibrated = replace(
        m.variant("int8"),
        calibration=Calibration(1.7, "calibrated", ConfidenceMap((0.2, 0.9, 1.0), (0.3, 0.8, 1.0)), {"n_texts": 9}),
    )
    edited = replace(m, variants={**m.variants, "int8": calibrated}, name="tiny")
    manifest_io.write(edited, tmp_path)
    back = manifest_io.load(tmp_path)
    assert replace(back, directory=None) == replace(edited, directory=None)
    # without a temperature per text, written as version 3, which earlier runtimes read too
    assert json.loads((tmp_path / "manifest.json").read_text())["schema_version"] == 3
    assert back.variant("int8").calibration.top1_map.x == (0.2, 0.9, 1.0)


def test_temperature_features_round_trip_as_version_4(tiny_model, tmp_path):
    m = manifest_io.load(tiny_model)
    features = TemperatureFeatures((0.1, -0.2, 0.3, 0.0, 0.0))
    calibrated = replace(m.variant("int8"), calibration=Calibration(1.7, "calibrated", None, {}, features))
    edited = replace(m, variants={**m.variants, "int8": calibrated})
    manifest_io.write(edited, tmp_path)
    raw = json.loads((tmp_path / "manifest.json").read_text())
    assert raw["schema_version"] == manifest_io.SCHEMA_VERSION == 4
    assert raw["variants"]["int8"]["calibration"]["temperature_features"] == {
        "features": list(TEMPERATURE_FEATURES),
        "weights": [0.1, -0.2, 0.3, 0.0, 0.0],
    }
    assert manifest_io.load(tmp_path).variant("int8").calibration.features == features
    raw["variants"]["int8"]["calibration"]["temperature_features"]["features"][0] = "entropy"
    with pytest.raises(ManifestError, match="must name the features"):
        manifest_io.parse(raw)
    raw["variants"]["int8"]["calibration"]["temperature_features"] = {"features": list(TEMPERATURE_FEATURES),
                                                                      "weights": [1, 2]}  # fmt: skip
    with pytest.raises(ManifestError, match="weights must be 5 numbers"):
        manifest_io.parse(raw)


def test_a_version_1_manifest_still_loads():
    m = manifest_io.parse(json.loads(V1.read_text()))
    v = m.variant()
    assert m.embedding_dim == 384 and m.embedding_output == "embedding" and m.tokenizer.vocab_size is None
    assert v.calibration.temperature == pytest.approx(1.3436123403492763)
    assert v.calibration.calibrated and v.calibration.top1_map is None
    assert v.calibration.details["ece_after"] == pytest.approx(0.017218254909119973)
    assert v.engine == "onnxruntime" and v.batch_invariant


def test_only_keeps_one_variant(tiny_model):
    m = manifest_io.load(tiny_model).only("fp32-fused", name="x")
    assert list(m.variants) == ["fp32-fused"] and m.default_variant == "fp32-fused" and m.name == "x"


def test_write_refuses_what_load_would_refuse(tiny_model, tmp_path):
    m = manifest_io.load(tiny_model)
    bad = replace(m, variants={**m.variants, "int8": replace(m.variant("int8"), calibration=Calibration(math.nan))})
    with pytest.raises(ManifestError, match="temperature must be a finite number"):
        manifest_io.write(bad, tmp_path)
    assert not (tmp_path / "manifest.json").exists()


# ---------------------------------------------------------------------------- malformed fields
MALFORMED = [
    (lambda m: m.update(schema_version=99), "schema_version 99"),
    (lambda m: m.pop("labels"), "missing key 'labels'"),
    (lambda m: m.update(labels=["a", "a"]), "distinct"),
    (lambda m: m.update(default_variant="fp16"), "default_variant 'fp16'"),
    (lambda m: m["tokenizer"].update(max_length=4096), "max_length"),
    (lambda m: m["tokenizer"].update(pad_id=10**6), "pad_id"),
    (lambda m: m["variants"]["int8"]["calibration"].update(temperature=0), "temperature must be above 0"),
    (lambda m: m["variants"]["int8"]["calibration"].update(temperature=float("nan")), "finite"),
    (lambda m: m["variants"]["int8"]["calibration"].update(temperature=True), "finite"),
    (lambda m: m["variants"]["int8"]["calibration"].update(status="maybe"), "status"),
    (lambda m: m["variants"]["int8"]["calibration"].update(top1_map={"x": [0.9, 0.2], "y": [0.1, 0.2]}), "monotone"),
    (lambda m: m["variants"]["int8"]["calibration"].update(top1_map={"x": [0.2, 0.9], "y": [0.1]}), "same length"),
    (lambda m: m["variants"]["int8"]["calibration"].update(top1_map={"x": [0.2, 1.5], "y": [0.1, 1]}), r"\[0, 1\]"),
    (lambda m: m["variants"]["int8"].update(precision="fp8"), "precision 'fp8'"),
    (lambda m: m["variants"]["int8"].update(engine="tensorrt"), "engine 'tensorrt'"),
    (lambda m: m["variants"]["int8"].update(sha256="xyz"), "64 hexadecimal"),
    (lambda m: m["variants"]["int8"].update(size=-1), "negative"),
    (lambda m: m["inputs"].append("position_ids"), "unsupported or repeated input.s. position_ids"),
    (lambda m: m.update(variants=[]), "'variants' has the wrong type"),
]


def test_unknown_variant(tiny_model):
    with pytest.raises(ManifestError, match="available: fp32, fp32-fused, int8"):
        EmotionClassifier(tiny_model, variant="fp16")


def test_manifest_not_json(model_copy):
    (model_copy / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        EmotionClassifier(model_copy, variant="int8")


def test_missing_directory_and_manifest(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        EmotionClassifier(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError, match="no manifest.json"):
        EmotionClassifier(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        EmotionClassifier(tmp_path / "file")


# ---------------------------------------------------------------------------- integrity
def test_tampered_model_file_is_refused(model_copy):
    path = model_copy / "model_int8.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="model_int8.onnx.*modified"):
        EmotionClassifier(model_copy, variant="int8")


def test_truncated_model_file_is_refused(model_copy):
    path = model_copy / "model_int8.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(IntegrityError, match="truncated") as err:
        EmotionClassifier(model_copy, variant="int8")
    assert "1000" not in str(err.value)  # sizes are not echoed


def test_tampered_tokenizer_is_refused(model_copy):
    path = model_copy / "tokenizer.json"
    path.write_text(path.read_text().replace('"[UNK]"', '"[UNX]"', 1))
    with pytest.raises(IntegrityError, match="tokenizer.json"):
        EmotionClassifier(model_copy, variant="int8")


def test_an_upper_case_sha256_is_the_same_hash(model_copy):
    edit_json(model_copy, lambda m: m["variants"]["int8"].update(sha256=m["variants"]["int8"]["sha256"].upper()))
    assert EmotionClassifier(model_copy, variant="int8")("i am fine")


def test_verification_can_be_switched_off(model_copy):
    edit_json(model_copy, lambda m: m["variants"]["int8"].update(sha256="0" * 64))
    with pytest.raises(IntegrityError):
        EmotionClassifier(model_copy, variant="int8")
    assert EmotionClassifier(model_copy, variant="int8", verify=False)("i am fine")


# ---------------------------------------------------------------------------- confinement
def _point_int8_at(model_copy: Path, name: str) -> None:
    target = model_copy / name if not os.path.isabs(name) else Path(name)
    ref = FileRef.of(target.parent, target.name) if target.exists() else None

    def edit(m):
        m["variants"]["int8"]["file"] = name
        if ref is not None:
            m["variants"]["int8"].update(sha256=ref.sha256, size=ref.size)

    edit_json(model_copy, edit)


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_files_outside_the_model_directory_are_refused(model_copy, tmp_path, how):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(model_copy / "model_int8.onnx", outside / "model.onnx")  # the right bytes and hash
    if how == "absolute":
        name = str(outside / "model.onnx")
    elif how == "dotdot":
        name = "../outside/model.onnx"
    else:
        (model_copy / "link.onnx").symlink_to(outside / "model.onnx")
        name = "link.onnx"
    _point_int8_at(model_copy, name)
    with pytest.raises(ManifestError, match="outside the model directory") as err:
        EmotionClassifier(model_copy, variant="int8")
    assert str(outside) not in str(err.value) or how == "absolute"


def test_a_symlink_inside_the_directory_is_fine(model_copy):
    (model_copy / "sub").mkdir()
    os.replace(model_copy / "model_int8.onnx", model_copy / "sub" / "model_int8.onnx")
    (model_copy / "model_int8.onnx").symlink_to(model_copy / "sub" / "model_int8.onnx")
    assert EmotionClassifier(model_copy, variant="int8")("i am fine")


def test_the_tokenizer_is_confined_too(model_copy):
    edit_json(model_copy, lambda m: m["tokenizer"].update(file="/etc/hostname"))
    with pytest.raises(ManifestError, match="outside the model directory"):
        EmotionClassifier(model_copy, variant="int8")


# ---------------------------------------------------------------------------- the graph against its manifest
GRAPH_MISMATCH = [
    (lambda m: m.update(labels=m["labels"][:5]), "'logits' has width 6 but manifest.json says 5"),
    (lambda m: m.update(embedding_dim=31), "'embedding' has width 32 but manifest.json says 31"),
    (lambda m: m["outputs"].update(logits="scores"), "no output 'scores'"),
    (lambda m: m.update(inputs=["input_ids", "attention_mask", "token_type_ids"]), "takes inputs"),
    (lambda m: m["tokenizer"].update(vocab_size=100), "has 30522 tokens but manifest.json says 100"),
]


@pytest.mark.parametrize(
    ("edit", "fragment"), MALFORMED + GRAPH_MISMATCH, ids=[f for _, f in MALFORMED + GRAPH_MISMATCH]
)
def test_a_malformed_manifest_or_one_its_graph_contradicts_is_refused_at_load(model_copy, edit, fragment):
    edit_json(model_copy, edit)
    with pytest.raises(ManifestError, match=fragment):
        EmotionClassifier(model_copy, variant="int8")


def test_a_vocabulary_larger_than_the_embedding_table_fails_the_warm_up(model_copy):
    path = model_copy / "tokenizer.json"
    spec = json.loads(path.read_text())
    spec["model"]["vocab"]["zzzunseenzzz"] = len(spec["model"]["vocab"])
    path.write_text(json.dumps(spec))

    def edit(m):
        rehash(model_copy, m, "tokenizer", "tokenizer.json")
        m["tokenizer"]["vocab_size"] = len(spec["model"]["vocab"])

    edit_json(model_copy, edit)
    with pytest.raises(ManifestError, match="fails on a warm-up batch"):
        EmotionClassifier(model_copy, variant="int8")


def test_a_corrupt_graph_is_a_manifest_error(model_copy):
    path = model_copy / "model_int8.onnx"
    path.write_bytes(b"not an onnx graph" * 100)
    edit_json(model_copy, lambda m: rehash(model_copy, m, "int8", "model_int8.onnx"))
    with pytest.raises(ManifestError, match="not a graph onnxruntime can load") as err:
        EmotionClassifier(model_copy, variant="int8")
    assert str(model_copy) not in str(err.value)
    assert file_sha256(path)


# ---------------------------------------------------------------------------- the neutral label
V2 = Path(__file__).resolve().parent / "data" / "manifest_v2.json"  # the embedded model's before version 3


def test_a_version_2_manifest_still_loads_and_has_no_neutral_label():
    m = manifest_io.parse(json.loads(V2.read_text()))
    assert m.neutral_label is None and m.answer_labels() == m.labels
    assert all(v.neutral_calibration is None for v in m.variants.values())
    with pytest.raises(ValueError, match="no neutral output"):
        m.answer_columns(neutral=True)


def test_a_neutral_manifest_round_trips(tiny_neutral_model, tmp_path):
    m = manifest_io.load(tiny_neutral_model)
    assert m.neutral_label == "neutral" and m.labels[-1] == "neutral"
    assert m.answer_labels() == m.labels[:-1] and m.answer_labels(neutral=True) == m.labels
    for v in m.variants.values():
        assert v.neutral_calibration is not None and v.neutral_calibration.top1_map is not None
    manifest_io.write(m, tmp_path)
    raw = json.loads((tmp_path / "manifest.json").read_text())
    assert raw["schema_version"] == 3 and raw["neutral_label"] == "neutral"
    assert "calibration_neutral" in raw["variants"][m.default_variant]
    assert replace(manifest_io.load(tmp_path), directory=None) == replace(m, directory=None)


@pytest.mark.parametrize(("neutral", "fragment"), [("calm", "must be one of 'labels'"), (7, "neutral_label")])
def test_a_neutral_label_that_is_not_a_label_is_refused(tiny_neutral_model, neutral, fragment):
    raw = json.loads((tiny_neutral_model / "manifest.json").read_text())
    raw["neutral_label"] = neutral
    with pytest.raises(ManifestError, match=fragment):
        manifest_io.parse(raw)
