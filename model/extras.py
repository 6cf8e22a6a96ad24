"""Which optional packages a command needs, and the one sentence that says how to get them.

``pip install fkd`` is the light install: the live app, the photo tool and the Python API on
onnxruntime, without torch. Training, evaluation, the Kaggle submission and the TorchScript
runtime need the ``train`` extra. Checking with ``find_spec`` costs no import, so a command's
``--help`` and its first line of work stay as fast as the light install allows.
"""

from __future__ import annotations

from importlib.util import find_spec

from fkd.model.errors import FkdError


def install_command(extra: str) -> str:
    """The one line that installs fkd with ``extra``."""
    return f'pip install "fkd[{extra}]"'


TRAIN_INSTALL = install_command("train")
#: import names of the train extra (pyproject.toml's ``train`` list), in the order they are reported
TRAIN_PACKAGES = ("torch", "pandas", "matplotlib", "onnx")


def missing(packages: tuple[str, ...] = TRAIN_PACKAGES) -> list[str]:
    """The packages of ``packages`` that are not installed, found without importing any of them."""
    return [name for name in packages if find_spec(name) is None]


def require_extra(extra: str, what: str, packages: tuple[str, ...]) -> None:
    """Raise one sentence naming ``extra`` when ``what`` (a command, runtime or flag) lacks any
    of its ``packages``, found with ``find_spec``, so nothing is imported to check."""
    lacking = missing(packages)
    if lacking:
        raise FkdError(f"{what} needs the {extra} extra ({', '.join(lacking)} not installed): "
                       f"{install_command(extra)}.")


def require_train_extra(what: str, packages: tuple[str, ...] = TRAIN_PACKAGES) -> None:
    """Raise one sentence naming the extra when ``what`` (a command or a runtime) lacks its packages."""
    require_extra("train", what, packages)


#: import names of the ray extra (pyproject.toml's ``ray`` list: ``ray[data]``, which brings pyarrow)
RAY_PACKAGES = ("ray", "pyarrow")


def require_ray_extra(flag: str = "--ray") -> None:
    """Raise one sentence naming the ray extra when ``flag`` is given without Ray installed.

    Checked with ``find_spec`` like the train extra, so a light install answers at once and the
    commands that never use Ray never import it (tests/test_scale.py checks both).
    """
    require_extra("ray", flag, RAY_PACKAGES)


TEACHER_INSTALL = install_command("teacher")
#: import names of the teacher extra (pyproject.toml's ``teacher`` list: dlib-bin and the model files)
TEACHER_PACKAGES = ("dlib", "face_recognition_models")


def require_teacher_extra(flag: str = "--dlib-teacher") -> None:
    """Raise one sentence naming the teacher extra when ``flag`` is given without dlib or its
    model files; found without importing them, so nothing but the teacher ever imports dlib."""
    require_extra("teacher", flag, TEACHER_PACKAGES)
