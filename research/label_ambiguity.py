"""How ambiguous the training labels are for the texts a model is sure of, and for those it is not.

    python research/label_ambiguity.py RUN_DIR [--variant int8] [--min-count 5]

Most texts in the emotion dataset say how the writer feels with one word after "feel"
("i feel so stressed ..."). For each such word, the training split gives how often each label
goes with it. A word's *purity* is the share of its training texts that carry its most common
label: 1.0 when the word always comes with one label, near 0.5 when two labels share it evenly.

The test texts are split into three bands of the model's top-1 confidence after its temperature,
on the ECE's own 15-bin edges: at most 0.6, 0.6 to 14/15, and above 14/15 (the top bin). For
each band: the texts, the model's accuracy, how many have a feeling word seen at least
--min-count times in training, and those words' median purity. A band whose words have purity
near 0.5 holds texts whose labels the data itself splits, where about half right is the best a
calibrated model can say.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

FEEL = re.compile(r"\b(?:feel|feels|feeling|felt)\b((?:\s+[a-z]+){1,6})")
# words between "feel" and the feeling itself: degree, determiners, pronouns, auxiliaries
FILLERS = frozenset(
    """a an the so very really quite rather pretty too more most less little bit kind sort of like that
    this it its as if is was be been being am are and or but for to in on at about with my me myself i im
    you your his her him she he they them their we our us all just even still totally completely
    incredibly extremely somewhat slightly much not no never always now again also how what when there
    here some any one have having has had need will would can could should do did get got make made""".split()
)
_EDGES = np.linspace(0.0, 1.0, 16)  # the ECE's bins, (lo, hi] as in emotion_onnx.calibration.reliability_bins
BANDS = (
    ("confidence <= 0.6", 0.0, _EDGES[9]),
    ("0.6 < confidence <= 14/15", _EDGES[9], _EDGES[14]),
    ("confidence > 14/15", _EDGES[14], 1.0),
)


def feeling_word(text: str) -> str | None:
    """The first word after feel/feels/feeling/felt that is not a filler, if any."""
    m = FEEL.search(text.lower())
    if m is None:
        return None
    return next((w for w in m.group(1).split() if w not in FILLERS), None)


def word_label_counts(texts: list[str], labels) -> dict[str, Counter]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for text, label in zip(texts, labels):
        word = feeling_word(text)
        if word is not None:
            counts[word][int(label)] += 1
    return dict(counts)


def purity(counts: Counter) -> float:
    return max(counts.values()) / sum(counts.values())


def bands(texts: list[str], y: np.ndarray, probs: np.ndarray, counts: dict[str, Counter], min_count: int = 5):
    """One row per confidence band: texts, accuracy, texts whose feeling word was seen at least
    min_count times in training, and the median purity of those words."""
    conf, correct = probs.max(axis=1), probs.argmax(axis=1) == y
    rows = []
    for name, low, high in BANDS:
        inside = np.flatnonzero((conf > low) & (conf <= high))
        words = [feeling_word(texts[i]) for i in inside]
        seen = [purity(counts[w]) for w in words if w in counts and sum(counts[w].values()) >= min_count]
        rows.append(
            {
                "band": name,
                "texts": len(inside),
                "accuracy": float(correct[inside].mean()) if len(inside) else float("nan"),
                "with_seen_word": len(seen),
                "median_purity": float(np.median(seen)) if seen else float("nan"),
                "share_purity_below_0.8": float(np.mean(np.array(seen) < 0.8)) if seen else float("nan"),
            }
        )
    return rows


def markdown_table(rows: list[dict], min_count: int = 5) -> str:
    """The bands as a markdown table; an empty band, or one with no seen word, shows a dash."""
    lines = [
        "| top-1 confidence after T | texts | accuracy "
        f"| with a feeling word seen {min_count}+ times in training | median purity of that word |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        accuracy = f"{r['accuracy']:.1%}" if r["texts"] else "—"
        purity_text = f"{r['median_purity']:.2f}" if r["with_seen_word"] else "—"
        lines.append(f"| {r['band']} | {r['texts']} | {accuracy} | {r['with_seen_word']} | {purity_text} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--variant", default="int8")
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--data", type=Path)
    args = p.parse_args(argv)

    from compare_calibrators import DATA, read_split

    from emotion_onnx import EmotionClassifier
    from emotion_onnx.calibration import softmax

    data = args.data or DATA
    train_texts, train_y = read_split(data, "train")
    texts, y = read_split(data, "test")
    clf = EmotionClassifier(args.run / "onnx", variant=args.variant)
    probs = softmax(clf.logits(texts), clf.temperature)
    rows = bands(texts, y, probs, word_label_counts(train_texts, train_y), args.min_count)
    print(markdown_table(rows, args.min_count))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
