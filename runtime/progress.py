"""A dependency-free progress line: drawn on a TTY, silent otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, desc: str, total: int | None = None, stream: TextIO | None = None, enabled=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.desc, self.total, self.count = desc, total, 0
        self._t0 = self._last = time.perf_counter()

    def update(self, n: int) -> None:
        self.count += n
        now = time.perf_counter()
        if self.enabled and now - self._last >= 0.1:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.count / max(now - self._t0, 1e-9)
        if self.total:
            frac = min(self.count / self.total, 1.0)
            bar = "█" * int(frac * 30) + "·" * (30 - int(frac * 30))
            text = f"\r{self.desc} |{bar}| {self.count}/{self.total} [{rate:,.0f} texts/s]"
        else:
            text = f"\r{self.desc}: {self.count:,} texts [{rate:,.0f} texts/s]"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
