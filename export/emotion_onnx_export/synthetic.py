"""Random-weight sequence-classification checkpoints with real tokenizers.

These stand in for hub checkpoints where the hub cannot be reached: the test suite
and the benchmarks export them through exactly the code path a hub id takes.

    python -m emotion_onnx.export.synthetic distilbert-base --vocab bert-base-uncased-vocab.txt --out ckpt/
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

EMOTION_LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]

# name -> (model_type, config overrides)
SHAPES = {
    "distilbert-tiny": ("distilbert", dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64)),
    "distilbert-base": ("distilbert", dict(dim=768, n_layers=6, n_heads=12, hidden_dim=3072)),
    "bert-tiny": ("bert", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)),
    "roberta-tiny": ("roberta", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)),
}


def _labels(labels: list[str]) -> dict:
    return {"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}


def wordpiece_tokenizer(model_type: str, vocab_file: Path):
    from transformers import BertTokenizerFast, DistilBertTokenizerFast

    # DistilBERT's tokenizer must not emit token_type_ids (the pipeline would reject them).
    cls = DistilBertTokenizerFast if model_type == "distilbert" else BertTokenizerFast
    return cls(vocab_file=str(vocab_file), do_lower_case=True, model_max_length=512)


def bpe_tokenizer(corpus: Iterable[str], vocab_size: int = 2000):
    """A small byte-level BPE tokenizer trained with `tokenizers`, wrapped for RoBERTa."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import RobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus, vocab_size=vocab_size, min_frequency=2, special_tokens=specials, show_progress=False
    )
    bpe._tokenizer.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
    return RobertaTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=512,
    )


def build_checkpoint(
    shape: str,
    out: Path,
    *,
    vocab_file: Path | None = None,
    corpus: Iterable[str] | None = None,
    labels: list[str] = EMOTION_LABELS,
    seed: int = 0,
    head_scale: float = 1.0,
) -> Path:
    """Save a randomly initialised *ForSequenceClassification checkpoint with its tokenizer.

    head_scale multiplies the classifier weights, so that random logits are spread far
    enough apart for top-1 comparisons to mean something.
    """
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    model_type, dims = SHAPES[shape]
    if model_type == "roberta":
        if corpus is None:
            raise ValueError("a RoBERTa checkpoint needs a corpus to train its BPE tokenizer")
        tokenizer = bpe_tokenizer(corpus)
        extra = dict(
            vocab_size=len(tokenizer),
            max_position_embeddings=514,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            type_vocab_size=1,
        )
    else:
        if vocab_file is None:
            raise ValueError(f"a {model_type} checkpoint needs the WordPiece vocab file")
        tokenizer = wordpiece_tokenizer(model_type, vocab_file)
        extra = dict(vocab_size=tokenizer.vocab_size, max_position_embeddings=512)
    config = AutoConfig.for_model(model_type, **dims, **extra, num_labels=len(labels), **_labels(labels))
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    if head_scale != 1.0:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.startswith("classifier") and name.endswith("weight"):
                    param.mul_(head_scale)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build a random-weight checkpoint with a real tokenizer.")
    p.add_argument("shape", choices=sorted(SHAPES))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--vocab", type=Path, help="WordPiece vocab.txt (BERT/DistilBERT)")
    p.add_argument("--corpus", type=Path, help="text file to train the BPE tokenizer on (RoBERTa)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--head-scale", type=float, default=1.0)
    args = p.parse_args(argv)
    corpus = args.corpus.read_text(encoding="utf-8").splitlines() if args.corpus else None
    build_checkpoint(
        args.shape, args.out, vocab_file=args.vocab, corpus=corpus, seed=args.seed, head_scale=args.head_scale
    )
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
