"""Every console script declared in pyproject.toml loads, and its --help speaks the shared
vocabulary and ends with an example that parses (and names inputs that exist in a checkout)."""

import shlex
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import typer.main
from conftest import REPO
from typer.testing import CliRunner

SCRIPTS = ("fkd-train", "fkd-eval", "fkd-submit", "fkd-live", "fkd-predict")

#: the one name of each concept, and the commands that have it
VOCABULARY = {
    "--output": {"fkd-train", "fkd-submit", "fkd-live", "fkd-predict"},
    "--export": {"fkd-eval", "fkd-live", "fkd-predict"},
    "--weights": {"fkd-eval", "fkd-submit", "fkd-live", "fkd-predict"},
    "--threads": {"fkd-train", "fkd-live", "fkd-predict"},
    "--cache-dir": {"fkd-train", "fkd-eval"},
    "--workers": {"fkd-live", "fkd-predict"},
    "--ray": {"fkd-live", "fkd-predict"},
    "--serve": {"fkd-live"},
    "--token": {"fkd-live"},
    "--points": {"fkd-train", "fkd-eval", "fkd-submit", "fkd-live", "fkd-predict"},
}
#: old spellings: still accepted for one release, never shown in --help
DEPRECATED = {"--out", "--json"}


def installed_app(script: str):
    """The object the console script runs, found through the installed package's entry points."""
    found = [ep for ep in entry_points(group="console_scripts") if ep.name == script]
    if not found:
        pytest.skip(f"{script} is not installed; run `pip install -e .` in the checkout")
    return found[0].load()


def help_text(script: str) -> str:
    result = CliRunner().invoke(installed_app(script), ["--help"], prog_name=script, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.stdout


def visible_options(script: str) -> dict[str, object]:
    """Option name -> click parameter, for every name a user sees in --help."""
    command = typer.main.get_command(installed_app(script))
    return {name: p for p in command.params if not getattr(p, "hidden", False) for name in p.opts}


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_ends_with_an_example(script: str) -> None:
    text = help_text(script)
    assert f"Usage: {script}" in text
    last = [line.strip(" │") for line in text.splitlines() if line.strip(" │")][-1]
    assert last.startswith(f"Example: {script} "), last


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_example_parses_and_its_inputs_exist(script: str) -> None:
    """The example's flags and values are accepted, and any ../shared input it names is there."""
    last = [line.strip() for line in help_text(script).splitlines() if line.strip()][-1]
    args = shlex.split(last.split("Example:", 1)[1])[1:]
    command = typer.main.get_command(installed_app(script))
    command.make_context(script, list(args))  # raises click's UsageError on an unknown flag or bad value
    for arg in args:
        if arg.startswith("../shared/") and (REPO.parent / "shared").is_dir():
            assert (REPO / arg).exists(), f"{script}'s example names {arg}, which is missing"


@pytest.mark.parametrize("script", SCRIPTS)
def test_one_vocabulary(script: str) -> None:
    options = visible_options(script)
    for name, commands in VOCABULARY.items():
        assert (name in options) == (script in commands), f"{script}: {name}"
    assert not DEPRECATED & set(options), f"{script} shows a deprecated spelling"
    if "--output" in options:
        assert "-o" in options["--output"].opts  # type: ignore[attr-defined]
    if "--threads" in options:
        assert "1<=x<=64" in " ".join(help_text(script).split())


def test_fixed_choices_are_listed() -> None:
    text = help_text("fkd-train")
    assert "<wing|smoothl1|mse|smoothl1-eyes>" in text and "<auto|cpu|cuda|mps>" in text


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_and_argument_is_documented(script: str) -> None:
    """No bare flags: each parameter carries a help text (typer shows it beside the name)."""
    command = typer.main.get_command(installed_app(script))
    for param in command.params:
        assert getattr(param, "help", None), f"{script}: {param.name} has no help text"


def test_console_script_runs_as_installed() -> None:
    script = Path(sys.executable).parent / "fkd-submit"
    if not script.exists():
        pytest.skip(f"the fkd-submit console script is not installed beside {sys.executable}")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Example:" in proc.stdout and "Traceback" not in proc.stderr
