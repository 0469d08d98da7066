"""Turning logits into probabilities: softmax with the variant's temperature, then its optional
map of the top-1 confidence. One function, `probabilities`, serves every path (library, CLI,
HTTP, Lambda, Spark). numpy only; fitting lives in the export stage.

The top-1 map changes only how sure the model says it is: the top probability c becomes
m = map(c), and every other label is rescaled by (1 - m) / (1 - c), so each row still sums
to 1. The predicted label never changes: m is clamped from below at the value that keeps the
top label at least as probable as the runner-up after the rescaling.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from .parameters import OUTPUT_FUNCTIONS

# what a caller may ask for: the variant's full calibration, its temperature only, or plain softmax
CALIBRATION_MODES = ("calibrated", "temperature", "none")


# A text's own temperature stays within this factor of the fitted one, either way: far outside
# the features seen in fitting, the linear model behind it means nothing
TEMPERATURE_SPREAD = math.e**3


def temperature_features(logits: np.ndarray, neutral: np.ndarray | None = None) -> np.ndarray:
    """(n, 5) float64: what a per-text temperature reads from each row of an answer's logits
    (emotion_onnx.manifest.TEMPERATURE_FEATURES): the gap between the two largest, the largest,
    their log-sum-exp, the neutral logit and its distance to the largest (both 0 for a model
    without a neutral output)."""
    z = np.asarray(logits, dtype=np.float64)
    ordered = np.sort(z, axis=-1)
    top = ordered[:, -1]
    lse = top + np.log(np.exp(z - top[:, None]).sum(axis=-1))
    n = np.zeros_like(top) if neutral is None else np.asarray(neutral, dtype=np.float64)
    has = 0.0 if neutral is None else 1.0
    return np.stack([top - ordered[:, -2], top, lse, n, has * (n - top)], axis=1)


def temperatures(logits: np.ndarray, calibration: Any, neutral: np.ndarray | None = None) -> float | np.ndarray:
    """The calibration's temperature, or with temperature features, one per row: T * exp(w . f),
    kept within TEMPERATURE_SPREAD of T."""
    base = calibration.temperature
    features = getattr(calibration, "features", None)
    if features is None or not len(logits):
        return base
    if len(logits) == 1:  # one text: Python floats, as softmax does, cost less than numpy's overhead
        row = np.asarray(logits, dtype=np.float64)[0].tolist()
        top, second = sorted(row)[-2:][::-1]
        lse = top + math.log(math.fsum(math.exp(x - top) for x in row))
        n = 0.0 if neutral is None else float(np.asarray(neutral)[0])
        f = (top - second, top, lse, n, 0.0 if neutral is None else n - top)
        scale = math.fsum(w * x for w, x in zip(features.weights, f))
        limit = math.log(TEMPERATURE_SPREAD)
        return np.array([base * math.exp(min(max(scale, -limit), limit))])
    scale = temperature_features(logits, neutral) @ np.asarray(features.weights, dtype=np.float64)
    return base * np.exp(np.clip(scale, -math.log(TEMPERATURE_SPREAD), math.log(TEMPERATURE_SPREAD)))


def softmax(logits: np.ndarray, temperature: float | np.ndarray = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature (one for all rows, or one per row), stable for any
    finite logits, in float64."""
    if np.ndim(temperature) == 1:
        t = np.asarray(temperature, dtype=np.float64)
        if not (t > 0).all():
            raise ValueError("temperatures must be positive")
        if len(t) == 1:
            return softmax(logits, float(t[0]))
        temperature = t[:, None]  # one per row, divided in below
    elif not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    elif np.ndim(logits) == 2 and len(logits) == 1:
        # One row (a single text): Python floats cost less than numpy's per-call overhead,
        # which right after a model run (caches evicted) dominates a six-number softmax.
        row = np.asarray(logits, dtype=np.float64)[0].tolist()
        top = max(row)
        exps = [math.exp((x - top) / temperature) for x in row]
        total = math.fsum(exps)
        return np.array([[e / total for e in exps]])
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def _interp(x: float, xs: tuple[float, ...], ys: tuple[float, ...]) -> float:
    """np.interp for one value (flat beyond the ends), in Python floats."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, x)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _first_argmax(row: list[float]) -> int:
    return max(range(len(row)), key=row.__getitem__)  # max() keeps the first of tied maxima


def _map_row(row: list[float], xs: tuple[float, ...], ys: tuple[float, ...]) -> list[float]:
    top = _first_argmax(row)
    c = row[top]
    rest = math.fsum(p for j, p in enumerate(row) if j != top)  # not 1 - c, which cancels when c is near 1
    if rest <= 0.0:  # the other labels are already 0
        return row
    p2 = max(p for j, p in enumerate(row) if j != top)
    m = max(_interp(c, xs, ys), p2 / (rest + p2))
    for _ in range(8):  # rounding can leave a runner-up tied with the top: nudge m past it
        scale = (1.0 - m) / rest
        out = [m if j == top else p * scale for j, p in enumerate(row)]
        if _first_argmax(out) == top:
            return out
        m = math.nextafter(m, 1.0)
    return row


def apply_top1_map(probs: np.ndarray, xs: tuple[float, ...], ys: tuple[float, ...]) -> np.ndarray:
    """Map each row's top probability through the knots (xs, ys); see the module docstring."""
    probs = np.asarray(probs, dtype=np.float64)
    if len(probs) == 1:
        return np.array([_map_row(probs[0].tolist(), xs, ys)])
    rows = np.arange(len(probs))
    top = probs.argmax(axis=1)
    c = probs[rows, top]
    others = probs.copy()
    others[rows, top] = 0.0
    rest = others.sum(axis=1)  # the others' mass, summed: 1 - c cancels when c is near 1
    others[rows, top] = -np.inf
    p2 = others.max(axis=1)
    live = rest > 0.0
    safe_rest = np.where(live, rest, 1.0)
    m = np.where(live, np.maximum(np.interp(c, xs, ys), p2 / (safe_rest + p2)), c)
    out = probs * ((1.0 - m) / safe_rest)[:, None]
    out[rows, top] = m
    out[~live] = probs[~live]
    for r in np.flatnonzero(out.argmax(axis=1) != top):  # exact ties after rounding: row by row
        out[r] = _map_row(probs[r].tolist(), xs, ys)
    return out


