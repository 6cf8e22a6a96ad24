"""Pictures people would rather see than read: learning curves and prediction grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from fkd.model.io.files import atomic_path


def learning_curve(history: list[dict], path: Path) -> None:
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.set_yscale("log")
    ax1.legend()
    ax2.plot(epochs, [100 * h["val_nme"] for h in history], label="val NME %", color="C1")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("NME (%)")
    ax3 = ax2.twinx()
    ax3.plot(epochs, [h["val_rmse96"] for h in history], label="val RMSE (96 px)", color="C2")
    ax3.set_ylabel("RMSE (96-px crop)")
    fig.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_comparison(histories: dict[str, list[dict]], path: Path) -> None:
    """Validation NME and training point loss per epoch for several runs, on shared axes.

    Why a picture: whether a recipe overfits shows as the validation curve turning up while the
    training loss keeps falling, and that turn, not the last epoch, decides which run wins.
    Each run's best epoch is marked.
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, history) in enumerate(histories.items()):
        scored = [h for h in history if h.get("val_nme") is not None]
        epochs = [h["epoch"] for h in scored]
        nme = [100 * h["val_nme"] for h in scored]
        ax1.plot(epochs, nme, color=f"C{i}", label=name)
        if scored:
            best = min(range(len(nme)), key=nme.__getitem__)
            ax1.plot(epochs[best], nme[best], "o", color=f"C{i}")
            ax1.annotate(f"{nme[best]:.2f} %", (epochs[best], nme[best]), textcoords="offset points",
                         xytext=(0, -12), ha="center", fontsize=8, color=f"C{i}")
        ax2.plot([h["epoch"] for h in history], [h.get("point_loss", h["train_loss"]) for h in history],
                 color=f"C{i}", label=name)
    low = min((100 * h["val_nme"] for hs in histories.values() for h in hs if h.get("val_nme") is not None),
              default=1.0)
    ax1.set_ylim(low - 0.1, low + 1.0)  # the end of the curves, where runs differ
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("validation NME (%)")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("training point loss (crop px)")
    ax2.set_yscale("log")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def prediction_grid(crops: np.ndarray, pred: np.ndarray, target: np.ndarray | None, mask: np.ndarray | None,
                    path: Path, cols: int = 6, title: str = "") -> None:
    """Crops with predictions (red) and, where labelled, ground truth (green)."""
    n = len(crops)
    rows = max(1, (n + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.8, rows * 1.8))
    for i, ax in enumerate(np.asarray(axes).reshape(-1)):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(crops[i], cmap="gray", vmin=0, vmax=255)
        if target is not None:
            m = mask[i] if mask is not None else np.ones(len(target[i]), bool)
            ax.scatter(target[i][m, 0], target[i][m, 1], s=6, c="lime", marker="o")
        ax.scatter(pred[i][:, 0], pred[i][:, 1], s=6, c="red", marker="x")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
