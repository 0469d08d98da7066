"""Model soups: weight averages of finished training runs, scored like the runs themselves.

    python research/compare_soups.py RUN_DIR [RUN_DIR ...] [--data DIR] [--out soups.json]

Each RUN_DIR is the output of `emotion-onnx finetune` (its checkpoint/ holds the weights). The
runs must share one architecture and label order; this project's runs all start from the same
converted all-MiniLM-L6-v2 encoder, which is what lets their weights be averaged at all
(Wortsman et al. 2022, "Model soups"). A soup is one model of the same size, so, unlike a logit
ensemble, it fits the embedded model's 30 MB budget.

For each run and each soup it reports PyTorch fp32 figures: validation accuracy, macro-F1, NLL
and ECE after a temperature fitted on validation, and the same temperature's test accuracy,
macro-F1 and ECE. Soups:
- `uniform`: the mean of every run's weights;
- `greedy <key>`: runs sorted by their own validation `<key>` (macro-F1, or NLL after the
  temperature), each added to the soup only if the soup's validation `<key>` does not get worse.
  Only the validation split decides membership; test figures are reported, never used.
Needs the export extra (torch, transformers). Results: a markdown table on stdout and, with --out,
JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from compare_calibrators import DATA, read_split  # a sibling script: research/ is on sys.path

GREEDY_KEYS = {"val_macro_f1": True, "val_nll_T": False}  # key -> higher is better


class Scorer:
    """Loads the runs' weights into one model and scores any state dict on validation and test."""

    def __init__(self, runs: list[Path], data: Path):
        from safetensors.torch import load_file
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from emotion_onnx_export.finetune import _Encoded

        first = runs[0] / "checkpoint"
        self.model = AutoModelForSequenceClassification.from_pretrained(first)
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        tokenizer = AutoTokenizer.from_pretrained(first)
        self.states = {}
        for run in runs:
            if run.name in self.states:
                raise SystemExit(f"{run}: another run is also named {run.name!r}; results are keyed by name")
            config = json.loads((run / "checkpoint" / "config.json").read_text())
            labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
            if labels != self.labels or config["model_type"] != self.model.config.model_type:
                raise SystemExit(f"{run}: {config['model_type']} with labels {labels} cannot join {self.labels}")
            self.states[run.name] = load_file(run / "checkpoint" / "model.safetensors")
        self.full = {k: v.clone() for k, v in self.model.state_dict().items()}
        vt, self.vy = read_split(data, "validation")
        tt, self.ty = read_split(data, "test")
        self.batches = (_Encoded(tokenizer, vt, 512), _Encoded(tokenizer, tt, 512))

    def score(self, state: dict) -> dict:
        from emotion_onnx_export.calibration import ece, fit_temperature, nll, softmax
        from emotion_onnx_export.finetune import _predict
        from emotion_onnx_export.metrics import summary

        self.model.load_state_dict({**self.full, **state})
        val = _predict(self.model, self.batches[0])
        test = _predict(self.model, self.batches[1])
        t = fit_temperature(val, self.vy)
        sv = summary(self.vy, val.argmax(1), self.labels)
        st = summary(self.ty, test.argmax(1), self.labels)
        return {
            "T": t,
            "val_accuracy": sv["accuracy"],
            "val_macro_f1": sv["macro_f1"],
            "val_nll_T": nll(val, self.vy, t),
            "val_ece_T": ece(softmax(val, t), self.vy),
            "test_accuracy": st["accuracy"],
            "test_macro_f1": st["macro_f1"],
            "test_ece_T": ece(softmax(test, t), self.ty),
        }

    def soup(self, names: list[str]) -> dict:
        from emotion_onnx_export.finetune import average_states

        return average_states([self.states[n] for n in names])


def greedy(scorer: Scorer, singles: dict, key: str) -> tuple[list[str], dict, list[dict]]:
    higher = GREEDY_KEYS[key]
    order = sorted(singles, key=lambda n: singles[n][key], reverse=higher)
    members, best, tried = [order[0]], singles[order[0]], []
    for name in order[1:]:
        r = scorer.score(scorer.soup(members + [name]))
        kept = r[key] >= best[key] if higher else r[key] <= best[key]
        tried.append({"added": name, "kept": kept, **r})
        if kept:
            members, best = members + [name], r
    return members, best, tried


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    scorer = Scorer(args.runs, args.data)
    rows = [{"model": name, **scorer.score(state)} for name, state in scorer.states.items()]
    singles = {r["model"]: r for r in rows}
    greedy_trials = {}
    if len(rows) > 1:
        rows.append({"model": "uniform soup of " + "+".join(singles), **scorer.score(scorer.soup(list(singles)))})
        for key in GREEDY_KEYS:
            members, best, tried = greedy(scorer, singles, key)
            rows.append({**best, "model": f"greedy soup by {key}: " + "+".join(members), "members": members})
            greedy_trials[key] = tried

    print(
        "| model | T | val acc | val macro-F1 | val NLL after T | val ECE after T "
        "| test acc | test macro-F1 | test ECE after T |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['T']:.3f} | {r['val_accuracy']:.2%} | {r['val_macro_f1']:.2%} | {r['val_nll_T']:.4f} "
            f"| {r['val_ece_T']:.2%} | {r['test_accuracy']:.2%} | {r['test_macro_f1']:.2%} | {r['test_ece_T']:.2%} |"
        )
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "greedy_trials": greedy_trials}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
