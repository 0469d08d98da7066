"""Compact checkpoints that fine-tuning can start from, and the --base names that find them.

    emotion-onnx finetune ... --base emotion-minilm-l6     # the shipped emotion model's weights
    emotion-onnx finetune ... --base minilm-l6             # all-MiniLM-L6-v2, the encoder it was trained from

    python -m emotion_onnx_export.bases RUN/checkpoint --name emotion-minilm-l6   # a release: write the base
    python -m emotion_onnx_export.bases RUN/checkpoint --out my-base.safetensors  # or any file, for --base FILE

A compact checkpoint is one safetensors file: every 2-D weight as int8 with one scale per row
(the rows of a Linear weight are its output channels; of an embedding table, its tokens), every
other tensor as float32, and the model's config and label order as metadata. It is about a
quarter of the float32 checkpoint, and loading it dequantises the weights (a relative error of
about 0.4 % per weight, far below what a few epochs of fine-tuning move them). The tokenizer is the
one the runtime ships with the embedded model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BASES_DIR = Path(__file__).resolve().parent / "bases"


def compact_path(name: str) -> Path | None:
    """The compact checkpoint a --base name refers to, if it is one of ours."""
    path = BASES_DIR / f"{name}.safetensors"
    return path if path.is_file() else None


def save_compact(model, path: Path) -> Path:
    """Write `model`'s weights as a compact checkpoint (see the module docstring)."""
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for name, value in model.state_dict().items():
        value = value.detach().cpu()
        if value.is_floating_point() and value.ndim == 2:
            scale = value.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
            tensors[name] = torch.round(value / scale).clamp(-127, 127).to(torch.int8)
            tensors[f"{name}::scale"] = scale.to(torch.float32)
        else:
            tensors[name] = value.to(torch.float32) if value.is_floating_point() else value
    metadata = {"config": model.config.to_json_string(), "format": "emotion-onnx compact checkpoint, version 1"}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


def load_compact(path: Path, labels: list[str] | None = None, seed: int = 0):
    """(model, tokenizer) from a compact checkpoint. With `labels` that are not the checkpoint's own
    (a new taxonomy), the encoder and the head's first layer are kept and the last layer is new."""
    import torch
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForSequenceClassification

    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata()
        raw = {k: fh.get_tensor(k) for k in fh.keys()}
    config = AutoConfig.for_model(**json.loads(metadata["config"]))
    state = {}
    for name, value in raw.items():
        if name.endswith("::scale"):
            continue
        scale = raw.get(f"{name}::scale")
        state[name] = value.to(torch.float32) * scale if scale is not None else value
    own = [config.id2label[i] for i in range(config.num_labels)]
    if labels is not None and labels != own:
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {n: i for i, n in enumerate(labels)}
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("classifier.") for k in missing):
        raise RuntimeError(f"{path.name} does not fit its config: missing {missing}, unexpected {unexpected}")
    return model.eval(), shipped_tokenizer()


def shipped_tokenizer():
    """DistilBERT's fast tokenizer on the embedded model's tokenizer.json (no token_type_ids)."""
    from transformers import DistilBertTokenizerFast

    from emotion_onnx import manifest as manifest_io
    from emotion_onnx.classifier import default_model_dir

    m = manifest_io.load(default_model_dir())
    return DistilBertTokenizerFast(
        tokenizer_file=str(m.path(m.tokenizer.ref)), do_lower_case=m.tokenizer.lowercase, model_max_length=512
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a fine-tuned checkpoint directory (RUN/checkpoint)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--name", help="write the packaged base of this name (what --base NAME loads)")
    where.add_argument("--out", type=Path, help="write this file instead")
    args = p.parse_args(argv)
    if not (args.checkpoint / "config.json").is_file():
        print(f"error: {args.checkpoint} is not a checkpoint directory (no config.json)", file=sys.stderr)
        return 2
    if args.name is not None and ("/" in args.name or args.name in ("", ".", "..")):
        print(f"error: --name must be a plain name, got {args.name!r}", file=sys.stderr)
        return 2
    from transformers import AutoModelForSequenceClassification

    path = args.out or BASES_DIR / f"{args.name}.safetensors"
    save_compact(AutoModelForSequenceClassification.from_pretrained(args.checkpoint), path)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
