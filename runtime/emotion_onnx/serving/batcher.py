"""Dynamic micro-batching: requests from concurrent clients share inference calls, fairly.

Each request is tokenised on arrival, so its real token count is known, and split into pieces
of consecutive texts of at most `batch_tokens` tokens each. A single worker task builds each
micro-batch round-robin over the waiting requests, one piece of each per round, until the
micro-batch holds `batch_tokens` tokens or `max_wait_ms` has passed since it started. So a large
request is served in micro-batches interleaved with everyone else's, and a short request waits
about one micro-batch, not the whole large request. Inference runs in one dedicated thread
(onnxruntime parallelises inside the call), off the event loop. Each request gets back exactly
the rows of its own texts, in order.

Admission counts tokens: a request that would take the queue past `max_queue_tokens` is refused
(the caller answers 503 with Retry-After). A request whose client has gone away is marked
cancelled; its pieces that have not been batched yet are skipped, so it costs no further compute.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class QueueFullError(Exception):
    """The bounded queue has no room for this request's tokens."""


class ShuttingDownError(Exception):
    """The batcher no longer accepts work, or gave up waiting work at the end of its grace period."""


@dataclass(eq=False)
class Piece:
    job: Job
    start: int  # texts job.encodings[start:stop]
    stop: int
    tokens: int
    index: int  # its place among the job's pieces


@dataclass(eq=False)
class Job:
    encodings: Sequence[Any]
    future: asyncio.Future
    tokens: int = 0
    cancelled: bool = False
    pieces: deque = field(default_factory=deque)  # not yet batched
    pending: int = 0  # pieces not yet answered
    served: int = 0  # tokens batched so far
    logits: list = field(default_factory=list)
    embeds: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tokens = sum(len(e.ids) for e in self.encodings)


def split(job: Job, budget: int) -> None:
    """Cut a job into pieces of consecutive texts, each within the token budget (a text longer
    than the budget is a piece of its own)."""
    start, tokens = 0, 0
    for i, enc in enumerate(job.encodings):
        n = len(enc.ids)
        if i > start and tokens + n > budget:
            job.pieces.append(Piece(job, start, i, tokens, len(job.pieces)))
            start, tokens = i, 0
        tokens += n
    if job.encodings:
        job.pieces.append(Piece(job, start, len(job.encodings), tokens, len(job.pieces)))
    job.pending = len(job.pieces)
    job.logits = [None] * job.pending
    job.embeds = [None] * job.pending


class MicroBatcher:
    def __init__(
        self,
        run: Callable[[Sequence[Any]], tuple[np.ndarray, np.ndarray]],
        *,
        batch_tokens: int,
        max_wait_ms: float,
        max_queue_tokens: int,
        on_batch: Callable[[int], None] | None = None,
        on_skip: Callable[[int], None] | None = None,
    ):
        self._run = run
        self.batch_tokens = batch_tokens
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue_tokens = max_queue_tokens
        self._on_batch = on_batch or (lambda n: None)
        self._on_skip = on_skip or (lambda n: None)
        self._jobs: deque[Job] = deque()  # jobs with pieces not yet batched, in arrival order
        self._queued_texts = 0
        self._queued_tokens = 0
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emotion-onnx-infer")
        self._closing = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._worker = asyncio.get_running_loop().create_task(self._loop(), name="emotion-onnx-batcher")

    def stop_accepting(self) -> None:
        """New requests are refused from now on (ShuttingDownError); accepted ones still run."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()

    def give_up_waiting(self, reason: str) -> int:
        """Fail every accepted request that has not started running (ShuttingDownError), so it gets
        a clean refusal instead of being cut off; returns how many."""
        failed = 0
        while self._jobs:
            job = self._jobs.popleft()
            self._drop(job)
            if not job.future.done():
                job.future.set_exception(ShuttingDownError(reason))
                failed += 1
        return failed

    async def close(self) -> None:
        """Finish every accepted job, then stop."""
        self.stop_accepting()
        if self._worker is not None:
            await self._worker
        self._pool.shutdown(wait=True)

    @property
    def queued_texts(self) -> int:
        return self._queued_texts

    # ------------------------------------------------------------------ producers
    def submit(self, encodings: Sequence[Any]) -> Job:
        if self._closing:
            raise ShuttingDownError("the server is shutting down")
        job = Job(encodings, asyncio.get_running_loop().create_future())
        if self._queued_tokens + job.tokens > self.max_queue_tokens and self._queued_tokens > 0:
            raise QueueFullError(
                f"{self._queued_tokens} tokens are already waiting (the queue holds {self.max_queue_tokens})"
            )
        split(job, self.batch_tokens)
        self._jobs.append(job)
        self._queued_texts += len(encodings)
        self._queued_tokens += job.tokens
        self._wakeup.set()
        return job

    def cancel(self, job: Job) -> None:
        """The client went away: skip the pieces of the job that have not been batched yet."""
        job.cancelled = True

    # ------------------------------------------------------------------ worker
    def _drop(self, job: Job) -> None:
        """Forget a job's unbatched pieces (their texts and tokens leave the queue)."""
        for piece in job.pieces:
            self._queued_texts -= piece.stop - piece.start
            self._queued_tokens -= piece.tokens
        job.pieces.clear()

    def _take(self, batch: list[Piece], tokens: int) -> int:
        """Add pieces round-robin over the waiting jobs, one per job per round, while they fit; each
        round starts with the jobs served least so far, so a new short request goes before the next
        piece of a huge one."""
        progress = True
        while progress and self._jobs:
            progress = False
            for job in sorted(self._jobs, key=lambda j: j.served):  # stable: arrival order among equals
                if job.cancelled:
                    skipped = sum(p.stop - p.start for p in job.pieces)
                    self._drop(job)
                    self._jobs.remove(job)
                    self._on_skip(skipped)
                    if not job.future.done():
                        job.future.cancel()
                    continue
                piece = job.pieces[0]
                if batch and tokens + piece.tokens > self.batch_tokens:
                    continue
                job.pieces.popleft()
                self._queued_texts -= piece.stop - piece.start
                self._queued_tokens -= piece.tokens
                batch.append(piece)
                tokens += piece.tokens
                job.served += piece.tokens
                progress = True
                if not job.pieces:
                    self._jobs.remove(job)
        return tokens

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch: list[Piece] = []
            tokens = self._take(batch, 0)
            deadline = loop.time() + self.max_wait
            while batch and tokens < self.batch_tokens and not self._closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                before = len(batch)
                tokens = self._take(batch, tokens)
                if len(batch) == before and self._jobs:
                    break  # the next piece does not fit: run what we have
            if batch:
                await self._execute(loop, batch)

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[Piece]) -> None:
        encodings = [e for piece in batch for e in piece.job.encodings[piece.start : piece.stop]]
        self._on_batch(len(encodings))
        try:
            logits, embeds = await loop.run_in_executor(self._pool, self._run, encodings)
        except Exception as exc:  # an inference failure fails these requests, not the server
            for piece in batch:
                self._drop(piece.job)
                with contextlib.suppress(ValueError):
                    self._jobs.remove(piece.job)
                if not piece.job.future.done():
                    piece.job.future.set_exception(exc)
            return
        row = 0
        for piece in batch:
            job, n = piece.job, piece.stop - piece.start
            job.logits[piece.index], job.embeds[piece.index] = logits[row : row + n], embeds[row : row + n]
            row += n
            job.pending -= 1
            if job.pending == 0 and not job.future.done():
                job.future.set_result((np.concatenate(job.logits), np.concatenate(job.embeds)))
