"""Errors of the export stage; the CLI turns them into one line on stderr and exit code 2."""

from emotion_onnx.errors import EmotionOnnxError


class ExportInputError(EmotionOnnxError):
    """Bad user input: a missing path, an unreachable hub id, a headless checkpoint, ..."""
