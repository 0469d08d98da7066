"""Streaming readers (args, stdin, .txt, .jsonl, .csv) and writers (JSONL, CSV) for the CLI.

Readers yield one item per input record: a str, or None for a JSON null. Nothing is
skipped, so output index i always belongs to input record i.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from .errors import InputError


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


def read_lines(raw: BinaryIO, name: str, errors: str) -> Iterator[str]:
    """One text per line; an empty line is the empty text (it is classified, not skipped)."""
    for _, text in _decoded_lines(raw, name, errors):
        yield _strip_newline(text)


def read_jsonl(raw: BinaryIO, name: str, errors: str, field: str) -> Iterator[str | None]:
    for lineno, text in _decoded_lines(raw, name, errors):
        if not text.strip():
            raise InputError(f"{name}:{lineno}: empty line; every JSONL line must be an object")
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{name}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        if field not in obj:
            raise InputError(f"{name}:{lineno}: no field {field!r} (fields: {', '.join(obj) or 'none'})")
        value = obj[field]
        if value is not None and not isinstance(value, str):
            raise InputError(f"{name}:{lineno}: field {field!r} is {type(value).__name__}, not a string")
        yield value


def read_csv(raw: BinaryIO, name: str, errors: str, column: str) -> Iterator[str]:
    lines = (text for _, text in _decoded_lines(raw, name, errors))
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return
    if column not in header:
        raise InputError(f"{name}: no column {column!r} (columns: {', '.join(header)})")
    col = header.index(column)
    for row in reader:
        if len(row) <= col:
            raise InputError(f"{name}:{reader.line_num}: row has {len(row)} fields, no {column!r} value")
        yield row[col]


def open_input(path: str, stdin: BinaryIO) -> tuple[BinaryIO, str, str]:
    """(binary stream, display name, format) for a path; '-' is stdin (plain lines)."""
    if path == "-":
        return stdin, "<stdin>", "txt"
    p = Path(path)
    if not p.is_file():
        raise InputError(f"input file {path} does not exist")
    suffix = p.suffix.lower()
    fmt = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}.get(suffix, "txt")
    return open(p, "rb"), path, fmt


def iter_texts(raw: BinaryIO, name: str, fmt: str, errors: str, field: str, column: str) -> Iterator[Any]:
    if fmt == "jsonl":
        return read_jsonl(raw, name, errors, field)
    if fmt == "csv":
        return read_csv(raw, name, errors, column)
    return read_lines(raw, name, errors)


class RecordWriter:
    """Writes one output record per input, JSONL or CSV."""

    def __init__(self, out: TextIO, fmt: str, labels: list[str], probabilities: bool, embed: bool):
        self.out, self.fmt = out, fmt
        self.labels, self.probabilities, self.embed = labels, probabilities, embed
        self._csv = None
        if fmt == "csv":
            header = ["index", "label", "score"]
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
        row = [record["index"], record["label"], record["score"]]
        if self.probabilities:
            probs = record.get("probabilities") or {}
            row += [probs.get(label) for label in self.labels]
        if self.embed:
            emb = record.get("embedding")
            row.append(json.dumps(emb) if emb is not None else "")
        self._csv.writerow(row)


def stdin_binary(stdin: TextIO) -> BinaryIO:
    return stdin.buffer if hasattr(stdin, "buffer") else io.BytesIO(stdin.read().encode())


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
