"""INT8 rewrites of the fused fp32 graph whose answers do not depend on the batch.

Every MatMul with a constant weight W [K, N] becomes an integer GEMM, `MatMulIntegerToFloat`,
on int8 weights quantised symmetrically per output channel (exact int32 accumulation). Its
activation x is quantised to uint8 in one of three ways, none of which looks at other rows:

* **static**: one scale and zero point per activation tensor, fixed at export
  from the calibration texts' real tokens (their min and max, or a percentile of |x|):
      q = QuantizeLinear(x, s, zp);  y = MatMulIntegerToFloat(q, W_int8, s, w_scale, zp, bias)
  Two ops per GEMM, with the bias fused into the GEMM.
* **per-token** (the export's default): each row gets its own scale max|row|/127 (zero point
  128), and the GEMM's output is rescaled by it:
      a = ReduceMax(|x|); q = QuantizeLinear(x / a, 1/127, 128); y = MatMulIntegerToFloat(q, ...) * a
  No calibration, six ops per GEMM.
* **mixed** uses static scales for the layer-norm outputs (the attention and feed-forward
  inputs, which one scale per tensor holds well) and per-token rows for the others.

Around the GEMMs:
* the fused Attention becomes the QKV GEMM above, a Split and onnxruntime's fused
  MultiHeadAttention kernel (padding mask kept);
* the word and position embedding tables are stored as int8 with one scale per row, gathered and
  rescaled per token; EmbedLayerNormalization becomes Gather + Add + LayerNormalization;
* Gemm nodes (the classification head, fed only the first token's row) stay fp32;
* exact GELU (BiasGelu / Gelu) becomes FastGelu, its tanh approximation (|error| < 5e-4 per
  activation, below the int8 rounding of the GEMM that reads it), which is cheaper to compute;
* optional SmoothQuant (per-token scheme): activation outliers are migrated into the weights
  with per-input-channel factors f = max|x|^a / max|W|^(1-a) from the calibration texts.

Every float op acts on one row and the integer GEMM is exact, so a text's logits cannot depend
on the other rows of its batch; the export gate measures it for every variant.

Here: the settings, the calibration statistics and one rewrite function per graph pattern (PATTERNS);
int8_activations holds one activation quantiser per scheme, int8_graph the graph editing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from .int8_activations import QUANTISERS, ActivationQuantiser
from .int8_graph import MS, GraphEdit, drop_dead_nodes

SCHEMES = ("static", "per-token", "mixed")
RANGE_SAMPLE = 200_000  # values kept per activation tensor (as whole token rows) for percentile ranges


@dataclass
class ActivationStats:
    """What the calibration texts' real tokens did at one GEMM input."""

    channel_min: np.ndarray
    channel_max: np.ndarray
    rows: np.ndarray  # a uniform sample of token rows (n, channels), for percentiles

    def range(self, percentile: float | None, divisor: np.ndarray | None = None) -> tuple[float, float]:
        """(low, high) of the values, or of the values divided per channel by `divisor`."""
        d = 1.0 if divisor is None else divisor
        if percentile is None:
            lo, hi = self.channel_min / d, self.channel_max / d
            return float(np.minimum(lo, hi).min()), float(np.maximum(lo, hi).max())
        lo, hi = np.percentile(self.rows / d, [100.0 - percentile, percentile])
        return float(lo), float(hi)


