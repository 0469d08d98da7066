"""Adapting with a few hundred examples: learning curves of `emotion-onnx finetune` at 100, 300
and 1,000 training examples, on two tasks, from two starting points.

    python benchmarks/adaptation.py [--sizes 100 300 1000] [--bases minilm-l6 emotion-minilm-l6]

Tasks:
- taxonomy: a new label set made by merging the emotion labels (negative = sadness, anger, fear;
  positive = joy, love; surprise). Training texts are drawn from the emotion train split,
  model selection uses 400 validation texts, and the score is on the whole test split.
- domain: the six emotions on everyday writing. Training texts are drawn from the generated
  everyday pool (models/realworld/everyday_pool.py), selection uses models/realworld/dev.jsonl,
  and the score is on the hand-written models/realworld/eval.jsonl.
- goemotions: the six emotions on Reddit comments. Training texts are drawn from GoEmotions train
  (the comments whose one label is one of the six), selection uses 400 comments of its held-out
  slice (emotion_onnx_export.corpora), and the score is on the GoEmotions dev comments of the six.

Starting points: minilm-l6 (all-MiniLM-L6-v2, the encoder the shipped model was trained from) and
emotion-minilm-l6 (the shipped model's weights). For reference, the shipped model as it is (its
six labels summed into the merged ones for the taxonomy task) is scored at zero examples.

Every run is one `emotion-onnx finetune` command (seeded; 5 epochs by default) on 2 CPU threads;
the training minutes are recorded. Results: benchmarks/results/adaptation.{json,md,png}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, RESULTS, arguments, model_or_default, on_machine, pyplot, save_figure, write_results

REALWORLD = REPO / "models" / "realworld"
MERGED = {"sadness": "negative", "anger": "negative", "fear": "negative", "joy": "positive", "love": "positive",
          "surprise": "surprise"}  # fmt: skip
BASE_NAMES = {"minilm-l6": "all-MiniLM-L6-v2 (base encoder)", "emotion-minilm-l6": "shipped emotion model"}


def _read(path: Path) -> list[dict]:
    """A labelled file's rows as {"text", "label"} with the label's name (the project's one reader)."""
    from emotion_onnx_export.data import read_labelled

    data = read_labelled(path)
    return [{"text": t, "label": name} for t, name in zip(data.texts, data.names or data.labels)]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps({"text": r["text"], "label": r["label"]}) + "\n" for r in rows))
    return path


def stratified(rows: list[dict], n: int, seed: int) -> list[dict]:
    """n rows drawn without replacement, each label in proportion to its share (at least two each),
    in a seeded order."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_label.setdefault(r["label"], []).append(i)
    quota = {k: max(2, round(n * len(v) / len(rows))) for k, v in by_label.items()}
    while sum(quota.values()) > n:  # rounding up: trim the largest
        quota[max(quota, key=quota.get)] -= 1
    while sum(quota.values()) < n:
        quota[max(by_label, key=lambda k: len(by_label[k]) - quota[k])] += 1
    picked = [j for k, idx in by_label.items() for j in rng.choice(idx, size=min(quota[k], len(idx)), replace=False)]
    return [rows[j] for j in rng.permutation(picked)]


def tasks(data_dir: Path, pool: Path, quick: bool) -> dict:
    """Each task's training pool, selection set and evaluation set, as label-named rows."""

    def emotion(split):
        return [{"text": r["text"], "label": MERGED[r["label"]]} for r in _read(data_dir / f"{split}.jsonl")]

    test = emotion("test")
    evaluation = _read(REALWORLD / "eval.jsonl")
    from emotion_onnx_export import corpora

    single = corpora.Mapping(near=False, multi_label=False)
    six = [r for r in corpora.goemotions("train", single) if r["label"] != corpora.NEUTRAL]
    go_train, go_held = corpora.split_rows(six, 0.06)
    go_dev = [r for r in corpora.goemotions("dev", single) if r["label"] != corpora.NEUTRAL]
    return {
        "taxonomy": {
            "train": emotion("train"),
            "validation": stratified(emotion("validation"), 400, 0),
            "eval": stratified(test, 200, 0) if quick else test,
            "labels": ["negative", "positive", "surprise"],
        },
        "domain": {
            "train": _read(pool),
            "validation": _read(REALWORLD / "dev.jsonl"),
            "eval": stratified(evaluation, 60, 0) if quick else evaluation,
            "labels": ["sadness", "joy", "love", "anger", "fear", "surprise"],
        },
        "goemotions": {
            "train": go_train,
            "validation": stratified(go_held, 400, 0),
            "eval": stratified(go_dev, 120, 0) if quick else go_dev,
            "labels": list(corpora.SIX),
        },
    }


