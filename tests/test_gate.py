"""The code gate: ruff (lint and format) and mypy, exactly as pre-commit runs them.

Configured in pyproject.toml. Skipped only where the tools are not installed (the Windows lane's
embedded Python: the Linux suite of `.ci/run` runs them on the same files)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["upgrader", "tests", "bench", "build", "migrations"]


def _tool(module: str, *args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e .[dev])")
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=600
    )


def test_ruff_finds_nothing_to_fix():
    run = _tool("ruff", "check", "--no-cache", *PATHS)
    assert run.returncode == 0, run.stdout + run.stderr


def test_code_is_formatted_by_ruff():
    run = _tool("ruff", "format", "--check", "--no-cache", *PATHS)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("platform", ["linux", "win32"])
def test_mypy_finds_no_type_error(platform):
    run = _tool("mypy", "--platform", platform, "--no-incremental")
    assert run.returncode == 0, run.stdout + run.stderr
