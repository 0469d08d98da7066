"""Token-budget batching at canonical widths: a text's padded width depends on the text alone.

Every text of `n` tokens is padded to `canonical_width(n, step)` (n rounded up to a multiple of
the engine's width step: 1 for onnxruntime, which pads no text at all, 4 for OpenVINO), alone or
in any batch, and a batch holds only texts of one width. So the numbers an engine computes for a
text's row are the same whoever shares its batch: engines whose reductions depend on the padded
length (OpenVINO's, in every precision) give bit-identical answers, and so do onnxruntime's.
Within a width, texts keep their input order and are packed under a budget of padded tokens and
a cap on texts per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

# The default step; each engine names its own (emotion_onnx.engines: why each differs).
# Rounding widths up to a multiple of 4 costs a few percent of padding and keeps the number of
# distinct shapes (and of engine calls for a mixed set of texts) small.
WIDTH_STEP = 4


def canonical_width(tokens: int, step: int = WIDTH_STEP) -> int:
    """The width a text of `tokens` tokens is always padded to."""
    return max(step, -(-tokens // step) * step)


def plan_batches(
    lengths: Sequence[int], max_batch_tokens: int, max_batch_size: int, step: int = WIDTH_STEP
) -> list[tuple[list[int], int]]:
    """Group item indices into (batch, width) pairs: every item of a batch has the batch's
    canonical width, and width x items stays within the token budget (an item wider than the
    budget still gets a batch of its own: nothing is ever dropped). Every index appears in
    exactly one batch; batches come in ascending width."""
    if max_batch_tokens < 1 or max_batch_size < 1:
        raise ValueError("max_batch_tokens and max_batch_size must be at least 1")
    groups: dict[int, list[int]] = {}
    for index, n in enumerate(lengths):
        groups.setdefault(canonical_width(n, step), []).append(index)
    batches = []
    for width in sorted(groups):
        items = groups[width]
        size = max(1, min(max_batch_size, max_batch_tokens // width))
        batches += [(items[start : start + size], width) for start in range(0, len(items), size)]
    return batches
