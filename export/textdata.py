"""Reading labelled texts (JSONL or CSV) for validation and calibration."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ExportInputError


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[int | str] | None  # raw values: ids or names; None when the file has no labels
    source: str
    names: list[str] | None = None  # a `label_name` column beside integer labels, when present


def read_labelled(path: str | Path, text_field: str = "text", label_field: str = "label") -> LabelledTexts:
    path = Path(path)
    if not path.is_file():
        raise ExportInputError(f"data file {path} does not exist")
    rows: list[dict] = []
    try:
        if path.suffix.lower() == ".csv":
            with open(path, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        else:
            with open(path, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise ExportInputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise ExportInputError(f"{path} is not UTF-8: {exc}") from None
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
    return LabelledTexts(texts, labels, str(path), names)


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
