"""The training-side commands: fkd-train, fkd-eval, fkd-submit."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from fkd.model.cli_common import FLIP_HELP, MAX_THREADS, deprecated, reported_errors
from fkd.model.errors import UsageError
from fkd.model.extras import require_train_extra
from fkd.model.io.files import write_text_atomic
from fkd.model.io.paths import make_parent
from fkd.model.ranges import MAX_BATCH, MAX_SEED, MAX_WIDTH, require_number
from fkd.train.choices import Device, Loss
from fkd.train.guards import check_eval_paths, check_submit_paths, check_train_paths, check_weights_input

# The modules that do the work import torch and pandas (the train extra); each command imports
# them itself after checking the extra, so --help is instant and a light install gets one sentence.

train_app = typer.Typer(add_completion=False, help="Fit fkd's keypoint CNN and export TorchScript weights.")


@train_app.command(epilog="Example: fkd-train --data ../shared/data/300w/afw --output runs/afw --epochs 2")
def fkd_train(
    data: list[Path] = typer.Option(None, "--data", help="A Kaggle training.csv or a folder of photos with "
                                    "68-point .pts files (or a folder of such folders); repeat to combine."),
    output: Path = typer.Option(None, "--output", "-o", show_default=False,
                                help="Run folder: checkpoints, split, pictures, weights (default: runs/fkd)."),
    epochs: int = typer.Option(None, min=1, help="Epochs in all (default 150); with --resume, extends the run."),
    batch_size: int = typer.Option(64, min=1, max=MAX_BATCH, help="Faces per optimisation step."),
    lr: float = typer.Option(3e-3, help="Peak AdamW learning rate (cosine schedule)."),
    loss: Loss = typer.Option("smoothl1", help="Training loss; smoothl1 measured best (bench/RESULTS.md)."),
    width: int = typer.Option(32, min=8, max=MAX_WIDTH,
                              help="Network width; 32 is the shipped model (1.3M parameters)."),
    device: Device = typer.Option("auto", help="Where to train; auto takes the GPU when there is one."),
    seed: int = typer.Option(0, min=0, max=MAX_SEED,
                             help="Seeds weights, shuffling and augmentation; the split does not depend on it."),
    val_fraction: float = typer.Option(0.1, min=0.0, max=0.9, help="Share of faces held out, chosen by a hash "
                                       "of each face's name so the split is the same every run."),
    threads: int = typer.Option(None, min=1, max=MAX_THREADS, show_default=False,
                                help="CPU threads for torch (default: torch's choice)."),
    cache_dir: Path = typer.Option(Path(".cache"), help="Where decoded crops of .pts folders are cached."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --output from its last epoch."),
    out: Path = typer.Option(None, "--out", hidden=True, help="Deprecated name of --output."),
    test_fraction: float = typer.Option(0.1, min=0.0, max=0.5, help="Share of faces in the untouched test split "
                                        "(the hash buckets after validation's), reported once at the end."),
    negatives_from: Path = typer.Option(None, "--negatives-from", show_default=False,
                                        help="The shared folder (photos and clips) to cut the face-score "
                                             "negatives from; without it, stand-ins made from the faces' "
                                             "context crops."),
    negatives: float = typer.Option(0.25, min=0.0, max=4.0, help="Negative crops per face in each batch "
                                    "(0 trains no face score)."),
    ema: float = typer.Option(0.999, min=0.0, max=0.99999, help="Decay of the weights' moving average that "
                              "validation and export use (0: off)."),
    heatmap_weight: float = typer.Option(0.0, min=0.0, max=100.0, help="Weight of a Gaussian heatmap "
                                         "cross-entropy beside the point loss."),
    dense_weight: float = typer.Option(0.0, min=0.0, max=100.0, help="Weight of the loss of a second head "
                                       "that learns all 68 points of 300-W's photos (training only; not "
                                       "in the exported weights)."),
    score_only: bool = typer.Option(False, "--score-only", help="Refit only the face-score head of the --init "
                                    "weights (say on new negatives); their keypoints stay exactly as they were."),
    aux_share: float = typer.Option(0.25, min=0.0, max=0.9, help="Share of each batch drawn from 5-point "
                                    "faces (an MTFL --data folder), when there are any."),
    augment: str = typer.Option("default", help="Augmentation preset: default, strong (rotation +-30 deg, "
                                "scale +-20 %, occlusion, more blur), strong-small (strong, plus a quarter "
                                "of the crops at a 14-40 px face's resolution), or elastic (strong, plus smooth "
                                "non-rigid warps that change the face's shape)."),
    precision: str = typer.Option("auto", help="auto (bf16 autocast on CUDA, float32 elsewhere), fp32 or bf16."),
    compile_net: bool = typer.Option(False, "--compile", help="torch.compile the training forward pass "
                                     "(meant for a GPU; compiling takes a minute, and on a CPU it measured "
                                     "slower)."),
    save_every: int = typer.Option(10, min=1, help="Epochs between checkpoints and pictures (and always the "
                                   "last); --resume continues from the last saved one."),
    init: Path = typer.Option(None, "--init", show_default=False, help="Warm start: copy every tensor of "
                              "matching name and shape from fkd weights or a run's checkpoint."),
    time_budget: float = typer.Option(None, "--time-budget", min=1.0, show_default=False,
                                      help="Minutes of training at most: after each epoch, if --epochs would "
                                           "not fit, the run ends sooner (its cosine schedule with it)."),
    teacher: list[Path] = typer.Option(None, "--teacher", metavar="FILE", show_default=False,
                                       help="Distil: fkd weights (say a --width 64 run) whose flip-averaged "
                                            "keypoints are a second target for all 15 points of every face; "
                                            "give it more than once to learn the teachers' mean."),
    distill_weight: float = typer.Option(1.0, min=0.0, max=100.0,
                                         help="Weight of the teachers' target beside the labels'."),
    dlib_teacher: bool = typer.Option(False, "--dlib-teacher", help="A teacher of another family: dlib's "
                                      "68-point predictor answers once per training face (cached in "
                                      "--cache-dir), mixed with the --teacher's flip-averaged answer, as a "
                                      'second target. Needs the teacher extra: pip install "fkd[teacher]".'),
    dlib_share: float = typer.Option(0.5, min=0.0, max=1.0, help="dlib's weight in the --dlib-teacher mix; "
                                     "the --teacher weights have the rest."),
    dlib_300w: bool = typer.Option(True, "--dlib-300w/--no-dlib-300w", help="With --dlib-teacher, the "
                                   "15-point faces (300-W's) take the mix beside their labels."),
    dlib_mtfl: bool = typer.Option(True, "--dlib-mtfl/--no-dlib-mtfl", help="With --dlib-teacher, MTFL's "
                                   "faces take the mix for all 15 points where dlib agrees with their 5 hand "
                                   "marks."),
    points: int = typer.Option(15, "--points", help="15: Kaggle's keypoints on the brows-to-lips crop (the "
                               "shipped default model); 68: iBUG's 68 points on a crop of the whole face, jaw "
                               "included, from folders of .pts photos."),
) -> None:
    """Train on Kaggle CSVs, 300-W style photo folders and MTFL, then export the best epoch."""
    with reported_errors():
        require_train_extra("fkd-train")
        output = deprecated("--out", out, "--output", output) or Path("runs/fkd")
        require_number("--lr", lr, 0.0, 10.0, low_open=True)
        require_number("--val-fraction", val_fraction, 0.0, 0.9)
        if not data and not resume:
            raise UsageError("--data is required (a training.csv or a folder of .pts photos), "
                             "unless --resume is given.")
        if points not in (15, 68):
            raise UsageError(f"--points must be 15 or 68, not {points}.")
        if points == 68 and (teacher or dlib_teacher or dense_weight > 0):
            raise UsageError("--points 68 trains the 68 points themselves; --teacher, --dlib-teacher and "
                             "--dense-weight teach the 15-point model only.")
        if score_only and not init and not resume:
            raise UsageError("--score-only refits the face score of existing weights; give them with --init.")
        if dlib_teacher:
            from fkd.train.teachers.dlib_teacher import model_path

            model_path()  # the teacher extra, checked before anything is written
        for one in teacher or []:  # before the run folder is made, so a refusal leaves nothing behind
            check_weights_input(one, "--teacher")
        check_train_paths(data or [], output, cache_dir)  # all before torch's import: refusals are instant
        from fkd.train.config import TrainConfig
        from fkd.train.data.augment import AUGMENT_PRESETS
        from fkd.train.loop import train

        if augment not in AUGMENT_PRESETS:
            raise UsageError(f"--augment must be one of {', '.join(AUGMENT_PRESETS)}, not {augment!r}.")
        if precision not in ("auto", "fp32", "bf16"):
            raise UsageError(f"--precision must be auto, fp32 or bf16, not {precision!r}.")
        cfg = TrainConfig(data=[str(p) for p in data or []], out=str(output), epochs=epochs or 150,
                          batch_size=batch_size, lr=lr, loss=loss, width=width, device=device, seed=seed,
                          val_fraction=val_fraction, threads=threads, cache_dir=str(cache_dir) if cache_dir else None,
                          test_fraction=test_fraction, negatives=negatives, ema=ema, heatmap_weight=heatmap_weight,
                          dense_weight=dense_weight, score_only=score_only,
                          aux_share=aux_share, augment=AUGMENT_PRESETS[augment], precision=precision,
                          compile=compile_net, save_every=save_every, init=str(init) if init else None,
                          negatives_from=str(negatives_from) if negatives_from else None,
                          time_budget=60 * time_budget if time_budget else None,
                          teachers=[str(t) for t in teacher or []], distill_weight=distill_weight,
                          dlib_teacher=dlib_teacher, dlib_share=dlib_share, dlib_300w=dlib_300w,
                          dlib_mtfl=dlib_mtfl, points=points)
        train(cfg, resume=resume, epochs=epochs if resume else None)


WEIGHTS_HELP = "TorchScript weights written by fkd-train (default: the shipped weights/fkd.pt)."
POINTS_HELP = ("Which shipped model, 15 (the default) or 68 (weights/fkd68/fkd.pt); with --weights, the file must "
               "predict that many points.")

eval_app = typer.Typer(add_completion=False, help="Score fkd weights on labelled faces: RMSE96 and NME.")


@eval_app.command(epilog="Example: fkd-eval ../shared/data/300w/afw --export metrics.json")
def fkd_eval(
    data: Path = typer.Argument(..., metavar="DATA", show_default=False,
                                help="A Kaggle-format training.csv (empty cells are unlabelled points) or a folder "
                                     "of photos with 68-point .pts files (or a folder of such folders)."),
    weights: Path = typer.Option(None, "--weights", metavar="FILE", show_default=False, help=WEIGHTS_HELP),
    export: str | None = typer.Option(None, "--export", metavar="FILE|-", show_default=False,
                               help="Write the metrics as one JSON object to FILE (- for stdout) instead of the "
                                    "table: NME as a fraction, rmse96 in crop pixels, null where no point is "
                                    "labelled."),
    cache_dir: Path = typer.Option(Path(".cache"), help="Where decoded crops of .pts folders are cached."),
    as_json: bool = typer.Option(False, "--json", hidden=True, help="Deprecated: same as --export -."),
    flip: bool = typer.Option(True, "--flip/--no-flip", help=FLIP_HELP),
    points: int = typer.Option(None, "--points", metavar="15|68", show_default=False, help=POINTS_HELP),
) -> None:
    """Score weights on labelled faces: Kaggle's RMSE in 96-px crop units and NME (point error over the
    outer-eye-corner distance), overall and per keypoint, over the labelled points only.
    """
    with reported_errors():
        require_train_extra("fkd-eval")
        export = deprecated("--json", "-" if as_json else None, "--export -", export)
        check_eval_paths(data, weights, export)
        from fkd.train.evaluation.evaluate import evaluate, metrics_json, metrics_table

        with Progress(console=Console(stderr=True), transient=True) as bar:
            metrics = evaluate(data, weights, cache_dir, progress=bar, flip=flip, points=points)
        if export == "-":
            typer.echo(metrics_json(metrics))
        elif export:
            write_text_atomic(make_parent(Path(export), "--export"), metrics_json(metrics) + "\n")
            typer.echo(f"wrote {export}", err=True)
        else:
            Console().print(metrics_table(metrics))


submit_app = typer.Typer(add_completion=False, help="Write a Kaggle submission for the facial keypoints test set.")


@submit_app.command(epilog="Example: fkd-submit test.csv ../shared/data/kaggle/IdLookupTable.csv -o submission.csv")
def fkd_submit(
    test_csv: Path = typer.Argument(..., metavar="TEST_CSV", show_default=False,
                                    help="Kaggle's test.csv: ImageId and a 96x96 grey Image per row."),
    lookup_csv: Path = typer.Argument(..., metavar="LOOKUP_CSV", show_default=False,
                                      help="Kaggle's IdLookupTable.csv: which values to submit, and in what order."),
    output: Path = typer.Option(None, "--output", "-o", show_default=False, help="The submission file to write "
                                "(RowId,Location); replaced atomically (default: submission.csv)."),
    weights: Path = typer.Option(None, "--weights", metavar="FILE", show_default=False, help=WEIGHTS_HELP),
    out: Path = typer.Option(None, "--out", hidden=True, help="Deprecated name of --output."),
    flip: bool = typer.Option(True, "--flip/--no-flip", help=FLIP_HELP),
    points: int = typer.Option(None, "--points", metavar="15|68", show_default=False, help=POINTS_HELP),
) -> None:
    """Predict the keypoints of Kaggle's test faces and write the competition's submission file:
    one RowId,Location row per lookup row, in its order, each value clipped to the 96x96 image.
    """
    with reported_errors():
        require_train_extra("fkd-submit")
        output = deprecated("--out", out, "--output", output) or Path("submission.csv")
        check_submit_paths(test_csv, lookup_csv, weights, output)
        from fkd.model.artifact import Predictor
        from fkd.train.data.kaggle import read_test_csv
        from fkd.train.evaluation.evaluate import predict_crops
        from fkd.train.evaluation.submit import write_submission

        predictor = Predictor(weights, flip=flip, points=points)
        image_ids, images = read_test_csv(test_csv)
        # a 68-point model answers with the 15 Kaggle keypoints its 68 give (on Kaggle's own crops,
        # framed for the 15, so expect it to do worse there than on its own whole-face crops)
        keypoints = predictor.points.kaggle15(predict_crops(predictor, images)).astype("float32")
        rows = write_submission(image_ids, keypoints, lookup_csv, output, source=str(test_csv))
    typer.echo(f"wrote {output}: {rows} rows for {len(image_ids)} test images")
