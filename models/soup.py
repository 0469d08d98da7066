"""Average the weights of finished fine-tuning runs (a uniform "model soup") into one run directory.

    python models/soup.py build/runs/s42 build/runs/s43 build/runs/s44 --out build/runs/soup

Each RUN is the output of `emotion-onnx finetune ... --test TEST` from the same starting weights
(--base) with the same validation and test texts, differing in --seed or in the training data's
mix (one source given twice, say); only runs that start alike land in one basin, where their mean
is a model at least as good as its members (Wortsman et al. 2022 average runs that differ in
hyperparameters and data augmentation alike). The soup is one model of the same size, so
it ships like any run: --out gets what `emotion-onnx finetune` writes (checkpoint/, metrics.json,
test logits, plots), and `emotion-onnx export OUT/checkpoint --out OUT/onnx`, then
`python models/build_card.py OUT`, take it from there. Membership is fixed by the command line:
no split chooses it, so the test split stays unseen.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

MEMBER_KEYS = ("best_weights", "best_epoch", "validation", "test", "train_seconds")


def member_name(run: Path, metrics: dict) -> str:
    """How a plot and the card tell the members apart: the seed, and the run when seeds repeat."""
    return f"{run.name} (seed {metrics['config']['seed']})"


def read_runs(runs: list[Path], same_base: bool = False) -> list[dict]:
    """Each run's metrics.json, checked to share labels, starting weights and evaluation texts."""
    metrics = []
    for run in runs:
        path = run / "metrics.json"
        if not path.is_file():
            raise SystemExit(f"{run}: no metrics.json (not the output of `emotion-onnx finetune`)")
        metrics.append(json.loads(path.read_text()))
    first, cfg = metrics[0], metrics[0]["config"]
    for run, m in zip(runs[1:], metrics[1:]):
        if m["labels"] != first["labels"]:
            raise SystemExit(f"{run}: labels {m['labels']} differ from {first['labels']}")
        keys = ("validation", "test", "max_length") if same_base else ("base", "validation", "test", "max_length")
        differ = [k for k in keys if m["config"].get(k) != cfg.get(k)]
        if differ:
            raise SystemExit(f"{run}: its {', '.join(differ)} differ from {runs[0]}'s; a soup needs one start "
                             "and one set of evaluation texts")  # fmt: skip
        if m.get("neutral_offset") or first.get("neutral_offset"):
            raise SystemExit(f"{run}: a neutral offset is folded into a member; average the runs before "
                             "`emotion_onnx_export.neutral_offset` and fit it once on the soup")  # fmt: skip
    if not cfg.get("test"):
        raise SystemExit(f"{runs[0]}: trained without --test; the soup is scored on the same test split")
    return metrics


def soup_config(runs: list[Path], metrics: list[dict], out: Path) -> dict:
    """The members' shared config, with every member's seed, training data and directory."""
    trains = [m["config"].get("train") for m in metrics]
    return {
        **metrics[0]["config"],
        "seed": [m["config"]["seed"] for m in metrics],
        # one training set, or each member's when their mixes differ
        **({} if all(t == trains[0] for t in trains) else {"train": trains[0], "member_train": trains}),
        "out": str(out),
        "soup_of": [str(r) for r in runs],
    }