@dataclass
class Int8Settings:
    scheme: str = "per-token"  # one of SCHEMES, the export's default; "mixed": static for layer-norm outputs
    percentile: float | None = None  # static ranges: None = min/max, else this percentile of the values
    smooth_alpha: float | None = None  # SmoothQuant strength for layer-norm outputs; None disables it
    exclude: tuple[str, ...] = ()  # node names kept in fp32
    quantize_attention: bool = True
    quantize_embeddings: bool = True
    activation_stats: dict[str, ActivationStats] = field(default_factory=dict)  # tensor -> calibration stats
    per_token_inputs: frozenset[str] | None = None  # "mixed": these activations per token (default: non-norm ones)
    reduce_range: bool = False  # 7-bit weights: avoids int16 saturation of VPMADDUBSW on AVX2 without VNNI
    fast_gelu: bool = True  # GELU as FastGelu (tanh approximation)

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown int8 scheme {self.scheme!r}; choose one of {', '.join(SCHEMES)}")

    @property
    def weight_max(self) -> int:
        return 63 if self.reduce_range else 127

    @property
    def needs_calibration(self) -> bool:
        return self.scheme != "per-token" or self.smooth_alpha is not None

    def to_manifest(self) -> dict:
        static = "one static scale and zero point per tensor from the calibration texts " + (
            "(min/max)" if self.percentile is None else f"({self.percentile} percentile)"
        )
        per_token = "symmetric per token row (zero point 128), scale = max|row|/127"
        activations = {
            "static": f"uint8, {static}",
            "per-token": f"uint8, {per_token}",
            "mixed": f"uint8; layer-norm outputs {static}; the others {per_token}",
        }[self.scheme]
        return {
            "scheme": f"{self.scheme}-int8",
            "activations": activations,
            "weights": f"int8, symmetric per output channel, |q| <= {self.weight_max}",
            "embeddings": "int8 per table row (word, position)" if self.quantize_embeddings else "fp32",
            "attention_projection": "int8" if self.quantize_attention else "fp32",
            "smooth_alpha": self.smooth_alpha,
            "gelu": "tanh approximation (FastGelu)" if self.fast_gelu else "exact (erf)",
            "excluded_nodes": list(self.exclude),
        }


@dataclass
class _Rewrite:
    """The state one INT8 rewrite shares between its pattern rewrites."""

    edit: GraphEdit
    settings: Int8Settings
    acts: ActivationQuantiser
    quantized_tables: dict[str, tuple[str, str]] = field(default_factory=dict)
    bias_free_gemms: dict[str, object] = field(default_factory=dict)  # output -> static GEMM that could take a bias

    def excluded(self, node) -> bool:
        return node.name in self.settings.exclude


def int8_matmul(r: _Rewrite, x: str, weight: np.ndarray, out: str, nodes: list, smooth: np.ndarray | None,
                bias: np.ndarray | None) -> bool:  # fmt: skip
    """x @ weight (+ bias) into `out`; returns whether the bias was fused into the GEMM."""
    from onnx import helper

    edit = r.edit
    w = weight.astype(np.float64)
    if smooth is not None:
        w = w * smooth[:, None]
    limit = r.settings.weight_max
    w_scale = np.abs(w).max(axis=0) / limit
    w_scale[w_scale == 0] = 1.0
    w_q = np.clip(np.rint(w / w_scale), -limit, limit).astype(np.int8)
    q, row_scale, a_scale, a_zp = r.acts.quantize(x, smooth, nodes)
    inputs = [q, edit.const("w_int8", w_q), a_scale, edit.const("w_scale", w_scale.astype(np.float32)), a_zp]
    fuse_bias = bias is not None and row_scale is None  # a per-row rescale comes after the GEMM
    if fuse_bias:
        inputs += ["", edit.const("bias", bias.astype(np.float32))]
    if row_scale is None:
        gemm = helper.make_node("MatMulIntegerToFloat", inputs, [out], name=edit.uid("gemm"), domain=MS)
        nodes.append(gemm)
        if not fuse_bias:
            r.bias_free_gemms[out] = gemm
    else:
        mm, (y,) = edit.node("MatMulIntegerToFloat", inputs, domain=MS)
        nodes += [mm, helper.make_node("Mul", [y, row_scale], [out], name=edit.uid("rescale"))]
    edit.stats["int8_matmuls"] += 1
    return fuse_bias


