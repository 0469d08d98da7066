"""PNG plots of training curves and confusion matrices (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(step_losses: list[float], epochs: list[dict], path: Path) -> None:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    losses = np.asarray(step_losses)
    window = max(1, len(losses) // 100)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid") if len(losses) else losses
    ax1.plot(losses, alpha=0.25, label="per step")
    ax1.plot(np.arange(len(smooth)) + window - 1, smooth, label=f"mean of {window}")
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss")
    ax1.legend()
    xs = [e["epoch"] for e in epochs]
    ax2.plot(xs, [e["val_accuracy"] for e in epochs], "o-", label="validation accuracy")
    ax2.plot(xs, [e["val_macro_f1"] for e in epochs], "s-", label="validation macro-F1")
    ax2.plot(xs, [e["train_loss"] for e in epochs], "^--", label="training loss (epoch mean)")
    ax2.set_xlabel("epoch")
    ax2.set_xticks(xs)
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion_matrix(cm: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    plt = _plt()
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def reliability_diagram(panels: dict[str, tuple[list[dict], float]], path: Path, title: str = "") -> None:
    """One reliability diagram per panel (name -> (reliability_bins, ECE)): accuracy against mean
    top-1 confidence per bin, bar width the bin, the diagonal a calibrated model would follow."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (name, (bins, ece)) in zip(axes[0], panels.items()):
        lo = [b["bin"][0] for b in bins]
        width = [b["bin"][1] - b["bin"][0] for b in bins]
        ax.bar(lo, [b["accuracy"] for b in bins], width=width, align="edge", edgecolor="black", alpha=0.75,
               label="accuracy")  # fmt: skip
        ax.plot([b["confidence"] for b in bins], [b["confidence"] for b in bins], "r.", label="mean confidence")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        for left, w, b in zip(lo, width, bins):
            ax.text(left + w / 2, 0.02, str(b["texts"]), ha="center", fontsize=7, rotation=90)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("top-1 confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}\nECE {ece:.2%}", fontsize=10)
    axes[0][0].legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
