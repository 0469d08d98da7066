"""Exceptions raised by the runtime. Every message names the problem."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type's name when it has none), for a one-line
    error that wraps a library's own exception."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:limit] if limit else first


class EmotionOnnxError(Exception):
    """Base class for every error this package raises on purpose."""


class ModelNotFoundError(EmotionOnnxError, FileNotFoundError):
    """The model directory or one of its files does not exist."""


class ManifestError(EmotionOnnxError, ValueError):
    """manifest.json is missing, malformed or inconsistent with the model directory."""


class IntegrityError(ManifestError):
    """A model file does not match the sha256 recorded in the manifest."""


class InputError(EmotionOnnxError, ValueError):
    """User input (a file, a column, a field) cannot be read as texts."""


class OutputError(EmotionOnnxError, OSError):
    """The output cannot be written (a full disk, an I/O error, a closed pipe's sibling errors)."""
