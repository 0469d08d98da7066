"""Labelled texts: the one reader of JSONL/CSV files and the one place that finds the emotion
dataset ($EMOTION_DATA_DIR, else ../shared/data/emotion from the working directory).

The dataset is for research use only: it is read from where it lies, never copied.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ExportInputError

DATA_ENV = "EMOTION_DATA_DIR"


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[int | str] | None  # raw values: ids or names; None when the file has no labels
    source: str
    names: list[str] | None = None  # a `label_name` column beside integer labels, when present
    # each row's corpus (a `source` column, as emotion_onnx_export.corpora writes), when present:
    # calibration weighs every corpus alike
    groups: list[str] | None = None

    def head(self, limit: int | None) -> LabelledTexts:
        if not limit:
            return self
        labels = self.labels[:limit] if self.labels is not None else None
        names = self.names[:limit] if self.names is not None else None
        groups = self.groups[:limit] if self.groups is not None else None
        return LabelledTexts(self.texts[:limit], labels, self.source, names, groups)


def emotion_dir() -> Path | None:
    """The emotion dataset's folder (holding train/validation/test.jsonl), or None."""
    env = os.environ.get(DATA_ENV)
    candidate = Path(env) if env else Path.cwd().parent / "shared" / "data" / "emotion"
    return candidate if (candidate / "validation.jsonl").is_file() else None


def emotion_split(split: str) -> Path:
    """The JSONL file of one split; a clear error when the dataset is not there."""
    directory = emotion_dir()
    if directory is None:
        raise ExportInputError(
            f"the emotion dataset was not found (set {DATA_ENV} to its folder, or place ../shared/data/emotion "
            "beside the working directory)"
        )
    return directory / f"{split}.jsonl"


def vocab_file() -> Path | None:
    """The uncased BERT vocab that lies beside the dataset's folder, if it does."""
    directory = emotion_dir()
    path = directory.parent / "bert-base-uncased-vocab.txt" if directory else None
    return path if path is not None and path.is_file() else None


def read_split(split: str, limit: int | None = None) -> LabelledTexts:
    return read_labelled(emotion_split(split)).head(limit)


def _rows(path: Path) -> list[dict]:
    try:
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8") as fh:
                return list(csv.DictReader(fh))
        rows = []
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ExportInputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
                    if not isinstance(row, dict):
                        raise ExportInputError(f"{path}:{lineno}: expected a JSON object")
                    rows.append(row)
        return rows
    except UnicodeDecodeError as exc:
        raise ExportInputError(f"{path} is not UTF-8: {exc}") from None


def read_labelled(path: str | Path, text_field: str = "text", label_field: str = "label") -> LabelledTexts:
    """Texts (and labels, when the column exists) from a JSONL or CSV file."""
    path = Path(path)
    if not path.is_file():
        raise ExportInputError(f"data file {path} does not exist")
    rows = _rows(path)
    if not rows:
        raise ExportInputError(f"data file {path} is empty")
    if text_field not in rows[0]:
        raise ExportInputError(f"{path} has no {text_field!r} column/field (found: {', '.join(rows[0])})")
    texts = []
    for i, row in enumerate(rows):
        value = row.get(text_field)
        if not isinstance(value, str):
            raise ExportInputError(f"{path}: row {i + 1} has no text in {text_field!r}")
        texts.append(value)
    labels = None
    if label_field in rows[0]:
        labels = []
        for i, row in enumerate(rows):
            value = row.get(label_field)
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            if not isinstance(value, (int, str)) or isinstance(value, bool):
                raise ExportInputError(f"{path}: row {i + 1} has no label in {label_field!r}")
            labels.append(value)
    names = None
    if labels is not None and "label_name" in rows[0] and label_field != "label_name":
        names = [str(row.get("label_name")) for row in rows]
    groups = [str(row.get("source", "")) for row in rows] if "source" in rows[0] and text_field != "source" else None
    return LabelledTexts(texts, labels, str(path), names, groups)


def label_ids(raw: list[int | str], names: list[str], source: str) -> list[int]:
    """Map raw labels (ids or names) onto the model's label ids; unknown labels are an error."""
    index = {name: i for i, name in enumerate(names)}
    out = []
    for row, value in enumerate(raw, 1):
        if isinstance(value, int):
            if not 0 <= value < len(names):
                raise ExportInputError(f"{source}: row {row} has label id {value}; the model has {len(names)}")
            out.append(value)
        elif value in index:
            out.append(index[value])
        else:
            raise ExportInputError(
                f"{source}: row {row} has label {value!r}, which the model does not know (labels: {', '.join(names)})"
            )
    return out
