"""Calibrators and ensembles over finished training runs, on the real test split.

    python research/compare_calibrators.py RUN_DIR [RUN_DIR ...] [--variant fp32] [--max-subsets 200]
                                         [--out calibrators.json]

Each RUN_DIR is the output of `emotion-onnx finetune ... --export` (its onnx/ directory holds
the manifest). For every run, the variant's logits on the validation and test splits come from
the runtime itself. Each calibrator is fitted on validation only and scored on test:
- `temperature`: one temperature, as the manifest ships (emotion_onnx.calibration.fit_temperature);
- `vector`: a scale and a bias per class (vector scaling, Guo et al. 2017), fitted by
  minimising validation NLL;
- `dirichlet`: a full 6x6 matrix and a bias on the log-probabilities (Dirichlet calibration,
  Kull et al. 2019), fitted by minimising validation NLL with an L2 penalty on the off-diagonal
  weights whose strength is chosen by 5-fold cross-validation on the validation split;
- `temperature + isotonic`: the temperature, then an isotonic (monotone, piecewise-linear) map of
  the top-1 confidence fitted to top-1 correctness on validation by pool-adjacent-violators
  (Zadrozny & Elkan 2002). It changes only the reported confidence, never the predicted class,
  so accuracy and macro-F1 stay the temperature's; it is not what the manifest ships;
- `temperature + one-vs-rest isotonic`: the temperature, then one isotonic map per class (that
  class's probability against "is this the label"), renormalised to sum to 1 (Zadrozny & Elkan
  2002). It calibrates the whole vector, not just the top-1, but it can change the predicted class;
- `oracle temperature`: the temperature best for test ECE, chosen on test itself; a lower bound
  for any single temperature, not a fair figure.
Ensembles average the logits of every subset of two or more runs (up to --max-subsets of them,
smallest first, plus all runs together) and are then calibrated by one temperature. Results:
a markdown table on stdout and, with --out, JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from emotion_onnx_export.calibration import fit_isotonic
from emotion_onnx_export.data import emotion_dir, read_labelled

DATA = emotion_dir()
DIRICHLET_LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)  # the penalties cross-validation chooses from


def read_split(data: Path, split: str) -> tuple[list[str], np.ndarray]:
    split_data = read_labelled(Path(data) / f"{split}.jsonl")
    return split_data.texts, np.array(split_data.labels)


def fit_vector_scaling(logits: np.ndarray, labels: np.ndarray, steps: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Per-class scale w and bias b minimising the NLL of softmax(logits * w + b); convex, so plain
    gradient descent with a backtracking step reaches the optimum. Starts from one temperature."""
    from emotion_onnx_export.calibration import fit_temperature, log_softmax

    n, k = logits.shape
    onehot = np.eye(k)[labels]

    def loss(w, b):
        return -(log_softmax(logits * w + b) * onehot).sum() / n

    w, b = np.full(k, 1.0 / fit_temperature(logits, labels)), np.zeros(k)
    step, current = 1.0, loss(w, b)
    for _ in range(steps):
        z = logits * w + b
        g = (np.exp(log_softmax(z)) - onehot) / n
        gw, gb = (g * logits).sum(axis=0), g.sum(axis=0)
        while step > 1e-8:
            nw, nb = w - step * gw, b - step * gb
            new = loss(nw, nb)
            if new <= current - 0.5 * step * (gw @ gw + gb @ gb):
                w, b, current, step = nw, nb, new, step * 2
                break
            step /= 2
        else:
            break
    return w, b


