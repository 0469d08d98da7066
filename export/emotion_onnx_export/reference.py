"""PyTorch reference logits: what every exported variant is validated against."""

from __future__ import annotations

import sys

import numpy as np

from .checkpoint import Checkpoint


def reference_logits(ckpt: Checkpoint, texts: list[str], max_length: int, batch_size: int = 64) -> np.ndarray:
    """Logits of the PyTorch model, tokenised by the checkpoint's own fast tokenizer."""
    import torch
    from tqdm import tqdm

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.empty((len(texts), ckpt.model.config.num_labels), dtype=np.float32)
    want = {"input_ids", "attention_mask"} | ({"token_type_ids"} if ckpt.arch.uses_token_type_ids else set())
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with torch.inference_mode():
        for batch in tqdm(batches, desc="pytorch reference", unit="batch", disable=not sys.stderr.isatty()):
            enc = ckpt.tokenizer(
                [texts[i] for i in batch],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            feeds = {k: v for k, v in enc.items() if k in want}
            out[batch] = ckpt.model(**feeds).logits.float().numpy()
    return out
