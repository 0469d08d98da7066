"""Balancing a fine-tuned model's neutral output: one offset added to its neutral logit.

A model trained on data where most texts are neutral (GoEmotions: three in four) learns to say
"neutral" readily, so with the switch on it takes emotional texts for neutral more often than it
takes neutral texts for emotional. The offset makes the two errors equally likely: it is chosen
on labelled validation texts to maximise the balanced accuracy of neutral against emotional (the
mean of the two recalls, which does not depend on how many texts of each kind the data holds),
and written into the classification head's bias. Only texts of sources that label some text neutral
count (a JSONL `source` field, as emotion_onnx_export.corpora writes): a source that never says
neutral (the emotion tweets) cannot show how readily the model does, and its many easy emotional
texts would drown the balance. The offset is part of the model, so the raw and
the calibrated argmax still agree, and the default answer (the six labels, without the neutral
column) does not change at all.

Balance is one operating point; a deployment may need another. `--emotional-floor SOURCE=A`
asks that, with the switch on, at least a share A of the emotional validation texts of SOURCE
keep their right emotion (neither taken for neutral nor for another emotion): among the offsets
that keep it, the best balanced accuracy wins, which is the one nearest the balance. The
embedded model asks it of the Reddit comments (`goemotions=0.8`), as its target does: a user who
turns neutral on still expects the emotional comments read.

    python -m emotion_onnx_export.neutral_offset RUN_DIR --validation VAL.jsonl [--emotional-floor SOURCE=A]

RUN_DIR is the output of `emotion-onnx finetune` (its checkpoint/ is rewritten in place and
metrics.json records the offset); export afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

GRID = np.round(np.arange(-3.0, 3.0001, 0.05), 2)  # offsets tried, in logits


def answers(logits: np.ndarray, neutral: int, offset: float) -> np.ndarray:
    """Each text's answer with the switch on and `offset` added to the neutral logit."""
    z = np.array(logits, dtype=np.float64)
    z[:, neutral] += offset
    return z.argmax(1)


def balanced_accuracy(logits: np.ndarray, labels: np.ndarray, neutral: int, offset: float) -> float:
    """The mean of the neutral recall and the emotional recall ("not neutral" said of a text that
    is not neutral), with `offset` added to the neutral logit."""
    said = answers(logits, neutral, offset) == neutral
    is_neutral = labels == neutral
    return 0.5 * (said[is_neutral].mean() + (~said[~is_neutral]).mean())


def emotional_accuracy(logits: np.ndarray, labels: np.ndarray, neutral: int, offset: float) -> float:
    """The share of the texts not labelled neutral whose answer, with the switch on and `offset`
    added to the neutral logit, is their own label."""
    emotional = labels != neutral
    return float((answers(logits[emotional], neutral, offset) == labels[emotional]).mean())


def fit_offset(
    logits: np.ndarray, labels: np.ndarray, neutral: int, floor: tuple[np.ndarray, float] | None = None
) -> tuple[float, float]:
    """(offset, balanced accuracy) over GRID; among equal scores the smallest change wins. With
    `floor` (rows, share), only the offsets whose emotional accuracy on those rows reaches the
    share compete."""
    if not (labels == neutral).any() or (labels == neutral).all():
        raise ValueError("balancing the neutral output needs validation texts both neutral and not")
    grid = GRID
    if floor is not None:
        rows, share = floor
        if not (labels[rows] != neutral).any():
            raise ValueError("the emotional floor's source has no emotional validation texts")
        grid = [d for d in GRID if emotional_accuracy(logits[rows], labels[rows], neutral, d) >= share]
        if not grid:
            raise ValueError(f"no offset in [{GRID[0]:g}, {GRID[-1]:g}] keeps {share:.0%} of the emotional texts right")
    scores = [(balanced_accuracy(logits, labels, neutral, d), -abs(d), d) for d in grid]
    best = max(scores)
    return float(best[2]), float(best[0])


def parse_floor(value: str) -> tuple[str, float]:
    """ "SOURCE=A" as (source, share), A in (0, 1]."""
    source, sep, share = value.partition("=")
    try:
        a = float(share)
    except ValueError:
        a = -1.0
    if not sep or not source or not 0.0 < a <= 1.0:
        raise argparse.ArgumentTypeError(f"expected SOURCE=SHARE with SHARE in (0, 1], got {value!r}")
    return source, a


def row_sources(path: Path, n: int) -> np.ndarray:
    """Each row's `source` field of a JSONL file ("" for every row of any other file)."""
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        return np.full(n, "")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return np.array([str(r.get("source", "")) for r in rows])


def sources_with_neutral(sources: np.ndarray, labels: np.ndarray, neutral: int) -> np.ndarray:
    """Which rows belong to a source (row_sources) that labels some text neutral; every row when
    the file names no sources."""
    with_neutral = set(sources[labels == neutral])
    return np.array([s in with_neutral for s in sources])


def apply_offset(model, neutral: int, offset: float) -> None:
    """Add `offset` to the bias of the classification head's `neutral` output, in place."""
    import torch

    with torch.no_grad():
        model.classifier.bias[neutral] += offset


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--validation", type=Path, required=True)
    p.add_argument("--neutral-label", default="neutral")
    p.add_argument(
        "--emotional-floor", type=parse_floor, metavar="SOURCE=SHARE",
        help="keep at least SHARE of SOURCE's emotional validation texts right with the switch on",
    )  # fmt: skip
    args = p.parse_args(argv)
    from transformers import AutoModelForSequenceClassification

    from .checkpoint import load_checkpoint
    from .data import label_ids, read_labelled
    from .reference import reference_logits

    checkpoint = args.run / "checkpoint"
    ckpt = load_checkpoint(str(checkpoint))
    if args.neutral_label not in ckpt.labels:
        print(f"error: {checkpoint} has no label {args.neutral_label!r} (labels: {ckpt.labels})", file=sys.stderr)
        return 2
    neutral = ckpt.labels.index(args.neutral_label)
    data = read_labelled(args.validation)
    labels = np.array(label_ids(data.labels, ckpt.labels, data.source))
    sources = row_sources(args.validation, len(labels))
    keep = sources_with_neutral(sources, labels, neutral)
    texts = [t for t, k in zip(data.texts, keep) if k]
    labels, sources = labels[keep], sources[keep]
    floor = None
    if args.emotional_floor:
        source, share = args.emotional_floor
        if source not in set(sources):
            print(f"error: no validation text of a source that labels neutral comes from {source!r}", file=sys.stderr)
            return 2
        floor = (sources == source, share)
    logits = reference_logits(ckpt, texts, 512)
    try:
        offset, score = fit_offset(logits, labels, neutral, floor)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    before = balanced_accuracy(logits, labels, neutral, 0.0)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
    apply_offset(model, neutral, offset)
    model.save_pretrained(checkpoint)
    metrics_path = args.run / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    previous = metrics.get("neutral_offset", {}).get("offset", 0.0)
    metrics["neutral_offset"] = {
        "offset": previous + offset,
        "validation": str(args.validation),
        "texts": len(texts),
        "balanced_accuracy_before": before,
        "balanced_accuracy_after": score,
    }
    if floor is not None:
        metrics["neutral_offset"]["emotional_floor"] = {
            "source": args.emotional_floor[0],
            "share": args.emotional_floor[1],
            "emotional_accuracy_after": emotional_accuracy(logits[floor[0]], labels[floor[0]], neutral, offset),
        }
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics["neutral_offset"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