def fit_dirichlet(
    logits: np.ndarray, labels: np.ndarray, lam: float, iters: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Matrix W and bias b minimising the NLL of softmax(log_softmax(logits) @ W.T + b) plus
    lam times the mean square of W's off-diagonal entries (Kull et al. 2019's ODIR penalty,
    without the bias term). A multinomial logistic regression on the log-probabilities, so
    convex: Newton steps (minimum-norm, since adding a constant to every class changes nothing)
    with backtracking, from one temperature."""
    from emotion_onnx_export.calibration import fit_temperature, log_softmax

    n, k = logits.shape
    x = np.hstack([log_softmax(logits), np.ones((n, 1))])  # (n, k + 1): W's inputs and the bias's
    xx = (x[:, :, None] * x[:, None, :]).reshape(n, -1)
    onehot = np.eye(k)[labels]
    mask = np.hstack([1.0 - np.eye(k), np.zeros((k, 1))])  # the penalised (off-diagonal) entries
    penalty = 2 * lam / (k * (k - 1))  # the derivative of lam * mean(square) is penalty * entry

    def f(theta):
        ls = log_softmax(x @ theta.T)
        p = np.exp(ls)
        loss = -(ls * onehot).sum() / n + penalty / 2 * ((theta * mask) ** 2).sum()
        grad = (p - onehot).T @ x / n + penalty * theta * mask
        s = (np.einsum("ic,cd->icd", p, np.eye(k)) - np.einsum("ic,id->icd", p, p)).reshape(n, -1)
        # hessian[(c, a), (d, b)] = sum_i s[i, c, d] x[i, a] x[i, b] / n, as one matrix product
        hess = (s.T @ xx).reshape(k, k, k + 1, k + 1).transpose(0, 2, 1, 3).reshape(k * (k + 1), -1) / n
        return loss, grad.ravel(), hess + np.diag(penalty * mask.ravel())

    theta = np.hstack([np.eye(k) / fit_temperature(logits, labels), np.zeros((k, 1))])
    loss, grad, hess = f(theta)
    for _ in range(iters):
        direction = np.linalg.lstsq(hess, grad, rcond=None)[0].reshape(theta.shape)
        step = 1.0
        while step > 1e-6:
            new = f(theta - step * direction)
            if new[0] <= loss - 1e-4 * step * (grad @ direction.ravel()):
                break
            step /= 2
        else:
            break
        done = loss - new[0] < 1e-12
        theta = theta - step * direction
        loss, grad, hess = new
        if done:
            break
    return theta[:, :k], theta[:, k]


def dirichlet_logits(logits: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    from emotion_onnx_export.calibration import log_softmax

    return log_softmax(logits) @ w.T + b


def dirichlet_probs(logits: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    from emotion_onnx.calibration import softmax

    return softmax(dirichlet_logits(logits, w, b))


def choose_dirichlet_lambda(
    logits: np.ndarray, labels: np.ndarray, grid=DIRICHLET_LAMBDAS, folds: int = 5, seed: int = 0
) -> float:
    """The penalty with the lowest held-out NLL over `folds` seeded folds of (validation) data."""
    from emotion_onnx_export.calibration import nll

    parts = np.array_split(np.random.default_rng(seed).permutation(len(labels)), folds)

    def held_out_nll(lam):
        total = 0.0
        for i, held in enumerate(parts):
            fit = np.concatenate(parts[:i] + parts[i + 1 :])
            z = dirichlet_logits(logits[held], *fit_dirichlet(logits[fit], labels[fit], lam))
            total += nll(z, labels[held]) * len(held)
        return total

    return min(grid, key=held_out_nll)


def isotonic_ece(val_probs: np.ndarray, vy: np.ndarray, test_probs: np.ndarray, ty: np.ndarray) -> tuple[float, int]:
    """Test ECE after an isotonic map of the top-1 confidence fitted on validation (both sets of
    probabilities already after T), and the map's number of knots."""
    from emotion_onnx_export.calibration import top_label_ece

    knots = fit_isotonic(val_probs.max(axis=1), val_probs.argmax(axis=1) == vy)
    conf = np.interp(test_probs.max(axis=1), *knots)
    return top_label_ece(conf, test_probs.argmax(axis=1) == ty), len(knots[0])


