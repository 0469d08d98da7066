"""Fast-tokenizer front end: truncation at the manifest's max_length, per-batch dynamic padding."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

from .errors import ManifestError
from .integrity import verify_file
from .manifest import Manifest


class TextEncoder:
    """Wraps a `tokenizers.Tokenizer` from a tokenizer.json: encodes with truncation at
    max_length and pads each batch to its own longest text."""

    def __init__(self, manifest: Manifest, verify: bool = True):
        spec = manifest.tokenizer
        path = manifest.path(spec.ref)
        if verify:
            verify_file(path, spec.ref.sha256, spec.ref.size)
        self._setup(path, spec.max_length, spec.pad_id, manifest.input_names)
        if spec.vocab_size is not None and spec.vocab_size != self.vocab_size:
            raise ManifestError(
                f"{spec.ref.file} has {self.vocab_size} tokens but manifest.json says {spec.vocab_size}"
            )
        if not 0 <= self.pad_id < self.vocab_size:
            raise ManifestError(
                f"manifest.json's pad_id {self.pad_id} is outside the {self.vocab_size}-token vocabulary"
            )

    @classmethod
    def from_file(cls, path: Path, max_length: int, pad_id: int, input_names: Sequence[str]) -> TextEncoder:
        """An encoder for a tokenizer.json that no manifest describes yet (the export stage)."""
        encoder = cls.__new__(cls)
        encoder._setup(Path(path), max_length, pad_id, list(input_names))
        return encoder

    def _setup(self, path: Path, max_length: int, pad_id: int, input_names: list[str]) -> None:
        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on malformed files
            raise ManifestError(f"{path.name} is not a valid tokenizer.json: {str(exc)[:200]}") from None
        self._tok.no_padding()
        self.max_length = max_length
        self.pad_id = pad_id
        self.input_names = input_names
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)
        self._truncating = self._configured(stride=None)
        self._windowing: dict[int, Tokenizer] = {}

    def _configured(self, stride: int | None) -> Tokenizer:
        """A copy of the tokenizer truncating at max_length (keeping overflow windows with `stride`)."""
        tok = Tokenizer.from_str(self._tok.to_str())
        tok.no_padding()
        if stride is None:
            tok.enable_truncation(self.max_length)
        else:
            tok.enable_truncation(self.max_length, stride=stride)
        return tok

    def encode(self, texts: Sequence[str]) -> list[Encoding]:
        """Encode with truncation to max_length (the reference pipeline's behaviour); a text that
        was cut keeps the rest in `Encoding.overflowing`."""
        return self._truncating.encode_batch(list(texts))

    def encode_windows(self, texts: Sequence[str], stride: int) -> list[list[Encoding]]:
        """Each text as overlapping windows of at most max_length tokens, `stride` tokens shared
        between neighbours; special tokens are added to every window."""
        if not 0 <= stride < self.max_length // 2:
            raise ValueError(f"stride must be in [0, {self.max_length // 2}), got {stride}")
        if stride not in self._windowing:
            self._windowing[stride] = self._configured(stride)
        tok = self._windowing[stride]
        return [[enc, *enc.overflowing] for enc in tok.encode_batch(list(texts))]

    def token_ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of special or vocabulary tokens (unknown ones are skipped)."""
        ids = (self._tok.token_to_id(t) for t in tokens)
        return [i for i in ids if i is not None]

    def pad(self, encodings: Sequence[Encoding], width: int | None = None) -> dict[str, np.ndarray]:
        """The model's input arrays (only those the manifest lists) of a batch padded to `width`
        (default: its longest item)."""
        if len(encodings) == 1 and width in (None, len(encodings[0].ids)):  # one text, nothing to pad
            return self._single(encodings[0])
        return self.pad_ids([e.ids for e in encodings], [e.type_ids for e in encodings], width)

    def pad_ids(
        self, rows: Sequence[Sequence[int]], type_rows: Sequence[Sequence[int]] | None = None, width: int | None = None
    ):
        """The padded input arrays of token id rows (and token type rows, when the model takes them)."""
        width = width or max(len(r) for r in rows)
        n = len(rows)
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        types = np.zeros((n, width), dtype=np.int64) if "token_type_ids" in self.input_names else None
        for row, tokens in enumerate(rows):
            k = len(tokens)
            ids[row, :k] = tokens
            mask[row, :k] = 1
            if types is not None and type_rows is not None:
                types[row, :k] = type_rows[row]
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: arrays[name] for name in self.input_names}

    def _single(self, encoding: Encoding) -> dict[str, np.ndarray]:
        """The input arrays of one unpadded text (fewer numpy calls than the batch path: after
        a model run has evicted them from the caches, each one costs microseconds)."""
        ids = np.array([encoding.ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.array([encoding.type_ids], dtype=np.int64)
        return {name: feeds[name] for name in self.input_names}
