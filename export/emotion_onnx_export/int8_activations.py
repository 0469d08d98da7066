"""How an activation becomes uint8 before an integer GEMM: one quantiser per scheme
(emotion_onnx_export.int8's docstring shows the ops of each). A quantiser returns
(uint8 tensor, per-row rescale or None, scale, zero point), shared by every GEMM that reads the
same activation (with the same SmoothQuant factors)."""

from __future__ import annotations

import hashlib

import numpy as np

from .int8_graph import GraphEdit

# "mixed": static scales for layer-norm outputs (they tolerate one scale per tensor), per-token rows for
# the attention and feed-forward activations, whose outliers a single static scale cannot hold
NORM_OPS = {"SkipLayerNormalization", "EmbedLayerNormalization", "LayerNormalization"}


def static_quantize(edit: GraphEdit, settings, x: str, src: str, smooth: np.ndarray | None, nodes: list) -> tuple:
    """x's calibrated range (divided by the smoothing factors, as src is) sets one scale."""
    stats = settings.activation_stats.get(x)
    if stats is None:
        raise ValueError(f"static int8 needs calibration statistics for activation {x!r}")
    lo, hi = stats.range(settings.percentile, smooth)
    lo, hi = min(lo, 0.0), max(hi, 0.0)  # zero must be exactly representable (padding, ReLU)
    scale = max(hi - lo, 1e-8) / 255.0
    zp = int(np.clip(np.rint(-lo / scale), 0, 255))
    s_name = edit.const("a_scale", np.array(scale, np.float32))
    zp_name = edit.const("a_zp", np.array(zp, np.uint8))
    n, (q,) = edit.node("QuantizeLinear", [src, s_name, zp_name])
    nodes.append(n)
    edit.stats["static_activations"] += 1
    return q, None, s_name, zp_name


def per_token_quantize(edit: GraphEdit, src: str, nodes: list) -> tuple:
    # Four ops per activation: amax = max|row|; q = round(127 * row / amax) + 128, where
    # QuantizeLinear's scalar scale 1/127 does the * 127 (and rounds half to even and
    # saturates in the same pass). The GEMM's scalar a_scale gives back the 1/127 and
    # one Mul by amax per output row finishes the dequantisation. No epsilon guard: an
    # all-zero row has amax 0, so whatever 0/0 quantises to is multiplied by 0 and the
    # row's output is exactly 0, which is its true value.
    n1, (absolute,) = edit.node("Abs", [src])
    n2, (amax,) = edit.node("ReduceMax", [absolute], axes=[-1], keepdims=1)
    n3, (unit,) = edit.node("Div", [src, amax])  # in [-1, 1]
    inv127 = edit.const("inv127", np.array(1.0 / 127.0, np.float32))
    zp128 = edit.const("zp128", np.array(128, np.uint8))
    n4, (q,) = edit.node("QuantizeLinear", [unit, inv127, zp128])
    nodes += [n1, n2, n3, n4]
    return q, amax, inv127, zp128


class ActivationQuantiser:
    """The shared part: SmoothQuant's division and the cache of quantised activations."""

    def __init__(self, edit: GraphEdit, settings):
        self.edit, self.settings = edit, settings
        self.done: dict[tuple[str, str], tuple] = {}

    def scheme_of(self, x: str) -> str:
        raise NotImplementedError

    def is_norm_output(self, x: str) -> bool:
        return self.edit.producer.get(x) in NORM_OPS

    def quantize(self, x: str, smooth: np.ndarray | None, nodes: list) -> tuple:
        """(uint8 tensor, per-row rescale or None, scale, zero point) of activation x."""
        key = (x, "" if smooth is None else hashlib.sha256(smooth.tobytes()).hexdigest())
        if key in self.done:
            return self.done[key]
        src = x
        if smooth is not None:  # SmoothQuant: x / f here, W * f in the GEMM's weight
            n, (src,) = self.edit.node("Mul", [x, self.edit.const("smooth_inv", (1.0 / smooth).astype(np.float32))])
            nodes.append(n)
        if self.scheme_of(x) == "static":
            result = static_quantize(self.edit, self.settings, x, src, smooth, nodes)
        else:
            result = per_token_quantize(self.edit, src, nodes)
        self.done[key] = result
        return result

    def smooth_factors(self, x: str, weight: np.ndarray) -> np.ndarray | None:
        """SmoothQuant's per-input-channel factors f = max|x|^a / max|W|^(1-a) for activation x
        (None without a strength or statistics, and for static activations other than layer-norm
        outputs)."""
        alpha = self.settings.smooth_alpha
        stats = self.settings.activation_stats.get(x)
        if alpha is None or stats is None or (self.scheme_of(x) == "static" and not self.is_norm_output(x)):
            return None
        act = np.maximum(np.abs(stats.channel_min), np.abs(stats.channel_max))
        w_max = np.abs(weight).max(axis=1)
        f = np.power(np.maximum(act, 1e-5), alpha) / np.power(np.maximum(w_max, 1e-5), 1 - alpha)
        return np.clip(f, 1e-2, 1e2).astype(np.float32)


class StaticActivations(ActivationQuantiser):
    """One scale and zero point per activation tensor, from the calibration texts."""

    def scheme_of(self, x: str) -> str:
        return "static"


class PerTokenActivations(ActivationQuantiser):
    """Each token row its own scale, max|row|/127: no calibration."""

    def scheme_of(self, x: str) -> str:
        return "per-token"


class MixedActivations(ActivationQuantiser):
    """Static for layer-norm outputs (or all but `settings.per_token_inputs`), per-token elsewhere."""

    def scheme_of(self, x: str) -> str:
        chosen = self.settings.per_token_inputs
        per_token = not self.is_norm_output(x) if chosen is None else x in chosen
        return "per-token" if per_token else "static"


QUANTISERS = {"static": StaticActivations, "per-token": PerTokenActivations, "mixed": MixedActivations}