def probabilities(
    logits: np.ndarray, calibration: Any = None, mode: str = "calibrated", neutral: np.ndarray | None = None
) -> np.ndarray:
    """The probabilities of every label: softmax(logits / T), then the top-1 map ("calibrated",
    the default), softmax(logits / T) only ("temperature"), or plain softmax ("none").
    `calibration` is a manifest Calibration (None: plain softmax); T is one per text when it has
    temperature features, which read `neutral`, the model's neutral logits (None without one)."""
    if mode not in CALIBRATION_MODES:
        raise ValueError(f"calibration mode must be one of {', '.join(CALIBRATION_MODES)}, got {mode!r}")
    if calibration is None or mode == "none":
        return softmax(logits)
    probs = softmax(logits, temperatures(logits, calibration, neutral))
    if mode == "calibrated" and calibration.top1_map is not None and len(probs):
        probs = apply_top1_map(probs, calibration.top1_map.x, calibration.top1_map.y)
    return probs


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def output_scores(logits: np.ndarray, function: str, calibration: Any = None, mode: str = "calibrated",
                  neutral: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Hugging Face's `function_to_apply`: "softmax" gives `probabilities(...)` (calibrated by
    default), "sigmoid" the element-wise sigmoid of the raw logits, "none" the raw logits."""
    if function == "softmax":
        return probabilities(logits, calibration, mode, neutral)
    if function == "sigmoid":
        return sigmoid(logits)
    if function == "none":
        return np.asarray(logits, dtype=np.float64)
    raise ValueError(f"function_to_apply must be one of {', '.join(OUTPUT_FUNCTIONS)}, got {function!r}")
