"""Streaming readers (args, stdin, .txt, .jsonl, .csv) and writers (JSONL, CSV) for the CLI.

Readers yield one (text, kept fields) pair per input record: the text is a str, or None for a
JSON null. Nothing is skipped, so output index i always belongs to input record i.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from .errors import InputError

Row = tuple[Any, dict[str, Any]]


def _decoded_lines(raw: BinaryIO, name: str, errors: str) -> Iterator[tuple[int, str]]:
    for lineno, line in enumerate(raw, 1):
        try:
            text = line.decode("utf-8", errors=errors)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{name}:{lineno}: invalid UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1}); "
                "pass --errors replace to substitute U+FFFD"
            ) from None
        if lineno == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield lineno, text


def _strip_newline(text: str) -> str:
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text


def read_lines(raw: BinaryIO, name: str, errors: str) -> Iterator[Row]:
    """One text per line; an empty line is the empty text (it is classified, not skipped)."""
    for _, text in _decoded_lines(raw, name, errors):
        yield _strip_newline(text), {}


def read_jsonl(raw: BinaryIO, name: str, errors: str, field: str, keep: Sequence[str] = ()) -> Iterator[Row]:
    for lineno, text in _decoded_lines(raw, name, errors):
        if not text.strip():
            raise InputError(f"{name}:{lineno}: empty line; every JSONL line must be an object")
        try:
            obj = json.loads(text)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            raise InputError(f"{name}:{lineno}: invalid JSON ({getattr(exc, 'msg', type(exc).__name__)})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{name}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        if field not in obj:
            raise InputError(f"{name}:{lineno}: no field {field!r} (fields: {', '.join(obj) or 'none'})")
        value = obj[field]
        if value is not None and not isinstance(value, str):
            raise InputError(f"{name}:{lineno}: field {field!r} is {type(value).__name__}, not a string")
        missing = [k for k in keep if k not in obj]
        if missing:
            raise InputError(f"{name}:{lineno}: no field {missing[0]!r} to keep (fields: {', '.join(obj)})")
        yield value, {k: obj[k] for k in keep}


def read_csv(raw: BinaryIO, name: str, errors: str, column: str, keep: Sequence[str] = ()) -> Iterator[Row]:
    lines = (text for _, text in _decoded_lines(raw, name, errors))
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return
    for wanted in (column, *keep):
        if wanted not in header:
            raise InputError(f"{name}: no column {wanted!r} (columns: {', '.join(header)})")
    col = header.index(column)
    kept = [(k, header.index(k)) for k in keep]
    for row in reader:
        if len(row) != len(header):
            raise InputError(f"{name}:{reader.line_num}: row has {len(row)} fields, the header {len(header)}")
        yield row[col], {k: row[i] for k, i in kept}


def open_input(path: str, stdin: BinaryIO) -> tuple[BinaryIO, str, str]:
    """(binary stream, display name, format) for a path; '-' is stdin (plain lines)."""
    if path == "-":
        return stdin, "<stdin>", "txt"
    p = Path(path)
    if p.is_dir():
        raise InputError(f"input {path} is a directory; give a .txt, .jsonl or .csv file")
    if not p.exists():
        raise InputError(f"input file {path} does not exist")
    suffix = p.suffix.lower()
    fmt = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}.get(suffix, "txt")
    try:
        return open(p, "rb"), path, fmt
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def open_output(path: str | None) -> TextIO:
    """stdout, or a new file at `path`, with one-line errors for a missing folder or a directory."""
    if not path:
        return sys.stdout
    p = Path(path)
    if p.is_dir():
        raise InputError(f"output {path} is a directory; give a file name")
    if not p.parent.is_dir():
        raise InputError(f"cannot write {path}: the folder {p.parent} does not exist")
    try:
        return open(p, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None


def read_records(
    raw: BinaryIO, name: str, fmt: str, errors: str, field: str, column: str, keep: Sequence[str] = ()
) -> Iterator[Row]:
    if fmt == "jsonl":
        return read_jsonl(raw, name, errors, field, keep)
    if fmt == "csv":
        return read_csv(raw, name, errors, column, keep)
    if keep:
        raise InputError(f"--keep copies fields of a JSONL or CSV input; {name} is plain text")
    return read_lines(raw, name, errors)


class RecordWriter:
    """Writes one output record per input, JSONL or CSV (the same fields in both)."""

    def __init__(
        self,
        out: TextIO,
        fmt: str,
        labels: list[str],
        top_k: int = 1,
        probabilities: bool = False,
        embed: bool = False,
        keep: Sequence[str] = (),
    ):
        self.out, self.fmt = out, fmt
        self.labels, self.top_k, self.probabilities, self.embed, self.keep = labels, top_k, probabilities, embed, keep
        self._csv = None
        if fmt == "csv":
            header = ["index", *keep, "label", "score"]
            k = min(top_k, len(labels))
            if k > 1:
                header += [f"{what}_{i}" for i in range(1, k + 1) for what in ("label", "score")]
            if probabilities:
                header += [f"p_{label}" for label in labels]
            if embed:
                header.append("embedding")
            self._csv = csv.writer(out, lineterminator="\n")
            self._csv.writerow(header)

    def write(self, record: dict[str, Any]) -> None:
        if self._csv is None:
            self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        row = [record["index"], *(record[k] for k in self.keep), record["label"], record["score"]]
        if min(self.top_k, len(self.labels)) > 1:
            ranked = record.get("top_k") or []
            for i in range(min(self.top_k, len(self.labels))):
                row += [ranked[i]["label"], ranked[i]["score"]] if i < len(ranked) else ["", ""]
        if self.probabilities:
            probs = record.get("probabilities") or {}
            row += [probs.get(label) for label in self.labels]
        if self.embed:
            emb = record.get("embedding")
            row.append(json.dumps(emb) if emb is not None else "")
        self._csv.writerow(row)


def stdin_binary(stdin: TextIO) -> BinaryIO:
    return stdin.buffer if hasattr(stdin, "buffer") else io.BytesIO(stdin.read().encode())
