"""Where training runs and in what precision: ``--device``, ``--precision`` and ``--compile``.

Each refuses a choice this machine cannot honour in one sentence (``FkdError``), before any
data is read.
"""

from __future__ import annotations

from typing import cast

import torch

from fkd.model.errors import FkdError

PRECISIONS = ("auto", "fp32", "bf16")


def pick_device(name: str) -> torch.device:
    """``--device``: auto takes CUDA, then Apple's MPS, then the CPU; a named one must be there."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FkdError("--device cuda: no CUDA GPU is available here; use --device auto or cpu.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise FkdError("--device mps: Apple's MPS backend is not available here; use --device auto or cpu.")
    if name not in ("cpu", "cuda", "mps"):
        raise FkdError(f"--device must be auto, cpu, cuda or mps, not {name!r}.")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 where it pays (CUDA), or where asked; None means plain float32."""
    if precision not in PRECISIONS:
        raise FkdError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def compile_view(view: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``torch.compile`` for ``--compile``, kept off channels_last on the CPU.

    Inductor lays convolutions out channels_last on its own, and on the CPU (torch 2.13) the
    backward pass of a channels_last 1x1 stride-2 convolution, the residual blocks' skip,
    corrupts memory: ``fkd-train --compile`` died with a segfault there. That is also why the
    eager path turns channels_last on for CUDA only.
    """
    if device.type == "cpu":  # an option of this compile only, not inductor's process-wide config
        return cast(torch.nn.Module, torch.compile(view, options={"layout_optimization": False}))
    return cast(torch.nn.Module, torch.compile(view))
