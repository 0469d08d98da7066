"""Fitting and scoring calibration at export time: the temperature (NLL), ECE and reliability
bins. The runtime only applies what is fitted here (emotion_onnx.calibration)."""

from __future__ import annotations

import numpy as np

from emotion_onnx.calibration import TEMPERATURE_SPREAD, apply_top1_map, softmax, temperature_features, temperatures
from emotion_onnx.manifest import Calibration, ConfidenceMap, TemperatureFeatures

TEMPERATURE_BOUNDS = (0.05, 20.0)
ECE_BINS = 15
MAP_RANGE = (0.001, 0.999)  # a mapped confidence never claims certainty, so a confident error's NLL stays finite


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels."""
    logp = log_softmax(logits, temperature)
    return float(-logp[np.arange(len(labels)), labels].mean())


def prob_nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels from probabilities (clipped at 1e-12)."""
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top-1 confidence, equal-width bins on (0, 1]."""
    return top_label_ece(probs.max(axis=1), probs.argmax(axis=1) == labels, n_bins)


def top_label_ece(conf: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE from each prediction's confidence and whether it was right: the bin-weighted mean of
    |accuracy - mean confidence| over equal-width bins on (0, 1]."""
    n = len(conf)
    return float(
        sum(b["texts"] / n * abs(b["accuracy"] - b["confidence"]) for b in reliability_bins(conf, correct, n_bins))
    )


def reliability_bins(conf: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS) -> list[dict]:
    """The non-empty equal-width bins on (0, 1] behind the ECE: each bin's edges, how many
    predictions fall in it, their accuracy and their mean confidence."""
    conf = np.asarray(conf, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            rows.append(
                {
                    "bin": [float(lo), float(hi)],
                    "texts": int(in_bin.sum()),
                    "accuracy": float(correct[in_bin].mean()),
                    "confidence": float(conf[in_bin].mean()),
                }
            )
    return rows


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lo: float = TEMPERATURE_BOUNDS[0],
                    hi: float = TEMPERATURE_BOUNDS[1]) -> float:  # fmt: skip
    """T minimising NLL, by golden-section search on log T (NLL is unimodal in log T)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    a, b = np.log(lo), np.log(hi)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(logits, labels, np.exp(c)), nll(logits, labels, np.exp(d))
    while b - a > 1e-6:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(logits, labels, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(logits, labels, np.exp(d))
    return float(np.exp((a + b) / 2.0))


def fit_isotonic(
    conf: np.ndarray, correct: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The non-decreasing step function of conf closest to correct in (weighted) squared error, by
    pool-adjacent-violators (Zadrozny & Elkan 2002); returns the knots (mean confidence, accuracy)
    of its blocks, for np.interp. Equal confidences are one point (a step function cannot take two
    values at one x), weighted by how many they are (or by their summed weights)."""
    conf = np.asarray(conf, dtype=np.float64)
    w = np.ones_like(conf) if weights is None else np.asarray(weights, dtype=np.float64)
    values, inverse = np.unique(conf, return_inverse=True)
    counts = np.bincount(inverse, weights=w, minlength=len(values))
    hits = np.bincount(inverse, weights=np.asarray(correct, dtype=np.float64) * w, minlength=len(values))
    blocks: list[list[float]] = []  # [sum of correct, sum of conf, count]
    for value, hit, count in zip(values, hits, counts):
        blocks.append([hit, value * count, float(count)])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][2] > blocks[-1][0] / blocks[-1][2]:
            last = blocks.pop()
            blocks[-1] = [a + b for a, b in zip(blocks[-1], last)]
    b = np.array(blocks)
    return b[:, 1] / b[:, 2], b[:, 0] / b[:, 2]


