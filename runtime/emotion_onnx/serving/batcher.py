"""Dynamic micro-batching: requests from concurrent clients share one inference call.

Each request is tokenised on arrival, so its real token count is known. A single worker
task takes the oldest waiting request, then keeps adding waiting requests until the
micro-batch holds `batch_tokens` tokens or `max_wait_ms` has passed since it started.
Inference runs in one dedicated thread (onnxruntime parallelises inside the call), off
the event loop. Each request gets back exactly the rows of its own texts, in order.

A request whose client has gone away is marked cancelled; if it has not been batched
yet it is skipped, so it costs no further compute.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np


class QueueFullError(Exception):
    """The bounded queue has no room for this request's texts."""


class ShuttingDownError(Exception):
    """The batcher no longer accepts work."""


@dataclass(eq=False)
class Job:
    encodings: Sequence[Any]
    future: asyncio.Future
    tokens: int = 0
    cancelled: bool = False

    def __post_init__(self) -> None:
        self.tokens = sum(len(e.ids) for e in self.encodings)


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
        self._queue: deque[Job] = deque()
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

    async def close(self) -> None:
        """Finish every accepted job, then stop."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
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
        self._queue.append(job)
        self._queued_texts += len(encodings)
        self._queued_tokens += job.tokens
        self._wakeup.set()
        return job

    def cancel(self, job: Job) -> None:
        """The client went away: skip the job if it has not been batched yet."""
        job.cancelled = True

    # ------------------------------------------------------------------ worker
    def _take(self, batch: list[Job], tokens: int) -> int:
        """Move waiting jobs into the batch while they fit the token budget."""
        while self._queue:
            job = self._queue[0]
            if job.cancelled:
                self._queue.popleft()
                self._queued_texts -= len(job.encodings)
                self._queued_tokens -= job.tokens
                self._on_skip(len(job.encodings))
                if not job.future.done():
                    job.future.cancel()
                continue
            if batch and tokens + job.tokens > self.batch_tokens:
                break
            self._queue.popleft()
            self._queued_texts -= len(job.encodings)
            self._queued_tokens -= job.tokens
            batch.append(job)
            tokens += job.tokens
        return tokens

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch: list[Job] = []
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
                if len(batch) == before and self._queue:
                    break  # the next job does not fit: run what we have
            if not batch:
                continue
            await self._execute(loop, batch)

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[Job]) -> None:
        encodings = [e for job in batch for e in job.encodings]
        self._on_batch(len(encodings))
        try:
            logits, embeds = await loop.run_in_executor(self._pool, self._run, encodings)
        except Exception as exc:  # an inference failure fails these requests, not the server
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        start = 0
        for job in batch:
            stop = start + len(job.encodings)
            if not job.future.done():
                job.future.set_result((logits[start:stop], embeds[start:stop]))
            start = stop
