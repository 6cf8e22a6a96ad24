"""The fixed choices of fkd-train's flags, as types: typer lists them in --help and refuses others.

Kept apart from ``fkd.train.loop`` so that the command line can name them without importing torch.
"""

from typing import Literal, get_args

#: Training losses, compared in bench/RESULTS.md ("Loss choice"); smoothl1 measured best.
#: smoothl1-eyes is smooth-L1 on errors rescaled by each face's eye distance, as NME weighs them.
Loss = Literal["wing", "smoothl1", "mse", "smoothl1-eyes"]
LOSSES: tuple[str, ...] = get_args(Loss)

#: Where training runs; auto takes a CUDA GPU or Apple MPS when there is one, else the CPU.
Device = Literal["auto", "cpu", "cuda", "mps"]
DEVICES: tuple[str, ...] = get_args(Device)
