"""The fixed choices of fkd-train's flags, as types: typer lists them in --help and refuses others.

Kept apart from ``fkd.train.loop`` so that the command line can name them without importing torch.
"""

from typing import Literal, get_args

#: Training losses, compared in bench/RESULTS.md ("Loss choice"); smoothl1 measured best.
Loss = Literal["wing", "smoothl1", "mse"]
LOSSES: tuple[str, ...] = get_args(Loss)

#: Where training runs; auto takes a CUDA GPU or Apple MPS when there is one, else the CPU.
Device = Literal["auto", "cpu", "cuda", "mps"]
DEVICES: tuple[str, ...] = get_args(Device)