def rewrite_matmul(r: _Rewrite, node) -> list | None:
    """MatMul by a constant 2-D weight -> the integer GEMM."""
    weight = r.edit.array(node.input[1])
    if weight is None or weight.ndim != 2 or r.excluded(node):
        return None
    nodes: list = []
    smooth = r.acts.smooth_factors(node.input[0], weight)
    int8_matmul(r, node.input[0], weight, node.output[0], nodes, smooth, None)
    return nodes


def rewrite_attention(r: _Rewrite, node) -> list | None:
    """The fused Attention -> the QKV integer GEMM, a Split and MultiHeadAttention."""
    from onnx import helper

    edit = r.edit
    if not r.settings.quantize_attention or r.excluded(node):
        return None
    weight, bias = edit.array(node.input[1]), edit.array(node.input[2])
    if weight is None or bias is None or len(node.input) > 4 and any(node.input[4:]):
        return None
    attrs = {a.name: a for a in node.attribute}
    heads = helper.get_attribute_value(attrs["num_heads"])
    causal = "unidirectional" in attrs and helper.get_attribute_value(attrs["unidirectional"])
    if causal or "qkv_hidden_sizes" in attrs:
        return None
    hidden = weight.shape[1] // 3
    nodes: list = []
    qkv = edit.uid("qkv")
    smooth = r.acts.smooth_factors(node.input[0], weight)
    fused_bias = int8_matmul(r, node.input[0], weight, qkv, nodes, smooth, bias)
    split, (q, k, v) = edit.node("Split", [qkv, edit.const("split", np.array([hidden] * 3, np.int64))], 3, axis=-1)
    mask = node.input[3] if len(node.input) > 3 else ""
    mha_attrs = {"num_heads": heads}
    if "mask_filter_value" in attrs:
        mha_attrs["mask_filter_value"] = helper.get_attribute_value(attrs["mask_filter_value"])
    mha_bias = "" if fused_bias else edit.const("qkv_bias", bias.astype(np.float32))
    mha = helper.make_node(
        "MultiHeadAttention",
        [q, k, v, mha_bias, mask],
        [node.output[0]],
        name=edit.uid("MultiHeadAttention"),
        domain=MS,
        **mha_attrs,
    )
    edit.stats["attention_to_mha"] += 1
    return [*nodes, split, mha]


def quantized_rows(r: _Rewrite, table_name: str, op: str, extra: list[str], nodes: list, **attrs) -> str:
    """op(table)[rows] of an fp32 table stored as int8 with one scale per row: the same
    op (Gather by ids, or Slice) selects rows of both, then Cast * scale dequantises."""
    from onnx import TensorProto

    edit = r.edit
    if table_name not in r.quantized_tables:
        table = edit.array(table_name)
        row_scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
        row_scale[row_scale == 0] = 1.0
        t_q = np.clip(np.rint(table / row_scale), -127, 127).astype(np.int8)
        r.quantized_tables[table_name] = (
            edit.const("emb_int8", t_q),
            edit.const("emb_scale", row_scale.astype(np.float32)),
        )
        edit.stats["int8_embedding_tables"] += 1
    table_q, table_scale = r.quantized_tables[table_name]
    g1, (rows,) = edit.node(op, [table_q, *extra], **attrs)
    g2, (scales,) = edit.node(op, [table_scale, *extra], **attrs)
    c, (rows_f,) = edit.node("Cast", [rows], to=TensorProto.FLOAT)
    m, (out,) = edit.node("Mul", [rows_f, scales])
    nodes += [g1, g2, c, m]
    return out


