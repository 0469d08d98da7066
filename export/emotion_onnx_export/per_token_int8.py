"""Batch-invariant INT8: per-token (per-row) activation scales around integer GEMMs.

onnxruntime's `quantize_dynamic` gives each activation tensor ONE scale, shared by every
token of every text in the batch (padding included), so a text's scores depend on its
batch neighbours. This pass rewrites the fused fp32 graph instead:

* every MatMul with a constant weight W [K, N] becomes
      a   = max(|x|, over K)                            one scale per token row
      q   = QuantizeLinear(x / a, 1/127, 128)           uint8, zero point 128
      y   = MatMulIntegerToFloat(q, W_int8, 1/127, w_scale, 128)   exact int32 GEMM (VNNI)
      out = y * a
  with W quantised symmetrically per output channel. The integer GEMM is exact and
  every float op acts on one row, so a row's result cannot depend on other rows.
* the fused Attention (whose built-in QKV projection onnxruntime would quantise per
  tensor) becomes the per-token QKV GEMM above, a Split, and the fused
  MultiHeadAttention kernel, which keeps the padding mask and bias.
* the word and position embedding tables are stored as int8 with one scale per row and
  gathered and rescaled per token; EmbedLayerNormalization becomes Gather + Add +
  LayerNormalization (its parameters stay fp32).
* optional SmoothQuant: before quantising, activation outliers are migrated into the
  weights with per-input-channel factors f = max|x|^a / max|W|^(1-a) computed on
  calibration texts (x / f is applied to the row before quantisation, W * f offline).
* Gemm nodes (the classification head, fed only the [CLS] rows) stay fp32.
* exact GELU (BiasGelu / Gelu) becomes FastGelu, its tanh approximation (|error| < 5e-4 per
  activation, below the int8 rounding of the GEMM that reads it), which is cheaper to compute.
  `fast_gelu=False` keeps the exact erf.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MS = "com.microsoft"


@dataclass
class PerTokenSettings:
    smooth_alpha: float | None = None  # SmoothQuant migration strength; None disables it
    exclude: tuple[str, ...] = ()  # node names kept in fp32
    quantize_attention: bool = True
    quantize_embeddings: bool = True
    activation_ranges: dict[str, np.ndarray] = field(default_factory=dict)  # tensor -> max|x| per channel
    reduce_range: bool = False  # 7-bit weights: avoids int16 saturation of VPMADDUBSW on AVX2 without VNNI
    fast_gelu: bool = True  # GELU as FastGelu (tanh approximation)

    @property
    def weight_max(self) -> int:
        return 63 if self.reduce_range else 127

    def to_manifest(self) -> dict:
        return {
            "scheme": "per-token-int8",
            "activations": "uint8, symmetric per token row (zero point 128), scale = max|row|/127",
            "weights": f"int8, symmetric per output channel, |q| <= {self.weight_max}",
            "embeddings": "int8 per table row (word, position)" if self.quantize_embeddings else "fp32",
            "attention_projection": "int8" if self.quantize_attention else "fp32",
            "smooth_alpha": self.smooth_alpha,
            "gelu": "tanh approximation (FastGelu)" if self.fast_gelu else "exact (erf)",
            "excluded_nodes": list(self.exclude),
        }


def drop_dead_nodes(graph) -> None:
    """Remove the nodes of an ONNX graph whose outputs nothing reads, directly or through
    other nodes, up to the graph outputs."""
    live = {o.name for o in graph.output}
    kept = []
    for node in reversed(list(graph.node)):
        if any(out in live for out in node.output):
            kept.append(node)
            live.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))


class _Rewriter:
    def __init__(self, model, settings: PerTokenSettings):
        from onnx import numpy_helper

        self.onnx_np = numpy_helper
        self.model = model
        self.graph = model.graph
        self.settings = settings
        self.inits = {t.name: t for t in self.graph.initializer}
        self.new_inits: list = []
        self.counter = 0
        self.uses = defaultdict(int)
        for node in self.graph.node:
            for name in node.input:
                self.uses[name] += 1
        self.quantized_inputs: dict[str, tuple[str, str]] = {}
        self.quantized_tables: dict[str, tuple[str, str]] = {}
        self.stats = defaultdict(int)

    # -- helpers ---------------------------------------------------------------------------
    def uid(self, base: str) -> str:
        self.counter += 1
        return f"{base}_pt{self.counter}"

    def const(self, name: str, array: np.ndarray) -> str:
        name = self.uid(name)
        self.new_inits.append(self.onnx_np.from_array(array, name))
        return name

    def array(self, name: str) -> np.ndarray | None:
        t = self.inits.get(name)
        return None if t is None else self.onnx_np.to_array(t)

    def node(self, op: str, inputs: list[str], n_out: int = 1, domain: str = "", **attrs):
        from onnx import helper

        outs = [self.uid(f"{op}_out") for _ in range(n_out)]
        made = helper.make_node(op, inputs, outs, name=self.uid(op), domain=domain, **attrs)
        return made, outs

    # -- the per-token GEMM -------------------------------------------------------------------
    def quantize_rows(self, x: str, smooth: np.ndarray | None, nodes: list) -> tuple[str, str]:
        """(uint8 rows, per-row scale) for activation x, shared by every consumer of x."""
        key = x if smooth is None else f"{x}#smooth{id(smooth)}"
        if key in self.quantized_inputs:
            return self.quantized_inputs[key]
        src = x
        if smooth is not None:
            n, (src,) = self.node("Mul", [x, self.const("smooth_inv", (1.0 / smooth).astype(np.float32))])
            nodes.append(n)
        # Four ops per activation: amax = max|row|; q = round(127 * row / amax) + 128, where
        # QuantizeLinear's scalar scale 1/127 does the * 127 (and rounds half to even and
        # saturates in the same pass). The GEMM's scalar a_scale gives back the 1/127 and
        # one Mul by amax per output row finishes the dequantisation. No epsilon guard: an
        # all-zero row has amax 0, so whatever 0/0 quantises to is multiplied by 0 and the
        # row's output is exactly 0, which is its true value.
        n1, (absolute,) = self.node("Abs", [src])
        n2, (amax,) = self.node("ReduceMax", [absolute], axes=[-1], keepdims=1)
        n3, (unit,) = self.node("Div", [src, amax])  # in [-1, 1]
        inv127 = self.const("inv127", np.array(1.0 / 127.0, np.float32))
        n4, (q,) = self.node("QuantizeLinear", [unit, inv127, self.const("zp128", np.array(128, np.uint8))])
        nodes += [n1, n2, n3, n4]
        self.quantized_inputs[key] = (q, amax)
        return q, amax

    def int8_matmul(self, x: str, weight: np.ndarray, out: str, nodes: list, smooth: np.ndarray | None) -> None:
        w = weight.astype(np.float64)
        if smooth is not None:
            w = w * smooth[:, None]
        limit = self.settings.weight_max
        w_scale = np.abs(w).max(axis=0) / limit
        w_scale[w_scale == 0] = 1.0
        w_q = np.clip(np.rint(w / w_scale), -limit, limit).astype(np.int8)
        q, row_amax = self.quantize_rows(x, smooth, nodes)
        mm, (y,) = self.node(
            "MatMulIntegerToFloat",
            [
                q,
                self.const("w_int8", w_q),
                self.const("a_scale", np.array(1.0 / 127.0, np.float32)),
                self.const("w_scale", w_scale.astype(np.float32)),
                self.const("a_zp", np.array(128, np.uint8)),
            ],
            domain=MS,
        )
        from onnx import helper

        rescale = helper.make_node("Mul", [y, row_amax], [out], name=self.uid("rescale"))
        nodes += [mm, rescale]
        self.stats["int8_matmuls"] += 1

    def smooth_factors(self, x: str, weight: np.ndarray) -> np.ndarray | None:
        alpha = self.settings.smooth_alpha
        act = self.settings.activation_ranges.get(x)
        if alpha is None or act is None:
            return None
        w_max = np.abs(weight).max(axis=1)
        f = np.power(np.maximum(act, 1e-5), alpha) / np.power(np.maximum(w_max, 1e-5), 1 - alpha)
        return np.clip(f, 1e-2, 1e2).astype(np.float32)

    # -- node rewrites ------------------------------------------------------------------------
    def rewrite_matmul(self, node) -> list | None:
        weight = self.array(node.input[1])
        if weight is None or weight.ndim != 2 or node.name in self.settings.exclude:
            return None
        nodes: list = []
        smooth = self.smooth_factors(node.input[0], weight)
        self.int8_matmul(node.input[0], weight, node.output[0], nodes, smooth)
        return nodes

    def rewrite_attention(self, node) -> list | None:
        if not self.settings.quantize_attention or node.name in self.settings.exclude:
            return None
        weight, bias = self.array(node.input[1]), self.array(node.input[2])
        if weight is None or bias is None or len(node.input) > 4 and any(node.input[4:]):
            return None
        attrs = {a.name: a for a in node.attribute}
        from onnx import helper

        heads = helper.get_attribute_value(attrs["num_heads"])
        causal = "unidirectional" in attrs and helper.get_attribute_value(attrs["unidirectional"])
        if causal or "qkv_hidden_sizes" in attrs:
            return None
        hidden = weight.shape[1] // 3
        nodes: list = []
        qkv = self.uid("qkv")
        smooth = self.smooth_factors(node.input[0], weight)
        self.int8_matmul(node.input[0], weight, qkv, nodes, smooth)
        split, (q, k, v) = self.node("Split", [qkv, self.const("split", np.array([hidden] * 3, np.int64))], 3, axis=-1)
        mask = node.input[3] if len(node.input) > 3 else ""
        mha_attrs = {"num_heads": heads}
        if "mask_filter_value" in attrs:
            mha_attrs["mask_filter_value"] = helper.get_attribute_value(attrs["mask_filter_value"])
        mha = helper.make_node(
            "MultiHeadAttention",
            [q, k, v, self.const("qkv_bias", bias.astype(np.float32)), mask],
            [node.output[0]],
            name=self.uid("MultiHeadAttention"),
            domain=MS,
            **mha_attrs,
        )
        self.stats["attention_to_mha"] += 1
        return [*nodes, split, mha]

    def quantized_rows(self, table_name: str, op: str, extra: list[str], nodes: list, **attrs) -> str:
        """op(table)[rows] of an fp32 table stored as int8 with one scale per row: the same
        op (Gather by ids, or Slice) selects rows of both, then Cast * scale dequantises."""
        from onnx import TensorProto

        if table_name not in self.quantized_tables:
            table = self.array(table_name)
            row_scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
            row_scale[row_scale == 0] = 1.0
            t_q = np.clip(np.rint(table / row_scale), -127, 127).astype(np.int8)
            self.quantized_tables[table_name] = (
                self.const("emb_int8", t_q),
                self.const("emb_scale", row_scale.astype(np.float32)),
            )
            self.stats["int8_embedding_tables"] += 1
        table_q, table_scale = self.quantized_tables[table_name]
        g1, (rows,) = self.node(op, [table_q, *extra], **attrs)
        g2, (scales,) = self.node(op, [table_scale, *extra], **attrs)
        c, (rows_f,) = self.node("Cast", [rows], to=TensorProto.FLOAT)
        m, (out,) = self.node("Mul", [rows_f, scales])
        nodes += [g1, g2, c, m]
        return out

    def rewrite_embed_layernorm(self, node) -> list | None:
        from onnx import TensorProto, helper

        if not self.settings.quantize_embeddings or node.name in self.settings.exclude:
            return None
        ins = list(node.input) + [""] * (9 - len(node.input))
        ids, seg_ids, word, pos, seg, gamma, beta, mask, pos_ids = ins[:9]
        table = self.array(word)
        pos_table = self.array(pos)
        if table is None or pos_table is None:
            return None
        eps = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "epsilon"), 1e-12)
        nodes: list = []
        total = self.quantized_rows(word, "Gather", [ids], nodes, axis=0)
        if pos_ids:
            p = self.quantized_rows(pos, "Gather", [pos_ids], nodes, axis=0)
        else:  # positions 0 .. S-1: the first S rows of the table
            shape, (shp,) = self.node("Shape", [ids])
            gl, (seq,) = self.node("Gather", [shp, self.const("one", np.array([1], np.int64))], axis=0)
            nodes += [shape, gl]
            starts, axes = self.const("zero", np.array([0], np.int64)), self.const("ax", np.array([0], np.int64))
            p = self.quantized_rows(pos, "Slice", [starts, seq, axes], nodes)
        a, (total2,) = self.node("Add", [total, p])
        nodes.append(a)
        total = total2
        if seg_ids and seg:
            gs, (s,) = self.node("Gather", [seg, seg_ids], axis=0)
            a2, (total3,) = self.node("Add", [total, s])
            nodes += [gs, a2]
            total = total3
        ln = helper.make_node(
            "LayerNormalization",
            [total, gamma, beta],
            [node.output[0]],
            name=self.uid("LayerNorm"),
            axis=-1,
            epsilon=eps,
        )
        nodes.append(ln)
        if len(node.output) > 1 and node.output[1]:
            if mask:
                rs = helper.make_node(
                    "ReduceSum",
                    [mask, self.const("axis1", np.array([1], np.int64))],
                    [self.uid("mask_sum")],
                    name=self.uid("ReduceSum"),
                    keepdims=0,
                )
                cast = helper.make_node(
                    "Cast", [rs.output[0]], [node.output[1]], name=self.uid("Cast"), to=TensorProto.INT32
                )
                nodes += [rs, cast]
            else:
                return None
        if len(node.output) > 2 and node.output[2] and self.uses.get(node.output[2]):
            return None
        return nodes

    def rewrite_gather(self, node) -> list | None:
        """An unfused embedding lookup: Gather(table [V, D], ids) on a word or position table."""
        table = self.array(node.input[0])
        if (
            not self.settings.quantize_embeddings
            or table is None
            or table.ndim != 2
            or table.shape[0] < 256
            or node.name in self.settings.exclude
        ):
            return None
        nodes: list = []
        out = self.quantized_rows(node.input[0], "Gather", [node.input[1]], nodes, axis=0)
        from onnx import helper

        nodes.append(helper.make_node("Identity", [out], [node.output[0]], name=self.uid("Identity")))
        return nodes

    def rewrite_gelu(self, node) -> list | None:
        """BiasGelu(x, bias) / Gelu(x) -> FastGelu(x[, bias]): the tanh form of GELU."""
        if not self.settings.fast_gelu or node.name in self.settings.exclude:
            return None
        from onnx import helper

        self.stats["fast_gelu"] += 1
        fast = helper.make_node("FastGelu", list(node.input), list(node.output), name=self.uid("FastGelu"), domain=MS)
        return [fast]

    def run(self) -> None:
        drop_dead_nodes(self.graph)  # the python fusions leave some behind
        handlers = {
            ("", "MatMul"): self.rewrite_matmul,
            (MS, "Attention"): self.rewrite_attention,
            (MS, "EmbedLayerNormalization"): self.rewrite_embed_layernorm,
            ("", "Gather"): self.rewrite_gather,
            (MS, "BiasGelu"): self.rewrite_gelu,
            (MS, "Gelu"): self.rewrite_gelu,
            ("", "Gelu"): self.rewrite_gelu,
        }
        new_nodes = []
        for node in self.graph.node:
            handler = handlers.get((node.domain or "", node.op_type))
            replacement = handler(node) if handler else None
            if replacement is None:
                new_nodes.append(node)
            else:
                new_nodes += replacement
        del self.graph.node[:]
        self.graph.node.extend(new_nodes)
        used = {name for n in self.graph.node for name in n.input}
        kept = [t for t in self.graph.initializer if t.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept + [t for t in self.new_inits if t.name in used])
        if not any(op.domain == MS for op in self.model.opset_import):
            from onnx import helper

            self.model.opset_import.append(helper.make_opsetid(MS, 1))


def quantize_per_token(src: Path, dst: Path, settings: PerTokenSettings | None = None) -> dict:
    """Rewrite the fused fp32 graph at `src` into the per-token int8 graph at `dst`."""
    import onnx

    model = onnx.load(str(src))
    rewriter = _Rewriter(model, settings or PerTokenSettings())
    rewriter.run()
    onnx.save(model, str(dst))
    return dict(rewriter.stats)


def activation_ranges(fused: Path, encoder, texts: list[str], batch_size: int = 32) -> dict:
    """Per-channel max|x| of every GEMM input activation over real (unpadded) tokens of `texts`,
    tokenised and padded by the runtime's own encoder (emotion_onnx.tokenization.TextEncoder)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(fused))
    inits = {t.name for t in model.graph.initializer}
    targets = sorted(
        {
            n.input[0]
            for n in model.graph.node
            if (n.op_type == "MatMul" and n.input[1] in inits) or (n.op_type == "Attention" and n.domain == MS)
        }
    )
    existing = {o.name for o in model.graph.output}
    for name in targets:
        if name not in existing:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    ranges: dict[str, np.ndarray] = {}
    for start in range(0, len(texts), batch_size):
        encodings = encoder.encode(texts[start : start + batch_size])
        feeds = encoder.pad_ids([e.ids for e in encodings], [e.type_ids for e in encodings])
        mask = feeds["attention_mask"].astype(bool)
        outs = session.run(targets, feeds)
        for name, value in zip(targets, outs):
            rows = value[mask] if value.ndim == 3 else value
            m = np.abs(rows).max(axis=0)
            ranges[name] = m if name not in ranges else np.maximum(ranges[name], m)
    return ranges
