"""Pictures people would rather see than read: learning curves and prediction grids."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


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
