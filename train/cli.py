"""The training-side commands: fkd-train, fkd-eval, fkd-submit."""

from __future__ import annotations

from pathlib import Path

import typer

from fkd.model.errors import FkdError
from fkd.train.loop import LOSSES, TrainConfig, train

train_app = typer.Typer(add_completion=False, help="Fit fkd's keypoint CNN and export TorchScript weights.")


def fail(message: str) -> None:
    """One sentence on stderr, exit code 2, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@train_app.command()
def fkd_train(
    data: list[Path] = typer.Option(None, "--data", help="A Kaggle training.csv or a folder of photos with "
                                    "68-point .pts files (or a folder of such folders); repeat to combine."),
    out: Path = typer.Option(Path("runs/fkd"), help="Run folder: checkpoints, split, pictures, weights."),
    epochs: int = typer.Option(150, min=1),
    batch_size: int = typer.Option(64, min=1),
    lr: float = typer.Option(3e-3, help="Peak AdamW learning rate (cosine schedule)."),
    loss: str = typer.Option("wing", help=f"One of {', '.join(LOSSES)}."),
    width: int = typer.Option(32, min=8, help="Network width; 32 is the shipped model (1.3M parameters)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps; auto takes the GPU when there is one."),
    seed: int = typer.Option(0),
    val_fraction: float = typer.Option(0.1, min=0.0, max=0.9),
    threads: int = typer.Option(None, help="CPU threads for torch (default: torch's choice)."),
    cache_dir: Path = typer.Option(Path(".cache"), help="Where decoded crops of .pts folders are cached."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last epoch."),
) -> None:
    """Train on Kaggle CSVs and/or 300-W style photo folders, then export the best epoch.

    Example: fkd-train --data ../shared/data/300w --out runs/300w --epochs 150
    """
    if not data and not resume:
        fail("--data is required (a training.csv or a folder of .pts photos), unless --resume is given.")
    if loss not in LOSSES:
        fail(f"--loss must be one of {', '.join(LOSSES)}, not {loss!r}.")
    cfg = TrainConfig(data=[str(p) for p in data or []], out=str(out), epochs=epochs, batch_size=batch_size,
                      lr=lr, loss=loss, width=width, device=device, seed=seed, val_fraction=val_fraction,
                      threads=threads, cache_dir=str(cache_dir) if cache_dir else None)
    try:
        train(cfg, resume=resume)
    except FkdError as e:
        fail(str(e))