def _embedding_sum(r: _Rewrite, ids: str, seg_ids: str, word: str, pos: str, seg: str, pos_ids: str,
                   nodes: list) -> str:  # fmt: skip
    """word[ids] + pos[positions] (+ seg[seg_ids]), the tables int8 per row."""
    edit = r.edit
    total = quantized_rows(r, word, "Gather", [ids], nodes, axis=0)
    if pos_ids:
        p = quantized_rows(r, pos, "Gather", [pos_ids], nodes, axis=0)
    else:  # positions 0 .. S-1: the first S rows of the table
        shape, (shp,) = edit.node("Shape", [ids])
        gl, (seq,) = edit.node("Gather", [shp, edit.const("one", np.array([1], np.int64))], axis=0)
        nodes += [shape, gl]
        starts, axes = edit.const("zero", np.array([0], np.int64)), edit.const("ax", np.array([0], np.int64))
        p = quantized_rows(r, pos, "Slice", [starts, seq, axes], nodes)
    a, (total2,) = edit.node("Add", [total, p])
    nodes.append(a)
    total = total2
    if seg_ids and seg:
        gs, (s,) = edit.node("Gather", [seg, seg_ids], axis=0)
        a2, (total3,) = edit.node("Add", [total, s])
        nodes += [gs, a2]
        total = total3
    return total


def rewrite_embed_layernorm(r: _Rewrite, node) -> list | None:
    """EmbedLayerNormalization -> int8 table lookups, Add and LayerNormalization (and the mask
    index it also gave, from the attention mask)."""
    from onnx import TensorProto, helper

    edit = r.edit
    if not r.settings.quantize_embeddings or r.excluded(node):
        return None
    ins = list(node.input) + [""] * (9 - len(node.input))
    ids, seg_ids, word, pos, seg, gamma, beta, mask, pos_ids = ins[:9]
    if edit.array(word) is None or edit.array(pos) is None:
        return None
    eps = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "epsilon"), 1e-12)
    nodes: list = []
    total = _embedding_sum(r, ids, seg_ids, word, pos, seg, pos_ids, nodes)
    ln = helper.make_node(
        "LayerNormalization", [total, gamma, beta], [node.output[0]], name=edit.uid("LayerNorm"), axis=-1, epsilon=eps
    )
    nodes.append(ln)
    if len(node.output) > 1 and node.output[1]:
        if not mask:
            return None
        rs = helper.make_node(
            "ReduceSum",
            [mask, edit.const("axis1", np.array([1], np.int64))],
            [edit.uid("mask_sum")],
            name=edit.uid("ReduceSum"),
            keepdims=0,
        )
        cast = helper.make_node("Cast", [rs.output[0]], [node.output[1]], name=edit.uid("Cast"), to=TensorProto.INT32)
        nodes += [rs, cast]
    if len(node.output) > 2 and node.output[2] and edit.uses.get(node.output[2]):
        return None
    return nodes


def rewrite_gather(r: _Rewrite, node) -> list | None:
    """An unfused embedding lookup: Gather(table [V, D], ids) on a word or position table."""
    from onnx import helper

    table = r.edit.array(node.input[0])
    if not r.settings.quantize_embeddings or table is None or table.ndim != 2 or table.shape[0] < 256:
        return None
    if r.excluded(node):
        return None
    nodes: list = []
    out = quantized_rows(r, node.input[0], "Gather", [node.input[1]], nodes, axis=0)
    nodes.append(helper.make_node("Identity", [out], [node.output[0]], name=r.edit.uid("Identity")))
    return nodes


def rewrite_gelu(r: _Rewrite, node) -> list | None:
    """BiasGelu(x, bias) / Gelu(x) -> FastGelu(x[, bias]): the tanh form of GELU."""
    from onnx import helper

    if not r.settings.fast_gelu or r.excluded(node):
        return None
    r.edit.stats["fast_gelu"] += 1
    name = r.edit.uid("FastGelu")
    return [helper.make_node("FastGelu", list(node.input), list(node.output), name=name, domain=MS)]


