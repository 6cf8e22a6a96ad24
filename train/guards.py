"""What fkd-train, fkd-eval and fkd-submit check before any work, with model/io/paths.py's checks.

Training can take hours, so everything that can be refused from the command line alone is
refused first: missing or non-regular inputs, a run folder that is a file or cannot be made,
and outputs that would overwrite an input.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fkd.model.errors import FkdError, UsageError
from fkd.model.io.files import remove_stale_temporaries
from fkd.model.io.outputs import temporary_in_use
from fkd.model.io.paths import check_input_file, check_outputs, make_folder, shown


def check_data(paths: Sequence[Path], flag: str = "--data") -> None:
    """Each data path is a folder or a readable regular file (a FIFO would hang the CSV reader)."""
    for path in paths:
        if not Path(path).exists():
            raise FkdError(f"{shown(path)}: no such file or folder.")
        if not Path(path).is_dir():
            check_input_file(path, flag, "training.csv or a folder of .pts photos")


def check_weights_input(path: Path, flag: str) -> None:
    """A weights file training reads (--teacher): there, and a readable regular file."""
    if not Path(path).exists():
        raise FkdError(f"{flag} {shown(path)}: no such file.")
    check_input_file(path, flag, "fkd weights file")


def check_train_paths(data: Sequence[Path], output: Path, cache_dir: Path | None) -> None:
    """Inputs first, then the run folder: not a file, not an input, and creatable."""
    check_data(data)
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {shown(output)} is a file; fkd-train wants a run folder.")
    for path in data:
        if Path(path).resolve() == output.resolve():
            raise UsageError(f"--output {shown(output)} is also --data; give the run its own folder.")
    if cache_dir is not None and Path(cache_dir).exists() and not Path(cache_dir).is_dir():
        raise UsageError(f"--cache-dir {shown(cache_dir)} is a file; give a folder (or a new name).")
    make_folder(output, "--output")
    remove_stale_temporaries(output, temporary_in_use)  # a run killed with -9 left its half-written files


def check_submit_paths(test_csv: Path, lookup_csv: Path, weights: Path | None, output: Path) -> None:
    """Both CSVs readable regular files; the submission neither a folder, nor one of the inputs."""
    for path, name in ((test_csv, "TEST_CSV"), (lookup_csv, "LOOKUP_CSV")):
        if not Path(path).exists():
            raise FkdError(f"{shown(path)}: no such file.")  # the CSV readers' own wording
        check_input_file(path, name, "CSV file")
    check_outputs([("--output", output)], [test_csv, lookup_csv, *([weights] if weights else [])])


def check_eval_paths(data: Path, weights: Path | None, export: str | None) -> None:
    """DATA a folder or a readable regular file; --export FILE (not -) neither a folder nor an input."""
    check_data([data], "DATA")
    if export and export != "-":
        check_outputs([("--export", Path(export))], [data, *([weights] if weights else [])])
