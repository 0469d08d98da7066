"""EmotionClassifier: the torch-free inference API (pipeline-compatible output)."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .batching import plan_batches
from .calibration import softmax
from .errors import ModelNotFoundError
from .inputs import as_text_list, check_texts, is_positive_int
from .integrity import verify_file
from .manifest import Manifest, load_manifest
from .session import create_session
from .tokenization import TextEncoder

_UNSET: Any = object()
LONG_TEXT_MODES = ("truncate", "window")
# Default token budget per batch: a fixed activation budget, 2048 tokens at width 384
# (the embedded model), 1024 at width 768 (DistilBERT-base). Larger budgets measured no
# faster on 2 cores but grew onnxruntime's arena (peak RSS 623 MB at 8192 tokens, width 768).
ACTIVATION_BUDGET = 2048 * 384


def default_batch_tokens(width: int) -> int:
    return max(256, ACTIVATION_BUDGET // max(1, width))


def default_model_dir() -> Path:
    """The model embedded in this package (package data)."""
    return Path(__file__).resolve().parent / "default_model"


class EmotionClassifier:
    """Classify texts with a model directory written by `emotion-onnx export`.

    >>> clf = EmotionClassifier("out/emotion")          # doctest: +SKIP
    >>> clf("i feel wonderful today")                   # doctest: +SKIP
    [{'label': 'joy', 'score': 0.98}]
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        variant: str | None = None,
        max_batch_tokens: int | None = None,
        max_batch_size: int = 128,
        long_text: str = "truncate",
        stride: int = 128,
        intra_op_threads: int | None = None,
        spinning: bool | None = None,
        providers: Sequence[str] | None = None,
        verify: bool = True,
    ):
        if path is None:
            path = default_model_dir()
            if not (path / "manifest.json").is_file():
                raise ModelNotFoundError(
                    f"the embedded default model is missing from this installation ({path}); "
                    "reinstall emotion-onnx or pass the path of a directory written by `emotion-onnx export`"
                )
        if long_text not in LONG_TEXT_MODES:
            raise ValueError(f"long_text must be one of {LONG_TEXT_MODES}, got {long_text!r}")
        if (max_batch_tokens is not None and max_batch_tokens < 1) or max_batch_size < 1:
            raise ValueError("max_batch_tokens and max_batch_size must be at least 1")
        self.manifest: Manifest = load_manifest(path)
        self.variant = self.manifest.variant(variant)
        model_path = self.manifest.directory / self.variant.ref.file
        if verify:
            verify_file(model_path, self.variant.ref.sha256, self.variant.ref.size)
        self.encoder = TextEncoder(self.manifest, verify=verify)
        self.session = create_session(
            model_path,
            intra_op_threads=intra_op_threads,
            spinning=spinning,
            providers=providers,
            optimized=self.variant.optimized,
        )
        self.labels = self.manifest.labels
        self.temperature = self.variant.temperature
        self.max_batch_tokens = max_batch_tokens or default_batch_tokens(self.manifest.embedding_dim)
        self.max_batch_size = max_batch_size
        self.long_text = long_text
        self.stride = stride
        self._outputs = [self.manifest.logits_output, self.manifest.embedding_output]

    # ------------------------------------------------------------------ properties
    @property
    def batch_invariant(self) -> bool:
        return self.variant.batch_invariant

    @property
    def embedding_dim(self) -> int:
        return self.manifest.embedding_dim

    def warn_if_batch_dependent(self, context: str) -> None:
        if not self.batch_invariant:
            warnings.warn(
                f"variant {self.variant.name!r} is not batch-invariant: in {context} a text's scores "
                "can change with the other texts batched with it",
                RuntimeWarning,
                stacklevel=2,
            )

    # ------------------------------------------------------------------ core pass
    def forward_encodings(self, encodings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Logits and raw embeddings for already-tokenised texts (`encoder.encode`), in
        token-budget batches; used by the server, which tokenises on arrival."""
        n = len(encodings)
        if n == 0:
            return self.forward([])
        if n == 1:  # one batch of one: no plan, no scatter (the same session.run on the same inputs)
            out_logits, out_embeds = self.session.run(self._outputs, self.encoder.pad(encodings))
            return out_logits, out_embeds
        logits = np.empty((n, len(self.labels)), dtype=np.float32)
        embeds = np.empty((n, self.embedding_dim), dtype=np.float32)
        lengths = [len(e.ids) for e in encodings]
        for batch in plan_batches(lengths, self.max_batch_tokens, self.max_batch_size):
            feeds = self.encoder.pad([encodings[i] for i in batch])
            out_logits, out_embeds = self.session.run(self._outputs, feeds)
            logits[batch] = out_logits
            embeds[batch] = out_embeds
        return logits, embeds

    def forward(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits (n, labels) and un-normalised embeddings (n, dim) from one pass."""
        if not texts:
            return (
                np.empty((0, len(self.labels)), dtype=np.float32),
                np.empty((0, self.embedding_dim), dtype=np.float32),
            )
        if self.long_text == "truncate":
            return self.forward_encodings(self.encoder.encode(texts))
        return self._forward_windows(texts)

    def _forward_windows(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Window mode: every text is split into overlapping max_length windows.

        Aggregation rule: the text's logits and embedding are the means of its windows'
        logits and embeddings, weighted by each window's token count (so a short tail
        window counts less); probabilities are the softmax of the aggregated logits.
        A text that fits in one window gives exactly its truncate-mode result.
        """
        windows = self.encoder.encode_windows(texts, self.stride)
        flat = [w for ws in windows for w in ws]
        owner = np.repeat(np.arange(len(texts)), [len(ws) for ws in windows])
        weight = np.array([len(w.ids) for w in flat], dtype=np.float64)
        w_logits, w_embeds = self.forward_encodings(flat)
        total = np.bincount(owner, weights=weight, minlength=len(texts))
        logits = np.zeros((len(texts), w_logits.shape[1]), dtype=np.float64)
        embeds = np.zeros((len(texts), w_embeds.shape[1]), dtype=np.float64)
        np.add.at(logits, owner, w_logits * weight[:, None])
        np.add.at(embeds, owner, w_embeds * weight[:, None])
        logits /= total[:, None]
        embeds /= total[:, None]
        return logits.astype(np.float32), embeds.astype(np.float32)

    # ------------------------------------------------------------------ public API
    def logits(self, texts: Any) -> np.ndarray:
        items, _ = as_text_list(texts)
        return self.forward(items)[0]

    def predict_proba(self, texts: Any, calibrated: bool = True) -> np.ndarray:
        items, _ = as_text_list(texts)
        return self.probabilities(self.forward(items)[0], calibrated)

    def embed(self, texts: Any, normalize: bool = True) -> np.ndarray:
        items, _ = as_text_list(texts)
        return self.normalize(self.forward(items)[1], normalize)

    def probabilities(self, logits: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Softmax of logits, divided by the variant's fitted temperature when calibrated."""
        return softmax(logits, self.temperature if calibrated else 1.0)

    @staticmethod
    def normalize(embeds: np.ndarray, normalize: bool = True) -> np.ndarray:
        """L2-normalise embedding rows (a no-op when normalize is False)."""
        if not normalize:
            return embeds
        norms = np.linalg.norm(embeds, axis=1, keepdims=True)
        return embeds / np.maximum(norms, 1e-12)

    def rank(self, probs_row: np.ndarray, top_k: int | None) -> list[dict[str, Any]]:
        """[{"label", "score"}] sorted by score, best first, cut to top_k (None: all labels)."""
        if top_k == 1:  # argmax takes the first of tied scores, as the stable sort below does
            order = [int(probs_row.argmax())]
        else:
            order = np.argsort(-probs_row, kind="stable")
            if top_k is not None:
                order = order[:top_k]
        return [{"label": self.labels[i], "score": float(probs_row[i])} for i in order]

    def __call__(self, inputs: Any, top_k: int | None = _UNSET, calibrated: bool = True) -> list:
        """Same shape and keys as transformers' pipeline("text-classification").

        Without top_k: one {"label", "score"} dict per input (a list of one for a str).
        With top_k (an int, or None for all labels): a list of dicts per input, or just
        that list when the input is a single str.
        """
        legacy = top_k is _UNSET
        k = 1 if legacy else top_k
        if k is not None and not is_positive_int(k):
            raise ValueError(f"top_k must be a positive int or None, got {k!r}")
        items, single = as_text_list(inputs)
        probs = self.probabilities(self.forward(items)[0], calibrated)
        rows = [self.rank(row, k) for row in probs]
        if legacy:
            return [r[0] for r in rows]
        return rows[0] if single else rows

    def stream(
        self,
        texts: Iterable[str],
        *,
        chunk_size: int = 1024,
        top_k: int | None = 1,
        calibrated: bool = True,
        return_probabilities: bool = False,
        return_embedding: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Classify any iterable lazily, in input order, holding at most `chunk_size` texts.

        Yields one dict per input: {"label", "score"} (plus "top_k" when top_k != 1,
        "probabilities" and "embedding" when asked).
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        iterator = iter(texts)
        offset = 0
        while True:
            chunk = list(itertools.islice(iterator, chunk_size))
            if not chunk:
                return
            check_texts(chunk, offset)
            logits, embeds = self.forward(chunk)
            probs = self.probabilities(logits, calibrated)
            if return_embedding:
                embeds = self.normalize(embeds, True)
            for row in range(len(chunk)):
                ranked = self.rank(probs[row], top_k)
                record: dict[str, Any] = dict(ranked[0])
                if top_k != 1:
                    record["top_k"] = ranked
                if return_probabilities:
                    record["probabilities"] = {label: float(p) for label, p in zip(self.labels, probs[row])}
                if return_embedding:
                    record["embedding"] = embeds[row].tolist()
                yield record
            offset += len(chunk)