def top1_map(probs: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> ConfidenceMap:
    """The isotonic map of the top-1 probability (after the temperature) to how often the top label
    is right, fitted on labelled calibration texts (each weighing `weights`, default alike)."""
    x, y = fit_isotonic(probs.max(axis=1), probs.argmax(axis=1) == labels, weights)
    y = np.clip(y, *MAP_RANGE)
    return ConfidenceMap(tuple(float(v) for v in x), tuple(float(v) for v in y))


def group_weights(groups: list[str] | None) -> np.ndarray | None:
    """Row weights under which every group (a corpus: tweets, Reddit, subtitles) counts alike,
    averaging 1; None when the texts name fewer than two groups."""
    if groups is None or len(set(groups)) < 2:
        return None
    _, inverse, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return w * (len(w) / w.sum())


def fit_temperature_features(
    logits: np.ndarray, labels: np.ndarray, neutral: np.ndarray | None, weights: np.ndarray, t0: float
) -> tuple[float, TemperatureFeatures]:
    """(T, features) minimising the weighted NLL of softmax(logits / (T * exp(w . f))), where f
    are each text's temperature features (emotion_onnx.calibration.temperature_features): a
    temperature per text, fitted by L-BFGS from the plain temperature t0. The features are
    standardised while fitting and the weights mapped back, so the runtime computes the same T."""
    import torch

    f = temperature_features(logits, neutral)
    mu, sd = f.mean(axis=0), f.std(axis=0)
    sd[sd < 1e-9] = np.inf  # a constant feature (no neutral output) gets weight 0
    spread = float(np.log(TEMPERATURE_SPREAD))
    x = torch.tensor((f - mu) / sd, dtype=torch.float64)
    z = torch.tensor(np.asarray(logits, dtype=np.float64))
    y = torch.tensor(np.asarray(labels, dtype=np.int64))
    wt = torch.tensor(weights, dtype=torch.float64)
    offset = torch.tensor(mu / sd, dtype=torch.float64)  # w . f = w_std . x + w_std . offset
    w = torch.zeros(f.shape[1], dtype=torch.float64, requires_grad=True)
    log_t = torch.tensor([np.log(t0)], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, log_t], max_iter=500, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

    def closure():  # the runtime's formula: T * exp(clip(w . f)), with T = exp(log_t - w_std . offset)
        opt.zero_grad()
        c = (w * offset).sum()
        t = torch.exp(log_t - c + torch.clamp(x @ w + c, -spread, spread))[:, None]
        loss = (torch.nn.functional.cross_entropy(z / t, y, reduction="none") * wt).mean()
        loss.backward()
        return loss

    opt.step(closure)
    weights_raw = w.detach().numpy() / sd
    base = float(np.exp(log_t.item() - (w.detach().numpy() * mu / sd).sum()))  # log_t - c
    return base, TemperatureFeatures(tuple(float(v) for v in weights_raw))


def fit_calibration(
    logits: np.ndarray,
    labels: np.ndarray | None,
    texts: str,
    with_map: bool = True,
    groups: list[str] | None = None,
    neutral: np.ndarray | None = None,
) -> Calibration:
    """The Calibration of a variant from its logits on labelled calibration texts: the NLL
    temperature, then (with_map) the isotonic map of the top-1 probability, with the ECE (15 bins)
    and NLL before, after the temperature and after the map. When the texts come from two or more
    corpora (`groups`), every corpus weighs alike and the temperature is one per text, read from
    its logits (and `neutral`, the model's neutral logits): one temperature cannot serve corpora
    whose confidences mean different things. Without labels: T = 1, "uncalibrated". A
    temperature at the search's bound is kept but recorded as a warning, not called calibrated."""
    if labels is None:
        reason = "the calibration texts have no labels"
        return Calibration(1.0, "uncalibrated", None, {"texts": texts, "reason": reason})
    t = fit_temperature(logits, labels)
    weights = group_weights(groups)
    features = None
    if weights is not None:
        t, features = fit_temperature_features(logits, labels, neutral, weights, t)
    calibration = Calibration(t, "calibrated", None, {}, features)
    after_t = softmax(logits, temperatures(logits, calibration, neutral))
    details: dict = {
        "texts": texts,
        "n_texts": int(len(labels)),
        "ece_bins": ECE_BINS,
        "nll_before": nll(logits, labels),
        "nll_after_temperature": prob_nll(after_t, labels),
        "ece_before": ece(softmax(logits), labels),
        "ece_after_temperature": ece(after_t, labels),
    }
    if weights is not None:
        details["weighting"] = "every corpus alike (its `source` field): " + ", ".join(sorted(set(groups)))
    mapping = None
    if with_map:
        mapping = top1_map(after_t, labels, weights)
        mapped = apply_top1_map(after_t, mapping.x, mapping.y)
        details.update(
            map_knots=len(mapping.x), nll_after_map=prob_nll(mapped, labels), ece_after_map=ece(mapped, labels)
        )
        if weights is not None:
            corpus = np.asarray(groups)
            details["ece_after_map_by_corpus"] = {
                g: ece(mapped[corpus == g], labels[corpus == g]) for g in sorted(set(groups))
            }
    lo, hi = TEMPERATURE_BOUNDS
    if not lo * 1.01 < t < hi / 1.01:
        details["warnings"] = [
            f"the fitted temperature {t:.3g} is at the search's bound [{lo:g}, {hi:g}]: the logits carry "
            "no usable confidence (a random-weight or collapsed model); the probabilities are not calibrated"
        ]
        return Calibration(t, "uncalibrated", mapping, details, features)
    return Calibration(t, "calibrated", mapping, details, features)


def fit_answer_calibrations(
    logits: np.ndarray,
    labels: np.ndarray | None,
    texts: str,
    label_names: list[str],
    neutral_label: str | None,
    with_map: bool = True,
    groups: list[str] | None = None,
) -> tuple[Calibration, Calibration | None]:
    """The calibration of each answer a model gives: (default, with neutral). Without a neutral
    label the default answer reads every logit and there is no second one. With one, the default
    answer is fitted on the other labels' logits over the texts not labelled neutral (the texts it
    can be right about), and the neutral answer on every logit over every text. `groups` names
    each text's corpus (see fit_calibration)."""
    if neutral_label is None:
        return fit_calibration(logits, labels, texts, with_map, groups), None
    n = label_names.index(neutral_label)
    keep = [i for i in range(len(label_names)) if i != n]
    with_neutral = fit_calibration(logits, labels, texts, with_map, groups, logits[:, n])
    if labels is None:
        return fit_calibration(logits[:, keep], None, texts, with_map), with_neutral
    rows = labels != n
    remap = np.full(len(label_names), -1)
    remap[keep] = np.arange(len(keep))
    default_groups = [g for g, r in zip(groups, rows) if r] if groups is not None else None
    default = fit_calibration(
        logits[rows][:, keep], remap[labels[rows]], texts, with_map, default_groups, logits[rows][:, n]
    )
    return default, with_neutral
