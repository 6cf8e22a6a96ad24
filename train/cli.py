"""The training-side commands: fkd-train, fkd-eval, fkd-submit."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from fkd.model.artifact import Predictor
from fkd.model.errors import FkdError
from fkd.train.evaluate import evaluate, metrics_json, metrics_table, predict_crops
from fkd.train.kaggle import read_test_csv
from fkd.train.loop import LOSSES, TrainConfig, train
from fkd.train.submit import write_submission

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
    epochs: int = typer.Option(None, min=1, help="Epochs in all (default 150); with --resume, extends the run."),
    batch_size: int = typer.Option(64, min=1, help="Faces per optimisation step."),
    lr: float = typer.Option(3e-3, help="Peak AdamW learning rate (cosine schedule)."),
    loss: str = typer.Option("smoothl1", help=f"One of {', '.join(LOSSES)}; smoothl1 measured best "
                             "(bench/RESULTS.md)."),
    width: int = typer.Option(32, min=8, help="Network width; 32 is the shipped model (1.3M parameters)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps; auto takes the GPU when there is one."),
    seed: int = typer.Option(0, help="Seeds weights, shuffling and augmentation; the split does not depend on it."),
    val_fraction: float = typer.Option(0.1, min=0.0, max=0.9, help="Share of faces held out, chosen by a hash "
                                       "of each face's name so the split is the same every run."),
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
    cfg = TrainConfig(data=[str(p) for p in data or []], out=str(out), epochs=epochs or 150, batch_size=batch_size,
                      lr=lr, loss=loss, width=width, device=device, seed=seed, val_fraction=val_fraction,
                      threads=threads, cache_dir=str(cache_dir) if cache_dir else None)
    try:
        train(cfg, resume=resume, epochs=epochs if resume else None)
    except FkdError as e:
        fail(str(e))


WEIGHTS_HELP = "TorchScript weights written by fkd-train (default: the shipped weights/fkd.pt)."

eval_app = typer.Typer(add_completion=False, help="Score fkd weights on labelled faces: RMSE96 and NME.")


@eval_app.command()
def fkd_eval(
    data: Path = typer.Argument(..., metavar="DATA", show_default=False,
                                help="A Kaggle-format training.csv (empty cells are unlabelled points) or a folder "
                                     "of photos with 68-point .pts files (or a folder of such folders)."),
    weights: Path = typer.Option(None, "--weights", metavar="FILE", show_default=False, help=WEIGHTS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table: NME as a "
                                 "fraction, rmse96 in crop pixels, null where no point is labelled."),
    cache_dir: Path = typer.Option(Path(".cache"), help="Where decoded crops of .pts folders are cached."),
) -> None:
    """Score weights on labelled faces: Kaggle's RMSE in 96-px crop units and NME (point error over the
    outer-eye-corner distance), overall and per keypoint, over the labelled points only.

    Example: fkd-eval ../shared/data/300w/afw --weights runs/300w/fkd.pt --json
    """
    try:
        with Progress(console=Console(stderr=True), transient=True) as bar:
            metrics = evaluate(data, weights, cache_dir, progress=bar)
    except FkdError as e:
        fail(str(e))
    if as_json:
        typer.echo(metrics_json(metrics))
    else:
        Console().print(metrics_table(metrics))


submit_app = typer.Typer(add_completion=False, help="Write a Kaggle submission for the facial keypoints test set.")


@submit_app.command()
def fkd_submit(
    test_csv: Path = typer.Argument(..., metavar="TEST_CSV", show_default=False,
                                    help="Kaggle's test.csv: ImageId and a 96x96 grey Image per row."),
    lookup_csv: Path = typer.Argument(..., metavar="LOOKUP_CSV", show_default=False,
                                      help="Kaggle's IdLookupTable.csv: which values to submit, and in what order."),
    out: Path = typer.Option(Path("submission.csv"), "-o", "--out", help="The submission file to write "
                             "(RowId,Location); replaced atomically."),
    weights: Path = typer.Option(None, "--weights", metavar="FILE", show_default=False, help=WEIGHTS_HELP),
) -> None:
    """Predict the keypoints of Kaggle's test faces and write the competition's submission file:
    one RowId,Location row per lookup row, in its order, each value clipped to the 96x96 image.

    Example: fkd-submit test.csv ../shared/data/kaggle/IdLookupTable.csv -o submission.csv
    """
    try:
        predictor = Predictor(weights)
        image_ids, images = read_test_csv(test_csv)
        rows = write_submission(image_ids, predict_crops(predictor, images), lookup_csv, out, source=str(test_csv))
    except FkdError as e:
        fail(str(e))
    typer.echo(f"wrote {out}: {rows} rows for {len(image_ids)} test images")
