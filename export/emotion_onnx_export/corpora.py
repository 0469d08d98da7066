"""The public corpora beside the emotion dataset, mapped into the embedded model's labels.

The embedded model knows six emotions (the emotion dataset's order) and "neutral" as a seventh
output that only an opt-in switch ever answers. Three corpora feed it:

- the emotion dataset (CARER tweets): the six labels as they are;
- GoEmotions (Reddit comments, 27 emotions + neutral, multi-label): its own names for the six and
  neutral, and optionally the near labels below;
- XED (English subtitle lines, Plutchik's eight): anger, fear, joy, sadness and surprise, and its
  neutral lines. It has no love; anticipation, disgust and trust map to none of the six.

A row is kept when every one of its labels maps and they all map to the same label; a row with
an unmapped label (admiration, curiosity, disgust, ...) or with labels that map apart is dropped,
never forced into a class. `multi_label=False` keeps single-label rows only. With
`other_emotions=True` the dropped rows that carry some emotion and no neutral are kept apart, as
"!neutral" (emotional, though not one of the six): a training run learns from them only that they
are not neutral (emotion_onnx_export.finetune's partial labels).

The data is read from where it lies (../shared/data, or beside $EMOTION_DATA_DIR) and never copied
into the repository or a package; `python -m emotion_onnx_export.corpora --out DIR` writes the
mapped JSONL files a training run reads.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .data import emotion_dir, read_labelled
from .errors import ExportInputError

SIX = ("sadness", "joy", "love", "anger", "fear", "surprise")
NEUTRAL = "neutral"
LABELS = (*SIX, NEUTRAL)

# GoEmotions labels that are near one of the six: used only when `near=True`.
GOEMOTIONS_NEAR = {"grief": "sadness", "nervousness": "fear", "annoyance": "anger", "excitement": "joy"}
# XED's ids (its README): 1 anger, 2 anticipation, 3 disgust, 4 fear, 5 joy, 6 sadness, 7 surprise, 8 trust.
XED_LABELS = {1: "anger", 4: "fear", 5: "joy", 6: "sadness", 7: "surprise"}
XED_IDS = range(1, 9)


@dataclass(frozen=True)
class Mapping:
    near: bool = True  # GoEmotions' near labels (GOEMOTIONS_NEAR) count as their label
    multi_label: bool = True  # keep multi-label rows whose labels all map to one label
    other_emotions: bool = False  # rows of other emotions (and no neutral) as NOT_NEUTRAL


NOT_NEUTRAL = "!neutral"  # a partial label: some emotion, not neutral, maybe none of the six


def data_root() -> Path:
    """The folder holding emotion/, goemotions/ and xed/: the parent of the emotion dataset's folder."""
    directory = emotion_dir()
    if directory is None:
        raise ExportInputError("the shared data was not found (set EMOTION_DATA_DIR to its emotion folder)")
    return directory.parent


def _one_label(names: list[str | None], mapping: Mapping) -> str | None:
    """The one label a row's mapped labels agree on, or None when any is unmapped or they differ;
    with `mapping.other_emotions`, NOT_NEUTRAL for such a row that has no neutral label."""
    if names and (len(names) == 1 or mapping.multi_label) and None not in names and len(set(names)) == 1:
        return names[0]
    if mapping.other_emotions and names and NEUTRAL not in names:
        return NOT_NEUTRAL
    return None


def goemotions(split: str, mapping: Mapping = Mapping(), root: Path | None = None) -> list[dict]:
    """GoEmotions `split` ("train" or "dev") as {"text", "label", "source", "id"} rows."""
    folder = (root or data_root()) / "goemotions"
    names = (folder / "emotions.txt").read_text(encoding="utf-8").split()
    own = {n: n for n in LABELS} | (GOEMOTIONS_NEAR if mapping.near else {})
    rows = []
    with open(folder / f"{split}.tsv", newline="", encoding="utf-8") as fh:
        for text, ids, comment in csv.reader(fh, delimiter="\t"):
            label = _one_label([own.get(names[int(i)]) for i in ids.split(",")], mapping)
            if label is not None:
                rows.append({"text": text, "label": label, "source": "goemotions", "id": comment})
    return rows