def member_curves(runs: list[Path], metrics: list[dict], path: Path) -> None:
    """Validation macro-F1 and loss by epoch, one line per member."""
    from emotion_onnx_export.plots import _plt

    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for run, m in zip(runs, metrics):
        epochs = [e["epoch"] for e in m["epochs"]]
        label = member_name(run, m)
        left.plot(epochs, [e["val_macro_f1"] for e in m["epochs"]], marker="o", label=label)
        right.plot(epochs, [e["val_loss"] for e in m["epochs"]], marker="o", label=label)
    left.set(xlabel="epoch", ylabel="validation macro-F1", title="members")
    right.set(xlabel="epoch", ylabel="validation loss", title="members")
    left.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--force", action="store_true", help="replace --out")
    p.add_argument(
        "--same-base",
        action="store_true",
        help="the members name their --base differently but started from the same weights (a base name "
        "as it resolved then, and the file those weights were saved to)",
    )
    args = p.parse_args(argv)
    if len(args.runs) < 2:
        p.error("a soup needs two runs or more")
    if args.out.exists() and not args.force:
        p.error(f"{args.out} exists (--force replaces it)")

    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from emotion_onnx_export import plots
    from emotion_onnx_export.data import read_labelled
    from emotion_onnx_export.finetune import EncodedTexts, average_states, predict_logits
    from emotion_onnx_export.metrics import summary

    metrics = read_runs(args.runs, args.same_base)
    cfg = soup_config(args.runs, metrics, args.out)
    if args.same_base:
        cfg["member_base"] = [m["config"]["base"] for m in metrics]
    labels = metrics[0]["labels"]
    first = args.runs[0] / "checkpoint"
    model = AutoModelForSequenceClassification.from_pretrained(first).eval()
    tokenizer = AutoTokenizer.from_pretrained(first)
    soup = average_states([load_file(r / "checkpoint" / "model.safetensors") for r in args.runs])
    model.load_state_dict({**model.state_dict(), **soup})

    ids = {n: i for i, n in enumerate(labels)}
    scored = {}
    for split in ("validation", "test"):
        data = read_labelled(Path(cfg[split]))
        y = np.array([ids[v] if isinstance(v, str) else v for v in data.labels])
        logits = predict_logits(model, EncodedTexts(tokenizer, data.texts, cfg["max_length"]))
        scored[split] = (y, logits, summary(y, logits.argmax(1), labels))

    tmp = args.out.with_name(f".{args.out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "checkpoint").mkdir(parents=True)
    model.save_pretrained(tmp / "checkpoint")
    tokenizer.save_pretrained(tmp / "checkpoint")
    y_test, test_logits, test_summary = scored["test"]
    np.save(tmp / "test_logits.npy", test_logits.astype(np.float32))
    np.save(tmp / "test_labels.npy", y_test.astype(np.int8))
    out = {
        "config": cfg,
        "labels": labels,
        # every member's epochs, each marked with its seed (the card's training-curves table)
        "epochs": [
            {**e, "seed": m["config"]["seed"], "member": r.name}
            for r, m in zip(args.runs, metrics)
            for e in m["epochs"]
        ],
        "best_epoch": None,
        "best_weights": f"the uniform average of {len(metrics)} runs (seeds "
        + ", ".join(str(m["config"]["seed"]) for m in metrics)
        + "), each at its best weights by validation macro-F1",
        "members": [
            {
                "run": str(r),
                "seed": m["config"]["seed"],
                "train": m["config"].get("train"),
                **{k: m[k] for k in MEMBER_KEYS},
            }
            for r, m in zip(args.runs, metrics)
        ],
        "class_weights": metrics[0].get("class_weights"),
        "train_seconds": round(sum(m["train_seconds"] for m in metrics), 1),
        "validation": scored["validation"][2],
        "test": test_summary,
    }
    member_curves(args.runs, metrics, tmp / "training_curves.png")
    for split, name, title in (("validation", "confusion_matrix.png", "validation"),
                               ("test", "confusion_matrix_test.png", "test split")):  # fmt: skip
        plots.confusion_matrix(np.array(scored[split][2]["confusion_matrix"]), labels, tmp / name, f"{title} (soup)")
    (tmp / "metrics.json").write_text(json.dumps(out, indent=2) + "\n")
    if args.out.exists():
        shutil.rmtree(args.out)
    tmp.rename(args.out)
    for r, m in zip(args.runs, metrics):
        print(f"{r}: validation {m['validation']['macro_f1']:.4f} macro-F1, test {m['test']['accuracy']:.4f}")
    print(f"soup: validation {out['validation']['macro_f1']:.4f} macro-F1, test {test_summary['accuracy']:.4f} "
          f"accuracy, {test_summary['macro_f1']:.4f} macro-F1 -> {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