def fuse_skip_layer_norm_biases(r: _Rewrite) -> None:
    """Move the bias of a SkipLayerNormalization into the static GEMM that alone feeds it: the
    GEMM adds it in its own pass, and the layer norm (fused or not) has one add less."""
    graph = r.edit.graph
    consumers: dict[str, int] = defaultdict(int)
    for node in graph.node:
        for name in node.input:
            consumers[name] += 1
    for node in graph.node:
        if node.op_type != "SkipLayerNormalization" or len(node.input) < 5 or not node.input[4]:
            continue
        bias = r.edit.array(node.input[4])
        gemm = r.bias_free_gemms.get(node.input[0])
        if bias is None or gemm is None or consumers[node.input[0]] != 1:
            continue
        gemm.input.extend([""] * (7 - len(gemm.input)))
        gemm.input[6] = r.edit.const("bias", bias.astype(np.float32))
        node.input[4] = ""
        r.edit.stats["biases_fused_into_gemm"] += 1


PATTERNS = {
    ("", "MatMul"): rewrite_matmul,
    (MS, "Attention"): rewrite_attention,
    (MS, "EmbedLayerNormalization"): rewrite_embed_layernorm,
    ("", "Gather"): rewrite_gather,
    (MS, "BiasGelu"): rewrite_gelu,
    (MS, "Gelu"): rewrite_gelu,
    ("", "Gelu"): rewrite_gelu,
}


def gemm_inputs(model) -> list[str]:
    """The activations that the rewrite quantises: the data input of every MatMul with a constant
    weight and of every fused Attention."""
    inits = {t.name for t in model.graph.initializer}
    return sorted(
        {
            n.input[0]
            for n in model.graph.node
            if (n.op_type == "MatMul" and n.input[1] in inits) or (n.op_type == "Attention" and n.domain == MS)
        }
    )


def quantize_int8(src: Path, dst: Path, settings: Int8Settings | None = None) -> dict:
    """Rewrite the fused fp32 graph at `src` into the int8 graph at `dst`."""
    import onnx

    model = onnx.load(str(src))
    settings = settings or Int8Settings()
    edit = GraphEdit(model)
    drop_dead_nodes(edit.graph)  # the python fusions leave some behind
    r = _Rewrite(edit, settings, QUANTISERS[settings.scheme](edit, settings))
    edit.replace_nodes({key: partial(rewrite, r) for key, rewrite in PATTERNS.items()})
    fuse_skip_layer_norm_biases(r)
    edit.finish()
    onnx.save(model, str(dst))
    return dict(edit.stats)


def activation_stats(fused: Path, encoder, texts: list[str], batch_size: int = 32, seed: int = 0) -> dict:
    """Calibration statistics of every GEMM input activation over the real (unpadded) tokens of
    `texts`, tokenised and padded by the runtime's own encoder (emotion_onnx TextEncoder)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(fused))
    targets = gemm_inputs(model)
    existing = {o.name for o in model.graph.output}
    for name in targets:
        if name not in existing:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    lo: dict[str, np.ndarray] = {}
    hi: dict[str, np.ndarray] = {}
    samples: dict[str, list[np.ndarray]] = defaultdict(list)
    batches = max(1, -(-len(texts) // batch_size))
    for start in range(0, len(texts), batch_size):
        encodings = encoder.encode(texts[start : start + batch_size])
        feeds = encoder.pad(encodings)
        mask = feeds["attention_mask"].astype(bool)
        outs = session.run(targets, feeds)
        for name, value in zip(targets, outs):
            padded = value.ndim == 3 and value.shape[:2] == mask.shape  # (texts, tokens, channels)
            rows = value[mask] if padded else value.reshape(-1, value.shape[-1])
            lo[name] = rows.min(axis=0) if name not in lo else np.minimum(lo[name], rows.min(axis=0))
            hi[name] = rows.max(axis=0) if name not in hi else np.maximum(hi[name], rows.max(axis=0))
            keep = max(1, RANGE_SAMPLE // (rows.shape[1] * batches))
            samples[name].append(rows[rng.integers(0, len(rows), min(keep, len(rows)))])
    return {name: ActivationStats(lo[name], hi[name], np.concatenate(samples[name])) for name in targets}