def xed(mapping: Mapping = Mapping(), root: Path | None = None) -> list[dict]:
    """XED's annotated and neutral English lines as {"text", "label", "source", "id"} rows (the id
    is the line's hash, so that a held-out slice is the same on every machine)."""
    folder = (root or data_root()) / "xed"
    rows = []
    with open(folder / "en-annotated.tsv", encoding="utf-8") as fh:
        for line in fh:
            text, _, ids = line.rstrip("\n").rpartition("\t")
            values = [int(v) for v in ids.split(",") if v.strip()]
            if not text.strip() or not values or any(v not in XED_IDS for v in values):
                continue
            label = _one_label([XED_LABELS.get(v) for v in values], mapping)
            if label is not None:
                rows.append({"text": text, "label": label, "source": "xed", "id": _digest(text)})
    with open(folder / "neu_en.txt", encoding="utf-8") as fh:
        for line in fh:
            _, _, text = line.rstrip("\n").partition("\t")
            if text.strip():
                rows.append({"text": text, "label": NEUTRAL, "source": "xed", "id": _digest(text)})
    return rows


def emotion(split: str, root: Path | None = None) -> list[dict]:
    """The emotion dataset's `split` with label names."""
    data = read_labelled((root or data_root()) / "emotion" / f"{split}.jsonl")
    return [
        {"text": t, "label": SIX[v] if isinstance(v, int) else v, "source": "emotion", "id": f"{split}-{i}"}
        for i, (t, v) in enumerate(zip(data.texts, data.labels))
    ]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def held_out(row: dict, share: float) -> bool:
    """Whether a row falls in the held-out slice: a stable hash of its id, the same on every machine."""
    return int(hashlib.sha256(row["id"].encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def split_rows(rows: list[dict], share: float) -> tuple[list[dict], list[dict]]:
    """(training rows, held-out rows) by `held_out`."""
    out = [r for r in rows if held_out(r, share)]
    return [r for r in rows if not held_out(r, share)], out


def counts(rows: list[dict]) -> dict[str, int]:
    """Rows per label: the seven, and NOT_NEUTRAL where some row has it."""
    partial = (NOT_NEUTRAL,) if any(r["label"] == NOT_NEUTRAL for r in rows) else ()
    return {name: sum(r["label"] == name for r in rows) for name in (*LABELS, *partial)}


def _full(rows: list[dict]) -> list[dict]:
    """The rows with one of the seven labels (not the partial NOT_NEUTRAL ones)."""
    return [r for r in rows if r["label"] != NOT_NEUTRAL]


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps({"text": r["text"], "label": r["label"], "source": r["source"]}) + "\n")
    return path


def build(out: Path, mapping: Mapping, held_share: float = 0.06) -> dict:
    """Write the training and validation files of every source into `out`, with the labels file.

    Validation (model selection and calibration) is the emotion validation split plus a held-out
    slice of GoEmotions train and of XED; GoEmotions dev stays out of both, for measuring."""
    go_train, go_val = split_rows(goemotions("train", mapping), held_share)
    xed_train, xed_val = split_rows(xed(mapping), held_share)
    files = {
        "emotion_train": emotion("train"),
        "goemotions_train": _full(go_train),
        "xed_train": _full(xed_train),
        "validation": emotion("validation") + _full(go_val) + _full(xed_val),
        "goemotions_dev": goemotions("dev", Mapping(near=False, multi_label=False)),
    }
    if mapping.other_emotions:  # their own files, so that a run names them; never in validation
        files["goemotions_train_other"] = [r for r in go_train if r["label"] == NOT_NEUTRAL]
        files["xed_train_other"] = [r for r in xed_train if r["label"] == NOT_NEUTRAL]
    report = {"mapping": {"near": mapping.near, "multi_label": mapping.multi_label,
                          "other_emotions": mapping.other_emotions}, "files": {}}  # fmt: skip
    for name, rows in files.items():
        write_jsonl(rows, out / f"{name}.jsonl")
        report["files"][name] = {"rows": len(rows), "labels": counts(rows)}
    (out / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    (out / "corpora.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write the mapped training corpora (six emotions + neutral) as JSONL.")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-near", action="store_true", help="leave out GoEmotions' near labels (grief, nervousness, ...)")
    p.add_argument("--single-label", action="store_true", help="single-label rows only")
    p.add_argument(
        "--other-emotions",
        action="store_true",
        help='also write the rows of other emotions (no neutral) as "!neutral", in files of their own',
    )
    p.add_argument("--held-share", type=float, default=0.06, help="share of GoEmotions train and XED held out")
    args = p.parse_args(argv)
    try:
        mapping = Mapping(near=not args.no_near, multi_label=not args.single_label, other_emotions=args.other_emotions)
        report = build(args.out, mapping, args.held_share)
    except ExportInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