def fit_one_vs_rest_isotonic(val_probs: np.ndarray, vy: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """One isotonic map per class: that class's probability against whether it is the label."""
    return [fit_isotonic(val_probs[:, c], vy == c) for c in range(val_probs.shape[1])]


def one_vs_rest_probs(probs: np.ndarray, maps: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Each class's probability through its map, renormalised to sum to 1 (a floor of 1e-6 keeps a
    row whose every map gives 0 defined)."""
    mapped = np.maximum(np.stack([np.interp(probs[:, c], *m) for c, m in enumerate(maps)], axis=1), 1e-6)
    return mapped / mapped.sum(axis=1, keepdims=True)


def scores(y: np.ndarray, labels: list[str], probs: np.ndarray) -> dict:
    from emotion_onnx_export.calibration import ece
    from emotion_onnx_export.metrics import summary

    s = summary(y, probs.argmax(axis=1), labels)
    return {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"], "ece": ece(probs, y)}


def evaluate(name: str, val: np.ndarray, test: np.ndarray, vy: np.ndarray, ty: np.ndarray, labels, per_run: bool):
    from emotion_onnx_export.calibration import ece, fit_temperature, softmax

    t = fit_temperature(val, vy)
    rows = [{"model": name, "calibrator": "none", **scores(ty, labels, softmax(test))}]
    rows.append({"model": name, "calibrator": "temperature", "T": t, **scores(ty, labels, softmax(test, t))})
    if per_run:  # the calibrators with many parameters: single runs only
        w, b = fit_vector_scaling(val, vy)
        rows.append(
            {
                "model": name,
                "calibrator": "vector",
                "scale": w.tolist(),
                "bias": b.tolist(),
                **scores(ty, labels, softmax(test * w + b)),
            }
        )
        lam = choose_dirichlet_lambda(val, vy)
        w, b = fit_dirichlet(val, vy, lam)
        rows.append(
            {
                "model": name,
                "calibrator": "dirichlet",
                "lambda": lam,
                "matrix": w.tolist(),
                "bias": b.tolist(),
                **scores(ty, labels, dirichlet_probs(test, w, b)),
            }
        )
    iso_ece, knots = isotonic_ece(softmax(val, t), vy, softmax(test, t), ty)
    # the temperature's row: same predictions, so same accuracy and macro-F1
    rows.append({**rows[1], "calibrator": "temperature + isotonic", "knots": knots, "ece": iso_ece})
    maps = fit_one_vs_rest_isotonic(softmax(val, t), vy)
    rows.append(
        {
            "model": name,
            "calibrator": "temperature + one-vs-rest isotonic",
            "T": t,
            **scores(ty, labels, one_vs_rest_probs(softmax(test, t), maps)),
        }
    )
    grid = np.append(np.arange(0.3, 3.0, 0.01), t)  # the fitted temperature too, so the bound holds
    best = min(grid, key=lambda tt: ece(softmax(test, tt), ty))
    oracle = scores(ty, labels, softmax(test, best))
    rows.append({"model": name, "calibrator": "oracle temperature", "T": float(best), **oracle})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--variant", default="fp32")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--max-subsets", type=int, default=200)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    from emotion_onnx import EmotionClassifier

    vt, vy = read_split(args.data, "validation")
    tt, ty = read_split(args.data, "test")
    logits, labels = {}, None
    for run in args.runs:
        clf = EmotionClassifier(run / "onnx", variant=args.variant)
        if labels is not None and clf.labels != labels:
            raise SystemExit(f"{run}: labels {clf.labels} differ from {labels}")
        labels = clf.labels
        logits[run.name] = (clf.logits(vt), clf.logits(tt))

    rows = []
    for name, (val, test) in logits.items():
        rows += evaluate(name, val, test, vy, ty, labels, per_run=True)
    names = list(logits)
    subsets = [c for k in range(2, len(names)) for c in itertools.combinations(names, k)][: args.max_subsets]
    if len(names) > 1:
        subsets.append(tuple(names))
    for combo in subsets:
        val = np.mean([logits[n][0] for n in combo], axis=0)
        test = np.mean([logits[n][1] for n in combo], axis=0)
        rows += evaluate("+".join(combo), val, test, vy, ty, labels, per_run=False)

    print("| model | calibrator | accuracy | macro-F1 | ECE (15 bins) |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['calibrator']} | {r['accuracy']:.2%} | {r['macro_f1']:.2%} | {r['ece']:.2%} |")
    fitted = [r for r in rows if r["calibrator"] != "none" and r["calibrator"] != "oracle temperature"]
    best = min(fitted, key=lambda r: r["ece"])
    print(
        f"\nLowest test ECE of a calibrator fitted on validation: {best['ece']:.2%} "
        f"({best['model']}, {best['calibrator']})."
    )
    if args.out:
        args.out.write_text(json.dumps({"variant": args.variant, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
