"""The parameters of a prediction, each decided here once: the library (`EmotionClassifier`), the
CLI, every request transport (emotion_onnx.requests) and the OpenAPI schema (serving/schemas.py)
ask these functions which values are accepted and what they mean. Each caller words a refusal in
its own terms (Python's None and True for the library, JSON's null and true for a request).

- top_k: a positive int (not a bool), or None for every label;
- function_to_apply: "softmax", "sigmoid" or "none", in any case (as transformers' pipeline);
- calibrated: True (the variant's calibration), "temperature" (its temperature only) or False;
- neutral: a bool;
- truncation_direction (/embed): "right", in any case (the model keeps the start of a text).
"""

from __future__ import annotations

from typing import Any

OUTPUT_FUNCTIONS = ("softmax", "sigmoid", "none")
# what `calibrated` may be, and the calibration mode (emotion_onnx.calibration) each value names
CALIBRATED = {True: "calibrated", False: "none", "temperature": "temperature"}
TRUNCATION_DIRECTIONS = ("right",)


def is_positive_int(value: Any) -> bool:
    """A real int (not a bool) of at least 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def top_k_ok(value: Any) -> bool:
    return value is None or is_positive_int(value)


def output_function(value: Any) -> str | None:
    """The function `function_to_apply` names (any case), or None when it names none."""
    name = value.lower() if isinstance(value, str) else None
    return name if name in OUTPUT_FUNCTIONS else None


def calibration_mode(value: Any) -> str | None:
    """The calibration mode `calibrated` names, or None when it is not one of CALIBRATED's keys
    (compared by identity for True and False, so 1 and 0 are not taken for them)."""
    for accepted, mode in CALIBRATED.items():
        if value is accepted or (isinstance(accepted, str) and value == accepted):
            return mode
    return None


def neutral_ok(value: Any) -> bool:
    return isinstance(value, bool)


def truncation_direction_ok(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.lower() in TRUNCATION_DIRECTIONS)


def any_case_pattern(words: tuple[str, ...]) -> str:
    """A JSON Schema pattern (ECMA-262, which has no case-insensitive flag) matching exactly these
    words in any case, as the parsers accept them."""
    return "^(" + "|".join("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in w) for w in words) + ")$"
