"""The README is a landing page whose examples work: its fkd-live and fkd-predict lines and its
Python block run for real, as a reader would paste them, and its links lead somewhere.

Where an example names a camera (``--camera 0``), a shared clip stands in for it, so the line
runs on a machine without one; ``../shared`` becomes the checkout's sibling folder, since each
example runs in a scratch folder of its own (its outputs land there). Nothing else is changed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

README = REPO / "README.md"
CLIP = "video/webcam_320x240.mp4"  # 179 frames: a camera's stand-in that runs in seconds
COMMANDS = ("fkd-live", "fkd-predict")


def text() -> str:
    return README.read_text(encoding="utf-8")


def section(title: str) -> str:
    """The README's ``## title`` section, up to the next ``## ``."""
    assert f"\n## {title}\n" in text(), f"README.md has no section ## {title}"
    return text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def blocks(body: str, language: str) -> list[str]:
    return re.findall(r"```" + language + r"\n(.*?)```", body, flags=re.S)


def shell_examples() -> list[str]:
    """The fkd-live and fkd-predict lines a reader is shown: the fresh machine's main job (the part
    after pip) and the lines of the commands' tour."""
    fresh = blocks(section("Two commands for a fresh machine"), "")
    assert len(fresh) == 2, "the fresh-machine section should hold the two commands"
    lines = [fresh[0].strip().rsplit(" && ", 1)[1]]
    for block in blocks(section("The five commands"), "bash"):
        lines += [line.strip() for line in block.splitlines() if line.strip().startswith(COMMANDS)]
    return lines


def runnable(line: str, shared: Path) -> list[str]:
    """The example as argv: a shared clip where it names a camera, ../shared made absolute."""
    argv = shlex.split(line, comments=True)
    if "--camera" in argv:
        at = argv.index("--camera")
        argv[at : at + 2] = ["--video", str(shared / CLIP)]
    return [str(shared) + arg[len("../shared") :] if arg.startswith("../shared") else arg for arg in argv]


def test_the_readme_stays_a_landing_page() -> None:
    assert len(text().splitlines()) <= 250, "README.md is a landing page: the details go in docs/"


def test_the_readme_links_lead_to_files() -> None:
    for target in re.findall(r"\]\(([^)#\s]+)", text()):
        if "://" not in target:
            assert (REPO / target).exists(), f"README.md links to {target}, which is not there"


def test_the_examples_are_found() -> None:
    lines = shell_examples()
    assert lines[0] == "fkd-live --camera 0"
    assert {line.split()[0] for line in lines} == set(COMMANDS), lines


@pytest.mark.parametrize("line", shell_examples())
def test_the_readme_shell_example_runs(line: str, shared: Path, tmp_path: Path) -> None:
    argv = runnable(line, shared)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):  # no window: fkd-live goes headless, as on a server
        env.pop(name, None)
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{line}\n{proc.stderr[-3000:]}"
    if "--export" in argv:
        records = [json.loads(row) for row in (tmp_path / argv[argv.index("--export") + 1]).read_text().splitlines()]
        assert records and all(record["version"] == 1 for record in records)
        assert sum(len(record["faces"]) for record in records) > 0, "the example found no face"
    if "-o" in argv:
        out = tmp_path / argv[argv.index("-o") + 1]
        assert (out.is_file() and out.stat().st_size > 0) or (out.is_dir() and any(out.iterdir())), out


def test_the_readme_python_example_runs_as_a_script(shared: Path) -> None:
    """The "Python API" block in a fresh interpreter, from the checkout root as the README says."""
    (code,) = blocks(section("Python API"), "python")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = proc.stdout.splitlines()  # the photo holds one face; id, box, score, nose, yaw
    assert re.fullmatch(r"0 \(\d+, \d+, \d+, \d+\) [\d.]+ \([\d.]+, [\d.]+\) -?[\d.]+", line), line
