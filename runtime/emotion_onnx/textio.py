"""Streaming readers (args, stdin, .txt, .jsonl, .csv) and writers (JSONL, CSV) for the CLI.

Readers yield one (text, kept fields) pair per input record: the text is a str, or None for a
JSON null. Nothing is skipped, so output index i always belongs to input record i.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from .errors import InputError, OutputError

Row = tuple[Any, dict[str, Any]]


MAX_LINE_BYTES = 16 << 20  # one record; the model reads a few thousand characters of it at most


def _raw_lines(raw: BinaryIO, name: str) -> Iterator[bytes]:
    """The lines of `raw`, each at most MAX_LINE_BYTES (a longer one, /dev/zero say, is an error
    rather than unbounded memory)."""
    lineno = 0
    while True:
        line = raw.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        lineno += 1
        if len(line) > MAX_LINE_BYTES:
            raise InputError(f"{name}:{lineno}: the line is longer than {MAX_LINE_BYTES >> 20} MiB")
        yield line


def _decoded_lines(raw: BinaryIO, name: str, errors: str) -> Iterator[tuple[int, str]]:
    for lineno, line in enumerate(_raw_lines(raw, name), 1):
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
            obj = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or type(exc).__name__
            raise InputError(f"{name}:{lineno}: invalid JSON ({why[:200]})") from None
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
        kept = {k: obj[k] for k in keep}
        try:
            json.dumps([value, kept], ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            where = field if value is not None and _has_surrogate(value) else "a kept field"
            code = ord(exc.object[exc.start])
            message = f"{where} holds a lone surrogate (\\u{code:04x}), which is not text"
            raise InputError(f"{name}:{lineno}: {message}") from None
        yield value, kept


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {literal[:20]} is too large for a float")
    return value


def read_csv(raw: BinaryIO, name: str, errors: str, column: str, keep: Sequence[str] = ()) -> Iterator[Row]:
    lines = (text for _, text in _decoded_lines(raw, name, errors))
    reader = _csv_rows(csv.reader(lines), name)
    header = next(reader, None)
    if header is None:
        return
    for wanted in (column, *keep):
        if wanted not in header:
            raise InputError(f"{name}: no column {wanted!r} (columns: {', '.join(header)})")
    col = header.index(column)
    kept = [(k, header.index(k)) for k in keep]
    for line_num, row in reader:
        if len(row) != len(header):
            raise InputError(f"{name}:{line_num}: row has {len(row)} fields, the header {len(header)}")
        yield row[col], {k: row[i] for k, i in kept}


def _csv_rows(reader, name: str) -> Iterator:
    """The header, then (line number, row) pairs; the csv module's errors (a bare CR line ending, a
    field over its size limit) as one line naming the line."""
    with _field_limit(MAX_LINE_BYTES):
        first = True
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                hint = "; use LF or CRLF line endings" if "new-line character" in str(exc) else ""
                what = str(exc).split(" - ")[0]
                raise InputError(f"{name}:{max(reader.line_num, 1)}: not valid CSV ({what}{hint})") from None
            yield row if first else (reader.line_num, row)
            first = False


@contextlib.contextmanager
def _field_limit(limit: int):
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


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


class Output:
    """Where the records go. A regular file (new or existing) is written to a temporary file beside
    it and renamed into place by `commit`, so an interrupted or failed run never leaves a half-written
    or empty file where a good one was; `discard` removes the temporary file. stdout, a device
    (/dev/null) or a pipe is written directly. A write that fails (a full disk, an I/O error) is an
    OutputError naming the path, never a traceback."""

    def __init__(self, path: str | None):
        self.name = path or "<stdout>"
        self._target: Path | None = None
        self._tmp: Path | None = None
        if not path:
            self._fh: TextIO = sys.stdout
            return
        target = Path(os.path.realpath(path))  # through a link: the file it names is replaced, not the link
        if target.exists() and not target.is_file():  # a device or a pipe: written as it is
            self._fh = self._open(Path(path))
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        self._target, self._tmp = target, Path(tmp)
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask()
        os.fchmod(fd, mode)
        self._fh = os.fdopen(fd, "w", encoding="utf-8", newline="")

    def _open(self, path: Path) -> TextIO:
        try:
            return open(path, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise OutputError(f"cannot write {self.name}: {exc.strerror}") from None

    def write(self, text: str) -> None:
        try:
            self._fh.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write {self.name}: {exc.strerror}") from None

    def flush(self) -> None:
        try:
            self._fh.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write {self.name}: {exc.strerror}") from None

    def commit(self) -> None:
        """Everything written reaches the target (for a file: renamed into place)."""
        self.flush()
        if self._fh is sys.stdout:
            return
        try:
            if self._tmp is not None:
                os.fsync(self._fh.fileno())
            self._fh.close()
        except OSError as exc:
            self.discard()
            raise OutputError(f"cannot write {self.name}: {exc.strerror}") from None
        if self._tmp is not None:
            os.replace(self._tmp, self._target)
            self._tmp = None

    def discard(self) -> None:
        """Nothing reaches a file target: the temporary file is removed and the target left as it was."""
        if self._fh is not sys.stdout:
            with contextlib.suppress(OSError):
                self._fh.close()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            self._tmp = None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def open_output(path: str | None, source: str | None = None, stdin: BinaryIO | None = None) -> Output:
    """The output for `path` (None: stdout), with one-line errors for a missing folder, a directory,
    and an output that is the input: the same path, a link to it, or the same file (inode) as the
    input file `source` or as stdin. That is refused before anything is opened for writing."""
    if not path:
        return Output(None)
    p = Path(path)
    if p.is_dir():
        raise InputError(f"output {path} is a directory; give a file name")
    if not p.parent.is_dir():
        raise InputError(f"cannot write {path}: the folder {p.parent} does not exist")
    if p.exists() and _same_file(p, source, stdin):
        raise InputError(f"output {path} is the input file; write to another file (the input would be lost)")
    try:
        return Output(path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None


def _same_file(out: Path, source: str | None, stdin: BinaryIO | None) -> bool:
    try:
        target = out.stat()
        if source and source != "-":
            return os.path.samefile(out, source)
        if stdin is not None and stdin.fileno() >= 0:
            info = os.fstat(stdin.fileno())
            return stat.S_ISREG(target.st_mode) and (info.st_dev, info.st_ino) == (target.st_dev, target.st_ino)
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
    return False


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


# the fields every output record has or may have: a kept field of the same name would hide one of them
OUTPUT_FIELDS = ("index", "label", "score", "top_k", "probabilities", "embedding")


def check_keep(keep: Sequence[str]) -> None:
    """Refuse kept field names that clash with an output field (or a CSV column derived from one)
    or repeat, since either would silently overwrite a value or duplicate a column."""
    seen = set()
    for name in keep:
        derived = name.startswith(("label_", "score_", "p_"))
        if name in OUTPUT_FIELDS or derived:
            raise InputError(
                f"--keep {name}: the output already has a field or column of that name "
                f"({', '.join(OUTPUT_FIELDS)}, label_N, score_N, p_LABEL); rename it in the input"
            )
        if name in seen:
            raise InputError(f"--keep names {name} twice")
        seen.add(name)


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
            self.out.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
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
