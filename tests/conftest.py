"""Session-wide fixtures: real checkpoints built locally once, exported through the real CLI code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emotion_onnx_export import data

IN_CI = os.environ.get("CI", "").lower() == "true"


def _require(path: Path | None, what: str) -> Path:
    if path is not None:
        return path
    message = f"{what} not found (set EMOTION_DATA_DIR, or run from the repository with ../shared beside it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def compile_cache(tmp_path_factory) -> Path:
    """OpenVINO's compiled models go to a folder of this session (never the user's ~/.cache);
    subprocesses inherit it."""
    folder = tmp_path_factory.mktemp("compile-cache")
    os.environ["EMOTION_ONNX_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def emotion_dir() -> Path:
    return _require(data.emotion_dir(), "the emotion dataset")


@pytest.fixture(scope="session")
def vocab_file(emotion_dir) -> Path:
    return _require(data.vocab_file(), "the uncased BERT vocab")


@pytest.fixture(scope="session")
def test_texts(emotion_dir) -> list[str]:
    return data.read_split("test").texts


@pytest.fixture(scope="session")
def validation_file(emotion_dir) -> Path:
    return emotion_dir / "validation.jsonl"


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory, vocab_file, emotion_dir):
    """Builds each synthetic checkpoint on first use, once per session."""
    from emotion_onnx_export.synthetic import EMOTION_LABELS, build_checkpoint

    root = tmp_path_factory.mktemp("checkpoints")
    built: dict[str, Path] = {}

    def get(shape: str) -> Path:
        """A shape of synthetic.SHAPES; with the suffix "-neutral", its checkpoint with a seventh
        label, neutral, that the runtime answers only when asked."""
        if shape not in built:
            corpus = data.read_split("train", 4000).texts
            base, neutral = shape.removesuffix("-neutral"), shape.endswith("-neutral")
            labels = [*EMOTION_LABELS, "neutral"] if neutral else EMOTION_LABELS
            # head_scale spreads the random logits so top-1 agreement is a meaningful check
            built[shape] = build_checkpoint(
                base, root / shape, vocab_file=vocab_file, corpus=corpus, head_scale=50.0, labels=labels
            )
        return built[shape]

    return get


@pytest.fixture(scope="session")
def exported(tmp_path_factory, checkpoints, validation_file):
    """Exports each checkpoint on first use (gate on the first 300 validation texts)."""
    from emotion_onnx_export import ExportConfig, run_export
    from emotion_onnx_export.gate import GateThresholds

    root = tmp_path_factory.mktemp("models")
    done: dict[str, Path] = {}

    def get(shape: str, limit: int | None = 300) -> Path:
        key = f"{shape}-{limit}"
        if key not in done:
            # dim-32 toy models: one fp32 scale per embedding row is a large share of the file,
            # so the 30 % size goal is checked on the full-size graph and the embedded model only
            thresholds = GateThresholds(int8_max_size_ratio=0.30 if shape == "distilbert-base" else 0.40)
            result = run_export(
                ExportConfig(
                    model=str(checkpoints(shape)),
                    out=root / key,
                    validation_file=validation_file,
                    limit=limit,
                    thresholds=thresholds,
                )
            )
            assert not result.failures, [g.reason for g in result.failures]
            done[key] = result.out
        return done[key]

    return get


@pytest.fixture(scope="session")
def tiny_model(exported) -> Path:
    return exported("distilbert-tiny")


@pytest.fixture(scope="session")
def tiny_neutral_model(exported) -> Path:
    """The tiny model with a seventh output, neutral (manifest neutral_label)."""
    return exported("distilbert-tiny-neutral")
