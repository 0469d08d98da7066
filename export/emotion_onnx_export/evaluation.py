"""The evaluation sets of the embedded model, and every figure measured on them, through the runtime.

One place for both, so that the model card, the CI gate (no torch) and a person re-measuring get
the same numbers:

- `emotion-test`: the emotion dataset's test split (six labels);
- `goemotions-dev`: GoEmotions dev, the rows with exactly one label among the six and neutral
  (no near labels: the labels as the raters gave them);
- `realworld` and `realworld-dev`: the project's hand-written sets (models/realworld/).

`score(clf, data)` measures the default answer on the rows labelled with one of the six, and, for
a model with a neutral output, the answer with the switch on over every row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .calibration import ece, reliability_bins
from .corpora import NEUTRAL, SIX, Mapping, data_root, emotion, goemotions
from .metrics import summary

CONFIDENT = 0.9  # an error above this calibrated confidence is one a user notices
REALWORLD = Path(__file__).resolve().parents[2] / "models" / "realworld"


@dataclass(frozen=True)
class EvalSet:
    name: str
    texts: list[str]
    labels: list[str]  # the six and, in some sets, neutral

    @property
    def emotional(self) -> np.ndarray:
        return np.array([label != NEUTRAL for label in self.labels])


def _jsonl(path: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def evaluation_sets(root: Path | None = None, realworld: Path = REALWORLD) -> dict[str, EvalSet]:
    """Every evaluation set, read from where the data lies (never copied)."""
    root = root or data_root()
    test = emotion("test", root)
    dev = goemotions("dev", Mapping(near=False, multi_label=False), root)
    sets = {
        "emotion-test": EvalSet("emotion-test", *_rows(test)),
        "goemotions-dev": EvalSet("goemotions-dev", *_rows(dev)),
    }
    for name, file in (("realworld", "eval.jsonl"), ("realworld-dev", "dev.jsonl")):
        if (realworld / file).is_file():
            sets[name] = EvalSet(name, *_jsonl(realworld / file))
    return sets


def _rows(rows: list[dict]) -> tuple[list[str], list[str]]:
    return [r["text"] for r in rows], [r["label"] for r in rows]


def _answer_figures(probs: np.ndarray, logits: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, F1s, ECE and the confidently wrong of one answer (probabilities over `labels`)."""
    pred, conf = probs.argmax(1), probs.max(1)
    figures = summary(y, pred, labels)
    figures.update(
        texts=len(y),
        ece=ece(probs, y),
        confidently_wrong=int(((pred != y) & (conf > CONFIDENT)).sum()),
        confidently_wrong_share=float(((pred != y) & (conf > CONFIDENT)).mean()) if len(y) else 0.0,
        bins=reliability_bins(conf, pred == y),
        raw_argmax_agrees=bool((logits.argmax(1) == pred).all()),
    )
    return figures


def score(clf, data: EvalSet, reference_logits: np.ndarray | None = None) -> dict:
    """The figures of one set: "default" (the six labels, on the rows labelled with one of them)
    and, for a model with a neutral output, "neutral" (the switch on, every row, with the
    neutral label's F1). `reference_logits` (PyTorch's, every output) adds the top-1 agreement."""
    six = clf.answer_labels(False)
    raw = clf.forward(data.texts)[0]
    rows = data.emotional
    y6 = np.array([six.index(label) for label, keep in zip(data.labels, rows) if keep])
    default_logits = raw[rows][:, clf.manifest.answer_columns(False)]
    out = {"texts": len(data.texts), "emotional_texts": int(rows.sum())}
    out["default"] = _answer_figures(clf.probabilities(raw[rows]), default_logits, y6, six)
    if reference_logits is not None:
        columns = clf.manifest.answer_columns(False)
        ref = reference_logits[rows][:, columns]
        out["default"]["agreement"] = float((ref.argmax(1) == default_logits.argmax(1)).mean())
        out["default"]["pytorch"] = summary(y6, ref.argmax(1), six)
    if clf.has_neutral:
        every = clf.answer_labels(True)
        y7 = np.array([every.index(label) for label in data.labels])
        probs = clf.probabilities(raw, True, True)
        figures = _answer_figures(probs, raw, y7, every)
        figures["neutral_f1"] = figures["per_class_f1"][NEUTRAL]
        figures["emotional_accuracy"] = float((probs[rows].argmax(1) == y7[rows]).mean()) if rows.any() else None
        if reference_logits is not None:
            figures["agreement"] = float((reference_logits.argmax(1) == raw.argmax(1)).mean())
        out["neutral"] = figures
    return out


def score_all(clf, sets: dict[str, EvalSet], references: dict[str, np.ndarray] | None = None) -> dict:
    return {name: score(clf, data, (references or {}).get(name)) for name, data in sets.items()}


__all__ = ["CONFIDENT", "EvalSet", "NEUTRAL", "SIX", "evaluation_sets", "score", "score_all"]
