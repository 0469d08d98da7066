"""Token-budget length bucketing: sort by length, pack under a padded-token budget, restore order."""

from __future__ import annotations

from collections.abc import Sequence

# A batch also ends when the next item is longer than RATIO x its shortest item + SLACK tokens,
# so that no batch pads its short texts much. This matters for small, mixed sets such as the
# server's micro-batches of a few dozen texts (benchmarks/runtime_speed.py measures bucketing).
PADDING_RATIO = 1.25
PADDING_SLACK = 4


def plan_batches(
    lengths: Sequence[int],
    max_batch_tokens: int,
    max_batch_size: int,
    ratio: float = PADDING_RATIO,
    slack: int = PADDING_SLACK,
) -> list[list[int]]:
    """Group item indices into batches whose padded size (count x longest) fits the budget.

    Items are sorted by length (stable), so each batch holds similar lengths; a batch also
    closes before an item longer than `ratio` x the batch's shortest + `slack`, bounding the
    padding. An item longer than the budget still gets a batch of its own: no item is ever
    dropped. Every index appears in exactly one batch.
    """
    if max_batch_tokens < 1 or max_batch_size < 1:
        raise ValueError("max_batch_tokens and max_batch_size must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for idx in order:
        longest = lengths[idx]  # ascending order: the newcomer is the longest
        if current and (
            (len(current) + 1) * longest > max_batch_tokens
            or len(current) >= max_batch_size
            or longest > ratio * lengths[current[0]] + slack
        ):
            batches.append(current)
            current = []
        current.append(idx)
    if current:
        batches.append(current)
    return batches