def shipped_as_is(task: str, rows: list[dict], labels: list[str]) -> dict:
    """The embedded model's score with no training (for the taxonomy, its probabilities summed into
    the merged labels)."""
    from emotion_onnx import EmotionClassifier

    clf = EmotionClassifier()
    probs = clf.predict_proba([r["text"] for r in rows])
    if task == "taxonomy":
        merged = np.zeros((len(rows), len(labels)))
        for j, name in enumerate(clf.labels):
            merged[:, labels.index(MERGED[name])] += probs[:, j]
        probs = merged
    return _scores([labels[i] for i in probs.argmax(1)], [r["label"] for r in rows], labels)


def _scores(predicted: list[str], truth: list[str], labels: list[str]) -> dict:
    from emotion_onnx_export.metrics import summary

    ids = {name: i for i, name in enumerate(labels)}
    s = summary(np.array([ids[t] for t in truth]), np.array([ids[p] for p in predicted]), labels)
    return {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"]}


def finetune(work: Path, task: str, spec: dict, base: str, n: int, args) -> dict:
    """One `emotion-onnx finetune` run; its score on the task's evaluation set and its minutes."""
    run = work / f"{task}_{base.replace('/', '_')}_{n}"
    run.mkdir(parents=True, exist_ok=True)
    train = _write(run / "train.jsonl", stratified(spec["train"], n, args.seed))
    val = _write(run / "validation.jsonl", spec["validation"])
    evaluation = _write(run / "eval.jsonl", spec["eval"])
    (run / "labels.txt").write_text("\n".join(spec["labels"]) + "\n")
    cmd = [sys.executable, "-m", "emotion_onnx", "finetune", "--train", str(train), "--validation", str(val),
           "--test", str(evaluation), "--labels", str(run / "labels.txt"), "--base", base, "--out", str(run / "out"),
           "--epochs", str(args.epochs), "--lr", str(args.lr), "--batch-size", "16", "--patience", str(args.epochs),
           "--seed", str(args.seed), "--threads", "2", "--force"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        raise SystemExit(f"finetune failed ({task}, {base}, {n}):\n{proc.stderr[-2000:]}")
    metrics = json.loads((run / "out" / "metrics.json").read_text())
    return {
        "task": task,
        "base": base,
        "examples": n,
        "accuracy": metrics["test"]["accuracy"],
        "macro_f1": metrics["test"]["macro_f1"],
        "best_epoch": metrics["best_epoch"],
        "train_minutes": metrics["train_seconds"] / 60,
        "wall_minutes": (time.perf_counter() - t0) / 60,
        "command": " ".join(["emotion-onnx"] + cmd[3:]).replace(str(run), "RUN"),
    }


def markdown(data: dict) -> str:
    lines = []
    for task, title in TITLES.items():
        lines += [f"**{title}** ({data['eval_sizes'][task]} texts): accuracy / macro-F1, training minutes\n",
                  "| start | " + " | ".join(f"{n} examples" for n in data["sizes"]) + " |",
                  "|---|" + "---|" * len(data["sizes"])]  # fmt: skip
        for base in data["bases"]:
            cells = []
            for n in data["sizes"]:
                r = next(r for r in data["runs"] if (r["task"], r["base"], r["examples"]) == (task, base, n))
                cells.append(f"{r['accuracy']:.1%} / {r['macro_f1']:.3f}, {r['train_minutes']:.1f} min")
            lines.append(f"| {BASE_NAMES.get(base, base)} | " + " | ".join(cells) + " |")
        ref = data["shipped_as_is"][task]
        lines += ["", f"The shipped model with no training: {ref['accuracy']:.1%} / {ref['macro_f1']:.3f}.", ""]
    lines.append(
        f"{data['epochs']} epochs, learning rate {data['lr']}, batch 16, seed {data['seed']}, on {on_machine()}; "
        "the shipped model was trained on the emotion train split, the everyday pool, GoEmotions train and "
        "XED, so it has seen texts like every task's training data (on GoEmotions, the very comments the "
        "examples are drawn from): its curves show what a user with such data starts from, not transfer "
        "to unseen text."
    )
    return "\n".join(lines) + "\n"


TITLES = {
    "taxonomy": "new taxonomy (negative / positive / surprise), emotion test split",
    "domain": "everyday writing, the hand-written real-world set",
    "goemotions": "Reddit comments, GoEmotions dev (the six labels)",
}
SHORT = {"taxonomy": "new taxonomy (3 merged labels)", "domain": "everyday writing", "goemotions": "Reddit comments"}


def plot(data: dict, path: Path) -> None:
    plt = pyplot()
    tasks_run = [t for t in SHORT if any(r["task"] == t for r in data["runs"])]
    fig, axes = plt.subplots(1, len(tasks_run), figsize=(5 * len(tasks_run), 3.8), sharey=False, squeeze=False)
    for ax, task in zip(axes[0], tasks_run):
        title = SHORT[task]
        for base, colour in zip(data["bases"], ("tab:blue", "tab:orange", "tab:green")):
            runs = sorted((r for r in data["runs"] if r["task"] == task and r["base"] == base),
                          key=lambda r: r["examples"])  # fmt: skip
            ax.plot([r["examples"] for r in runs], [r["accuracy"] for r in runs], "o-", color=colour,
                    label=f"from {BASE_NAMES.get(base, base)}")  # fmt: skip
        ax.axhline(data["shipped_as_is"][task]["accuracy"], color="grey", ls="--", label="shipped model, no training")
        ax.set_xscale("log")
        ax.set_xticks(data["sizes"], [str(n) for n in data["sizes"]])
        ax.set_xlabel("training examples")
        ax.set_ylabel("accuracy")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="lower right")
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = arguments(__doc__, quick="smoke run: small evaluation sets, results elsewhere")
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    p.add_argument("--bases", nargs="+", default=["minilm-l6", "emotion-minilm-l6"])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--pool",
        type=Path,
        default=REPO / "build" / "everyday.jsonl",
        help="the everyday pool (generated with models/realworld/everyday_pool.py when missing)",
    )
    args = p.parse_args(argv)
    from emotion_onnx_export.data import emotion_split

    data_dir = emotion_split("train").parent
    if not args.pool.is_file():
        subprocess.run([sys.executable, str(REALWORLD / "everyday_pool.py"), "--out", str(args.pool)], check=True)
    specs = tasks(data_dir, args.pool, args.quick)
    runs = []
    with tempfile.TemporaryDirectory(prefix="adaptation_") as tmp:
        for task, spec in specs.items():
            for base in args.bases:
                for n in args.sizes:
                    runs.append(finetune(Path(tmp), task, spec, base, n, args))
                    r = runs[-1]
                    print(f"{task} from {base}, {n} examples: {r['accuracy']:.3f} / {r['macro_f1']:.3f} "
                          f"in {r['train_minutes']:.1f} min", file=sys.stderr)  # fmt: skip
    data = {
        "sizes": args.sizes,
        "bases": args.bases,
        "epochs": args.epochs,
        "lr": args.lr,
        "seed": args.seed,
        "eval_sizes": {t: len(s["eval"]) for t, s in specs.items()},
        "shipped_as_is": {t: shipped_as_is(t, s["eval"], s["labels"]) for t, s in specs.items()},
        "runs": runs,
    }
    md = markdown(data)
    write_results("adaptation", data, md, models=[model_or_default(None)],
                  code=["export/emotion_onnx_export/finetune.py", "export/emotion_onnx_export/bases.py",
                        "export/emotion_onnx_export/bases/emotion-minilm-l6.safetensors"])  # fmt: skip
    plot(data, RESULTS / "adaptation.png")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
