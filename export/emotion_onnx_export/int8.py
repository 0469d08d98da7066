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
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MS = "com.microsoft"
SCHEMES = ("static", "per-token", "mixed")
# "mixed": static scales for layer-norm outputs (they tolerate one scale per tensor), per-token rows for
# the attention and feed-forward activations, whose outliers a single static scale cannot hold
NORM_OPS = {"SkipLayerNormalization", "EmbedLayerNormalization", "LayerNormalization"}
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
    def __init__(self, model, settings: Int8Settings):
        from onnx import numpy_helper

        self.onnx_np = numpy_helper
        self.model = model
        self.graph = model.graph
        self.settings = settings
        self.inits = {t.name: t for t in self.graph.initializer}
        self.new_inits: list = []
        self.counter = 0
        self.uses = defaultdict(int)
        self.producer: dict[str, str] = {}
        for node in self.graph.node:
            for name in node.input:
                self.uses[name] += 1
            for name in node.output:
                self.producer[name] = node.op_type
        self.quantized_inputs: dict[str, tuple[str, str | None, str, str]] = {}
        self.quantized_tables: dict[str, tuple[str, str]] = {}
        self.bias_free_gemms: dict[str, object] = {}  # output -> static GEMM node that could take a bias
        self.stats = defaultdict(int)

    # -- helpers ---------------------------------------------------------------------------
    def uid(self, base: str) -> str:
        self.counter += 1
        return f"{base}_q{self.counter}"

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

    # -- activations -------------------------------------------------------------------------
    def quantize_activation(self, x: str, smooth: np.ndarray | None, nodes: list) -> tuple[str, str | None, str, str]:
        """(uint8 tensor, per-row rescale or None, scale, zero point) of activation x, shared by
        every consumer of x (the GEMM's a_scale and a_zero_point are the returned scale and zp)."""
        key = x if smooth is None else f"{x}#smooth{id(smooth)}"
        if key in self.quantized_inputs:
            return self.quantized_inputs[key]
        src = x
        if smooth is not None:  # SmoothQuant: x / f here, W * f in the GEMM's weight
            n, (src,) = self.node("Mul", [x, self.const("smooth_inv", (1.0 / smooth).astype(np.float32))])
            nodes.append(n)
        if self.scheme_of(x) == "static":
            result = self._static(x, src, smooth, nodes)
        else:
            result = self._per_token(src, nodes)
        self.quantized_inputs[key] = result
        return result

    def is_norm_output(self, x: str) -> bool:
        return self.producer.get(x) in NORM_OPS

    def scheme_of(self, x: str) -> str:
        if self.settings.scheme == "mixed":
            chosen = self.settings.per_token_inputs
            per_token = not self.is_norm_output(x) if chosen is None else x in chosen
            return "per-token" if per_token else "static"
        return self.settings.scheme

    def _static(self, x: str, src: str, smooth: np.ndarray | None, nodes: list) -> tuple[str, None, str, str]:
        """x's calibrated range (divided by the smoothing factors, as src is) sets one scale."""
        stats = self.settings.activation_stats.get(x)
        if stats is None:
            raise ValueError(f"static int8 needs calibration statistics for activation {x!r}")
        lo, hi = stats.range(self.settings.percentile, smooth)
        lo, hi = min(lo, 0.0), max(hi, 0.0)  # zero must be exactly representable (padding, ReLU)
        scale = max(hi - lo, 1e-8) / 255.0
        zp = int(np.clip(np.rint(-lo / scale), 0, 255))
        s_name = self.const("a_scale", np.array(scale, np.float32))
        zp_name = self.const("a_zp", np.array(zp, np.uint8))
        n, (q,) = self.node("QuantizeLinear", [src, s_name, zp_name])
        nodes.append(n)
        self.stats["static_activations"] += 1
        return q, None, s_name, zp_name

    def _per_token(self, src: str, nodes: list) -> tuple[str, str, str, str]:
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
        zp128 = self.const("zp128", np.array(128, np.uint8))
        n4, (q,) = self.node("QuantizeLinear", [unit, inv127, zp128])
        nodes += [n1, n2, n3, n4]
        return q, amax, inv127, zp128

    # -- the GEMM ------------------------------------------------------------------------------
    def int8_matmul(
        self, x: str, weight: np.ndarray, out: str, nodes: list, smooth: np.ndarray | None, bias: np.ndarray | None
    ) -> bool:
        """x @ weight (+ bias) into `out`; returns whether the bias was fused into the GEMM."""
        w = weight.astype(np.float64)
        if smooth is not None:
            w = w * smooth[:, None]
        limit = self.settings.weight_max
        w_scale = np.abs(w).max(axis=0) / limit
        w_scale[w_scale == 0] = 1.0
        w_q = np.clip(np.rint(w / w_scale), -limit, limit).astype(np.int8)
        q, row_scale, a_scale, a_zp = self.quantize_activation(x, smooth, nodes)
        inputs = [q, self.const("w_int8", w_q), a_scale, self.const("w_scale", w_scale.astype(np.float32)), a_zp]
        fuse_bias = bias is not None and row_scale is None  # a per-row rescale comes after the GEMM
        if fuse_bias:
            inputs += ["", self.const("bias", bias.astype(np.float32))]
        from onnx import helper

        if row_scale is None:
            gemm = helper.make_node("MatMulIntegerToFloat", inputs, [out], name=self.uid("gemm"), domain=MS)
            nodes.append(gemm)
            if not fuse_bias:
                self.bias_free_gemms[out] = gemm
        else:
            mm, (y,) = self.node("MatMulIntegerToFloat", inputs, domain=MS)
            nodes += [mm, helper.make_node("Mul", [y, row_scale], [out], name=self.uid("rescale"))]
        self.stats["int8_matmuls"] += 1
        return fuse_bias

    def smooth_factors(self, x: str, weight: np.ndarray) -> np.ndarray | None:
        alpha = self.settings.smooth_alpha
        stats = self.settings.activation_stats.get(x)
        if alpha is None or stats is None or (self.scheme_of(x) == "static" and not self.is_norm_output(x)):
            return None
        act = np.maximum(np.abs(stats.channel_min), np.abs(stats.channel_max))
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
        self.int8_matmul(node.input[0], weight, node.output[0], nodes, smooth, None)
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
        fused_bias = self.int8_matmul(node.input[0], weight, qkv, nodes, smooth, bias)
        split, (q, k, v) = self.node("Split", [qkv, self.const("split", np.array([hidden] * 3, np.int64))], 3, axis=-1)
        mask = node.input[3] if len(node.input) > 3 else ""
        mha_attrs = {"num_heads": heads}
        if "mask_filter_value" in attrs:
            mha_attrs["mask_filter_value"] = helper.get_attribute_value(attrs["mask_filter_value"])
        mha_bias = "" if fused_bias else self.const("qkv_bias", bias.astype(np.float32))
        mha = helper.make_node(
            "MultiHeadAttention",
            [q, k, v, mha_bias, mask],
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
        self.fuse_skip_layer_norm_biases()
        used = {name for n in self.graph.node for name in n.input}
        kept = [t for t in self.graph.initializer if t.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept + [t for t in self.new_inits if t.name in used])
        if not any(op.domain == MS for op in self.model.opset_import):
            from onnx import helper

            self.model.opset_import.append(helper.make_opsetid(MS, 1))

    def fuse_skip_layer_norm_biases(self) -> None:
        """Move the bias of a SkipLayerNormalization into the static GEMM that alone feeds it: the
        GEMM adds it in its own pass, and the layer norm (fused or not) has one add less."""
        consumers = defaultdict(int)
        for node in self.graph.node:
            for name in node.input:
                consumers[name] += 1
        for node in self.graph.node:
            if node.op_type != "SkipLayerNormalization" or len(node.input) < 5 or not node.input[4]:
                continue
            bias = self.array(node.input[4])
            gemm = self.bias_free_gemms.get(node.input[0])
            if bias is None or gemm is None or consumers[node.input[0]] != 1:
                continue
            gemm.input.extend([""] * (7 - len(gemm.input)))
            gemm.input[6] = self.const("bias", bias.astype(np.float32))
            node.input[4] = ""
            self.stats["biases_fused_into_gemm"] += 1


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
    rewriter = _Rewriter(model, settings or Int8Settings())
    rewriter.run()
    onnx.save(model, str(dst))
    return dict(rewriter.stats)


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
