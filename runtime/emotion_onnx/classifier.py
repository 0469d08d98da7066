"""EmotionClassifier: the torch-free inference API (pipeline-compatible output)."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import manifest as manifest_io
from . import parameters
from .batching import canonical_width, plan_batches
from .calibration import output_scores
from .calibration import probabilities as calibrated_probabilities
from .cpu import thread_count
from .engines import OnnxruntimeEngine, OpenvinoEngine, compile_cache_dir, engine_available
from .errors import ManifestError, ModelNotFoundError, first_line
from .inputs import as_text_list, check_texts, check_top_k, first_bad
from .integrity import verify_file
from .manifest import Manifest
from .parallel import SideBySide
from .parameters import OUTPUT_FUNCTIONS, is_positive_int
from .records import in_label_order, null_record, ranked, text_record
from .session import check_outputs
from .tokenization import TextEncoder

_UNSET: Any = object()
LONG_TEXT_MODES = ("truncate", "window")
# The default token budget per batch is a fixed activation budget (tokens x width), so a wider
# model gets fewer tokens per batch: benchmarks/runtime_speed.py measures what larger budgets
# buy (no speed on 2 cores) and cost (onnxruntime's arena grows with the batch).
ACTIVATION_BUDGET = 2048 * 384


def default_batch_tokens(width: int) -> int:
    return max(256, ACTIVATION_BUDGET // max(1, width))


def default_model_dir() -> Path:
    """The model embedded in this package (package data)."""
    return Path(__file__).resolve().parent / "default_model"


def choose_variant(manifest: Manifest, name: str | None, engine: str | None = None):
    """The variant to load: the one named; else the fastest (by the export's measurement) whose
    engine is installed, or is `engine` when one is asked for; else the default variant."""
    if name is not None:
        return manifest.variant(name)
    for candidate in manifest.variant_order:
        v = manifest.variants[candidate]
        if (engine is None or v.engine == engine) and engine_available(v.engine):
            return v
    fallback = manifest.variant()
    if engine is not None and fallback.engine != engine:
        choices = [v.name for v in manifest.variants.values() if v.engine == engine]
        if not choices:
            raise ManifestError(f"{manifest.name or 'this model'} has no variant for engine {engine!r}")
        return manifest.variants[choices[0]]
    return fallback


def calibration_mode(calibrated: Any) -> str:
    """The calibration mode that `calibrated` (True, False or "temperature") names."""
    mode = parameters.calibration_mode(calibrated)
    if mode is None:
        raise ValueError(f'calibrated must be True, False or "temperature", got {calibrated!r}')
    return mode


class EmotionClassifier:
    """Classify texts with a model directory written by `emotion-onnx export`.

    >>> clf = EmotionClassifier("out/emotion")          # doctest: +SKIP
    >>> clf("i feel wonderful today")                   # doctest: +SKIP
    [{'label': 'joy', 'score': 0.98}]

    Loading checks every file against the manifest (size, sha256, confined to the model
    directory), the graph against the manifest (inputs, outputs and their widths), and runs
    one warm-up batch, so a classifier that loads can answer.
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
        engine: str | None = None,
        batch_workers: int | None = None,
        compile_cache: str | Path | bool | None = None,
    ):
        if path is None:
            path = default_model_dir()
            if not manifest_io.is_model_dir(path):
                raise ModelNotFoundError(
                    f"the embedded default model is missing from this installation ({path}); "
                    "reinstall emotion-onnx or pass the path of a directory written by `emotion-onnx export`"
                )
        if long_text not in LONG_TEXT_MODES:
            raise ValueError(f"long_text must be one of {LONG_TEXT_MODES}, got {long_text!r}")
        if (max_batch_tokens is not None and max_batch_tokens < 1) or max_batch_size < 1:
            raise ValueError("max_batch_tokens and max_batch_size must be at least 1")
        intra_op_threads = thread_count(intra_op_threads, "intra_op_threads")
        batch_workers = thread_count(batch_workers, "batch_workers") if batch_workers is not None else None
        self.manifest: Manifest = manifest_io.load(path)
        self.variant = choose_variant(self.manifest, variant, engine)
        model_path = self.manifest.path(self.variant.ref)
        weights_path = self.manifest.path(self.variant.weights) if self.variant.weights is not None else None
        if verify:
            for ref in self.variant.files:
                verify_file(self.manifest.path(ref), ref.sha256, ref.size)
        self.encoder = TextEncoder(self.manifest, verify=verify)
        self.labels = self.manifest.answer_labels()  # the default answer's: the neutral label only on request
        self._widths = {self.manifest.logits_output: len(self.manifest.labels),
                        self.manifest.embedding_output: self.manifest.embedding_dim}  # fmt: skip
        self._outputs = list(self._widths)
        if self.variant.engine == "openvino":
            self.engine = OpenvinoEngine(
                model_path, weights_path, self.variant.ref.file, self.manifest.input_names, self._widths,
                threads=intra_op_threads, cache_dir=compile_cache_dir(compile_cache),
            )  # fmt: skip
        else:
            self.engine = OnnxruntimeEngine(
                model_path, self.variant.ref.file, self.manifest.input_names, self._widths, threads=intra_op_threads,
                spinning=spinning, providers=providers, optimized=self.variant.optimized,
            )  # fmt: skip
        # a job of several batches runs them side by side, one thread each (emotion_onnx.parallel)
        workers = batch_workers or intra_op_threads
        self._side_by_side = SideBySide(self.engine.one_thread_runners, workers) if workers > 1 else None
        self.max_batch_tokens = max_batch_tokens or default_batch_tokens(self.manifest.embedding_dim)
        self.max_batch_size = max_batch_size
        self.long_text = long_text
        self.stride = stride
        self._warm_up()

    def _warm_up(self) -> None:
        """One padded batch through the graph, with the highest token id of the vocabulary: the
        embedding table must hold it, and the outputs must have the manifest's shapes."""
        specials = self.manifest.tokenizer.special_tokens
        cls = self.encoder.token_ids([specials.get("cls_token", "")])
        sep = self.encoder.token_ids([specials.get("sep_token", "")])
        rows = [[*cls, self.encoder.vocab_size - 1, *sep], [*cls, *sep]]
        feeds = self.encoder.pad_ids(rows, [[0] * len(r) for r in rows], canonical_width(4, self.engine.width_step))
        try:
            arrays = dict(zip(self._outputs, self.engine.run(feeds)))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ManifestError(f"{self.variant.ref.file} fails on a warm-up batch: {first_line(exc, 300)}") from None
        check_outputs(arrays, 2, self.variant.ref.file, self._widths)

    # ------------------------------------------------------------------ properties
    @property
    def session(self):
        """The onnxruntime session (None when the variant runs on another engine)."""
        return self.engine.session

    @property
    def batch_invariant(self) -> bool:
        return self.variant.batch_invariant

    @property
    def embedding_dim(self) -> int:
        return self.manifest.embedding_dim

    @property
    def calibration(self):
        return self.variant.calibration

    @property
    def has_neutral(self) -> bool:
        """Whether the model can answer "neutral" (with neutral=True)."""
        return self.manifest.neutral_label is not None

    def answer_labels(self, neutral: bool = False) -> list[str]:
        """The labels an answer ranks: `labels`, and the neutral label too with `neutral`
        (ValueError for a model without one)."""
        return self.manifest.answer_labels(neutral)

    def _answer(self, logits: np.ndarray, neutral: bool) -> tuple[np.ndarray, Any, np.ndarray | None]:
        """The logit columns of an answer, the calibration that goes with them, and the neutral
        logits its temperature features read (None for a model without a neutral output)."""
        columns = self.manifest.answer_columns(neutral)
        calibration = self.variant.calibration
        if neutral:
            calibration = self.variant.neutral_calibration or manifest_io.Calibration()
        label = self.manifest.neutral_label
        neutral_logits = np.asarray(logits)[:, self.manifest.labels.index(label)] if label is not None else None
        if len(columns) == np.shape(logits)[-1]:
            return logits, calibration, neutral_logits
        return np.asarray(logits)[:, columns], calibration, neutral_logits

    @property
    def temperature(self) -> float:
        return self.variant.calibration.temperature

    def warn_if_batch_dependent(self, context: str) -> None:
        if not self.batch_invariant:
            warnings.warn(
                f"variant {self.variant.name!r} is not batch-invariant: in {context} a text's scores "
                "can change with the other texts batched with it",
                RuntimeWarning,
                stacklevel=2,
            )

    # ------------------------------------------------------------------ core pass
    def forward_encodings(
        self, encodings: Sequence[Any], max_batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Logits and raw embeddings for already-tokenised texts (`encoder.encode`), in
        token-budget batches of at most `max_batch_size` texts (default: the classifier's)."""
        n = len(encodings)
        if n == 0:
            return self.forward([])
        step = self.engine.width_step
        if n == 1:  # one batch of one: no plan, no scatter (the same engine call on the same inputs)
            return self.engine.run(self.encoder.pad(encodings, canonical_width(len(encodings[0].ids), step)))
        logits = np.empty((n, len(self.manifest.labels)), dtype=np.float32)
        embeds = np.empty((n, self.embedding_dim), dtype=np.float32)
        lengths = [len(e.ids) for e in encodings]
        size = max_batch_size or self.max_batch_size
        plan = plan_batches(lengths, self.max_batch_tokens, size, step)

        def pad(job):
            return self.encoder.pad([encodings[i] for i in job[0]], job[1])

        if self._side_by_side is not None and len(plan) > 1:
            # the token budget bounds the activations in flight, so the workers share it
            plan = plan_batches(lengths, max(1, self.max_batch_tokens // self._side_by_side.workers), size, step)
            outputs = self._side_by_side.map(lambda run, job: run(pad(job)), plan)
        else:
            outputs = (self.engine.run(pad(job)) for job in plan)
        for (batch, _), (out_logits, out_embeds) in zip(plan, outputs):
            logits[batch] = out_logits
            embeds[batch] = out_embeds
        return logits, embeds

    def forward(
        self, texts: Sequence[str], *, max_batch_size: int | None = None, truncation: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits (n, every output label, the neutral one included) and un-normalised
        embeddings (n, dim) from one pass.
        truncation=False refuses (ValueError) a text longer than the model's max_length instead
        of cutting it, as the pipeline's model would."""
        if not texts:
            return (
                np.empty((0, len(self.manifest.labels)), dtype=np.float32),
                np.empty((0, self.embedding_dim), dtype=np.float32),
            )
        if self.long_text == "window":
            return self._forward_windows(texts, max_batch_size)
        encodings = self.encoder.encode(texts)
        if not truncation:
            for i, enc in enumerate(encodings):
                if enc.overflowing:
                    raise ValueError(
                        f"the text at index {i} is longer than the model's {self.encoder.max_length} tokens; "
                        "pass truncation=True (the default) or long_text='window'"
                    )
        return self.forward_encodings(encodings, max_batch_size)

    def _forward_windows(self, texts: Sequence[str], max_batch_size: int | None) -> tuple[np.ndarray, np.ndarray]:
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
        w_logits, w_embeds = self.forward_encodings(flat, max_batch_size)
        total = np.bincount(owner, weights=weight, minlength=len(texts))
        logits = np.zeros((len(texts), w_logits.shape[1]), dtype=np.float64)
        embeds = np.zeros((len(texts), w_embeds.shape[1]), dtype=np.float64)
        np.add.at(logits, owner, w_logits * weight[:, None])
        np.add.at(embeds, owner, w_embeds * weight[:, None])
        logits /= total[:, None]
        embeds /= total[:, None]
        return logits.astype(np.float32), embeds.astype(np.float32)

    # ------------------------------------------------------------------ scores
    def probabilities(self, logits: np.ndarray, calibrated: bool | str = True, neutral: bool = False) -> np.ndarray:
        """Probabilities from `forward`'s logits over the answer's labels (`answer_labels`):
        calibrated=True applies the variant's calibration of that answer (its temperature, then
        its top-1 map when it has one), "temperature" the temperature only, False plain softmax."""
        logits, calibration, neutral_logits = self._answer(logits, neutral)
        return calibrated_probabilities(logits, calibration, calibration_mode(calibrated), neutral_logits)

    def scores(
        self,
        logits: np.ndarray,
        function_to_apply: str = "softmax",
        calibrated: bool | str = True,
        neutral: bool = False,
    ):
        """The pipeline's `function_to_apply` over the answer's labels: "softmax" gives
        `probabilities(logits, calibrated, neutral)`, "sigmoid" and "none" act on the raw logits."""
        function = parameters.output_function(function_to_apply)
        if function is None:
            raise ValueError(
                f"function_to_apply must be one of {', '.join(OUTPUT_FUNCTIONS)}, got {function_to_apply!r}"
            )
        logits, calibration, neutral_logits = self._answer(logits, neutral)
        return output_scores(logits, function, calibration, calibration_mode(calibrated), neutral_logits)

    @staticmethod
    def normalize(embeds: np.ndarray, normalize: bool = True) -> np.ndarray:
        """L2-normalise embedding rows (a no-op when normalize is False)."""
        if not normalize:
            return embeds
        norms = np.linalg.norm(embeds, axis=1, keepdims=True)
        return embeds / np.maximum(norms, 1e-12)

    def rank(self, scores_row: np.ndarray, top_k: int | None, neutral: bool = False) -> list[dict[str, Any]]:
        """[{"label", "score"}] sorted by score, best first, cut to top_k (None: all labels)."""
        return ranked(self.answer_labels(neutral), scores_row, top_k)

    # ------------------------------------------------------------------ public API
    def logits(self, texts: Any, neutral: bool = False) -> np.ndarray:
        """Raw logits (n, len(answer_labels(neutral)))."""
        self.answer_labels(neutral)  # a model without a neutral output refuses before any work
        items, _ = as_text_list(texts)
        return self._answer(self.forward(items)[0], neutral)[0]

    def predict_proba(self, texts: Any, calibrated: bool | str = True, neutral: bool = False) -> np.ndarray:
        """(n, len(answer_labels(neutral))) probabilities, rows summing to 1: over `labels` by
        default, with the neutral label too when `neutral` (for a model that has one)."""
        self.answer_labels(neutral)
        items, _ = as_text_list(texts)
        return self.probabilities(self.forward(items)[0], calibrated, neutral)

    def embed(self, texts: Any, normalize: bool = True) -> np.ndarray:
        items, _ = as_text_list(texts)
        return self.normalize(self.forward(items)[1], normalize)

    def __call__(
        self,
        inputs: Any,
        top_k: int | None = _UNSET,
        calibrated: bool | str = True,
        *,
        function_to_apply: str | None = None,
        batch_size: int | None = None,
        truncation: bool = True,
        return_all_scores: bool | None = None,
        neutral: bool = False,
    ) -> list:
        """Same shape, keys and keywords as transformers' pipeline("text-classification").

        Without top_k: one {"label", "score"} dict per input (a list of one for a str).
        With top_k (an int, or None for all labels): a list of dicts per input, best first, or
        just that list when the input is a single str. return_all_scores=True (deprecated in
        the pipeline; top_k wins when both are given) gives every label in label order, a list
        per input even for a str. function_to_apply: "softmax" (default; calibrated as
        `calibrated` says), "sigmoid" or "none" (raw logits). batch_size bounds the texts per
        batch; truncation=True is what the classifier always does, False refuses long texts.
        neutral=True (a model with a neutral output) ranks the neutral label beside the others.
        """
        legacy = top_k is _UNSET
        all_in_order = False
        if legacy and return_all_scores is not None:
            warnings.warn(
                "return_all_scores is deprecated (as in transformers' pipeline): use top_k=None instead of "
                "return_all_scores=True, or top_k=1 instead of return_all_scores=False",
                UserWarning,
                stacklevel=2,
            )
            all_in_order = bool(return_all_scores)
        k = 1 if legacy else top_k
        check_top_k(k)
        labels = self.answer_labels(neutral)
        if batch_size is not None and not is_positive_int(batch_size):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        items, single = as_text_list(inputs)
        logits = self.forward(items, max_batch_size=batch_size, truncation=truncation)[0]
        scores = self.scores(logits, function_to_apply or "softmax", calibrated, neutral)
        if all_in_order:
            rows = [in_label_order(labels, row) for row in scores]
            return rows
        rows = [ranked(labels, row, k) for row in scores]
        if legacy:
            return [r[0] for r in rows]
        return rows[0] if single else rows

    def stream(
        self,
        texts: Iterable[str | None],
        *,
        chunk_size: int = 1024,
        top_k: int | None = 1,
        calibrated: bool | str = True,
        return_probabilities: bool = False,
        return_embedding: bool = False,
        allow_none: bool = False,
        neutral: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Classify any iterable lazily, in input order, holding at most `chunk_size` texts.

        Yields one dict per input: {"label", "score"} (plus "top_k" when top_k != 1,
        "probabilities" and "embedding" when asked). With allow_none, a None item yields the
        same keys with null values instead of raising TypeError. neutral=True (a model with a
        neutral output) answers over its labels and the neutral label.
        """
        if not is_positive_int(chunk_size):
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        check_top_k(top_k)
        calibration_mode(calibrated)  # refuse a bad value before reading anything
        options = _Options(top_k, calibrated, return_probabilities, return_embedding, allow_none, neutral)
        self.answer_labels(neutral)
        iterator = iter(texts)
        offset = 0
        while True:
            chunk: list[Any] = []
            failure: BaseException | None = None
            try:  # an input that fails part-way (bad bytes at line N) still gets every record before it
                chunk.extend(itertools.islice(iterator, chunk_size))
            except Exception as exc:
                failure = exc
            if chunk:
                yield from self._chunk_records(chunk, offset, options)
                offset += len(chunk)
            if failure is not None:
                raise failure
            if len(chunk) < chunk_size:
                return

    def _chunk_records(self, chunk: list, offset: int, o: _Options) -> Iterator[dict[str, Any]]:
        """The records of one chunk; at an item that is not a text, the records before it, then
        the error naming it."""
        bad = first_bad(chunk, o.allow_none)
        if bad is not None:
            yield from self._chunk_records(chunk[:bad], offset, o)
            check_texts(chunk[bad : bad + 1], offset + bad)  # raises, naming the item
        present = [t for t in chunk if t is not None]
        logits, embeds = self.forward(present)
        probs = self.probabilities(logits, o.calibrated, o.neutral)
        labels = self.answer_labels(o.neutral)
        if o.embedding:
            embeds = self.normalize(embeds, True)
        row = 0
        for text in chunk:
            if text is None:
                yield null_record(o.top_k, o.probabilities, o.embedding)
                continue
            yield text_record(
                labels,
                probs[row],
                top_k=o.top_k,
                probabilities=probs[row] if o.probabilities else None,
                embedding=embeds[row] if o.embedding else None,
            )
            row += 1


@dataclass(frozen=True)
class _Options:
    """What each record of `stream` holds."""

    top_k: int | None
    calibrated: bool | str
    probabilities: bool
    embedding: bool
    allow_none: bool
    neutral: bool
