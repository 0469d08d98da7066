"""ONNX export through optimum, with a second graph output: the embedding the head reads."""

from __future__ import annotations

import inspect
import types
from pathlib import Path

from .checkpoint import Checkpoint

BATCH, SEQUENCE = "batch", "sequence"
OPSET = 17


def head_linear(model, dotted: str):
    module = model
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def _with_embedding_output(ckpt: Checkpoint):
    """Make the model's forward return {"logits", "embedding"}.

    The embedding is the input of the final Linear of the classification head
    (DistilBERT: ReLU(pre_classifier(h[CLS])); BERT: the pooler output; RoBERTa:
    tanh(dense(h[<s>]))), captured by a forward pre-hook so one pass yields both.
    """
    model = ckpt.model
    captured = {}
    head = head_linear(model, ckpt.arch.head_linear)
    handle = head.register_forward_pre_hook(lambda _m, args: captured.__setitem__("embedding", args[0]))
    original = model.forward

    def forward(self, *args, **kwargs):
        out = original(*args, **kwargs)
        return {"logits": out["logits"], "embedding": captured.pop("embedding")}

    # optimum inspects the signature; no __wrapped__, or optimum would unwrap past us
    forward.__signature__ = inspect.signature(type(model).forward)
    model.forward = types.MethodType(forward, model)

    def restore():
        handle.remove()
        del model.forward

    return restore


def _onnx_config(ckpt: Checkpoint):
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX configs)
    from optimum.exporters.tasks import TasksManager

    constructor = TasksManager.get_exporter_config_constructor(
        exporter="onnx", model=ckpt.model, task="text-classification", library_name="transformers"
    )
    base = constructor(ckpt.model.config)
    base_cls = type(base)
    axes = {0: BATCH, 1: SEQUENCE}
    input_names = ["input_ids", "attention_mask"] + (["token_type_ids"] if ckpt.arch.uses_token_type_ids else [])

    class EmotionOnnxConfig(base_cls):
        @property
        def inputs(self):
            return {name: dict(axes) for name in input_names}

        @property
        def outputs(self):
            return {"logits": {0: BATCH}, "embedding": {0: BATCH}}

    return EmotionOnnxConfig(ckpt.model.config, task="text-classification"), input_names


def first_token_last_layer_supported(ckpt: Checkpoint) -> bool:
    return ckpt.arch.model_type == "distilbert"


def _first_token_last_layer(ckpt: Checkpoint):
    """Make DistilBERT's last transformer block compute only the first token's row.

    The classification head and the embedding read only h[:, 0] of the last hidden state, so in
    the last block only the first token needs a query, an attention output, a residual, the
    feed-forward network and the layer norms; the keys and values still come from every token.
    The logits are the same (the export gate checks them against the full PyTorch model), and
    the last block's per-token work for the other tokens is gone."""
    transformer = ckpt.model.distilbert.transformer
    last = transformer.layer[-1]
    original = transformer.forward

    def forward(self, x, attn_mask=None, head_mask=None, output_attentions=False, output_hidden_states=False,
                return_dict=None):  # fmt: skip
        from transformers.modeling_outputs import BaseModelOutput

        hidden = x
        for layer in self.layer[:-1]:
            hidden = layer(hidden, attn_mask)[-1]
        query = hidden[:, :1]
        # the expanded (batch, 1, query, key) mask keeps its first query row
        mask = attn_mask[:, :, :1, :] if attn_mask is not None and attn_mask.dim() == 4 else attn_mask
        attended = last.attention(query=query, key=hidden, value=hidden, mask=mask)[0]
        attended = last.sa_layer_norm(attended + query)
        return BaseModelOutput(last_hidden_state=last.output_layer_norm(last.ffn(attended) + attended))

    forward.__signature__ = inspect.signature(original)
    transformer.forward = types.MethodType(forward, transformer)

    def restore():
        del transformer.forward

    return restore


def export_onnx(ckpt: Checkpoint, path: Path, opset: int = OPSET, first_token_last_layer: bool = True) -> list[str]:
    """Write the fp32 graph to `path`; return its input names. With first_token_last_layer (and an
    architecture that supports it), the last transformer block computes only the first token."""
    from optimum.exporters.onnx.convert import export_pytorch

    config, input_names = _onnx_config(ckpt)
    restores = [_with_embedding_output(ckpt)]
    if first_token_last_layer and first_token_last_layer_supported(ckpt):
        restores.append(_first_token_last_layer(ckpt))
    try:
        export_pytorch(ckpt.model, config, opset=opset, output=path)
    finally:
        for restore in reversed(restores):
            restore()
    return input_names
