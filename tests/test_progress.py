"""The progress line: drawn on a TTY, silent otherwise."""

from __future__ import annotations

import io

from emotion_onnx.progress import Progress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_tty():
    stream = FakeTTY()
    bar = Progress("classify", total=10, stream=stream)
    bar._last = -1.0  # draw on the first update
    bar.update(5)
    bar.close()
    text = stream.getvalue()
    assert "classify" in text and "5/10" in text and "10/10" not in text
    assert text.endswith("\n")


def test_progress_is_silent_without_a_tty():
    stream = io.StringIO()
    bar = Progress("classify", stream=stream)
    bar.update(100)
    bar.close()
    assert stream.getvalue() == ""
