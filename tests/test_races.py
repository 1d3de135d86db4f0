"""A committed row is never lost: the app (a real second process, tests/app_writer.py) commits while
an upgrade, a dry run or a restore runs; the run either keeps every committed row or refuses (exit 6)
with the original database still holding it. Settings edited meanwhile are never lost either; work
copies are never more readable than the original."""

from __future__ import annotations

import os
import random
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import apsw
import pytest

from conftest import database, file_digests, query
from upgrader import errors, upgrade as upgrade_module, restore as restore_module
from upgrader.cli import main
from upgrader.errors import UpgradeError
from upgrader.installation import locate
from upgrader.privacy import is_private
from upgrader.restore import restore
from upgrader.upgrade import upgrade

WRITER = Path(__file__).with_name("app_writer.py")
OK, IN_USE = errors.EXIT_OK, errors.EXIT_IN_USE


def without_wal(root: Path) -> Path:
    """Fold the -wal into the database and delete it, as the app does when it closes."""
    db = database(root)
    with closing(apsw.Connection(str(db))) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    assert not Path(f"{db}-wal").exists()
    return db


def writer_command(root: Path, committed: Path, *, count: int = 1, end: str = "abandon", start: float = 0.0,
                   pause: float = 0.0, seed: int | None = None) -> list[str]:
    command = [sys.executable, str(WRITER), str(database(root)), str(committed), "--count", str(count),
               "--end", end, "--start", str(start), "--pause", str(pause)]
    return command + (["--seed", str(seed)] if seed is not None else [])


def app_commits(root: Path, committed: Path, end: str = "abandon") -> None:
    """The app commits one row from a process of its own, then is killed (abandon) or closes (close)."""
    run = subprocess.run(writer_command(root, committed, end=end), capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert recorded(committed)


def recorded(committed: Path) -> list[str]:
    return committed.read_text(encoding="utf-8").split() if committed.exists() else []


def markers(root: Path) -> set[str]:
    return {row[0] for row in query(root, "SELECT id FROM employees WHERE id LIKE 'race-%'")}


def generation_of(root: Path) -> int:
    return query(root, "SELECT count(*) FROM sqlite_master WHERE name = 'wems_upgrade_history'")[0][0]


def run_library(action) -> int:
    try:
        action()
        return OK
    except UpgradeError as error:
        return error.exit_code


# --- one commit placed at each phase of an upgrade ---------------------------------------------

PHASES = ["opened", "question", "backup_done", "work_copied", "migrated"]


def place_commit(monkeypatch, phase: str, commit) -> dict:
    """Make `commit` run once at `phase` of the next upgrade; return the confirm callback to pass."""
    if phase == "opened":
        real = upgrade_module.make_plan
        monkeypatch.setattr(upgrade_module, "make_plan", lambda *a, **k: (commit(), real(*a, **k))[1])
    elif phase != "question":
        real_point = upgrade_module.crashpoint
        monkeypatch.setattr(upgrade_module, "crashpoint", lambda name: (name == phase and commit(), real_point(name)))
    return {"confirm": (lambda result: commit())} if phase == "question" else {}


@pytest.mark.parametrize("end", ["abandon", "close"])
@pytest.mark.parametrize("phase", PHASES)
def test_a_row_committed_at_any_phase_of_an_upgrade_is_never_lost(install, tmp_path, monkeypatch, phase, end):
    root = install(3)
    without_wal(root)
    committed = tmp_path / "committed.txt"
    options = place_commit(monkeypatch, phase, lambda: app_commits(root, committed, end))
    code = run_library(lambda: upgrade(locate(root, environ={}), **options))
    assert recorded(committed), f"the app never committed at {phase}"
    assert code == IN_USE, "a database changed since it was first opened must be refused"
    assert set(recorded(committed)) <= markers(root)
    assert generation_of(root) == 0, "the refused upgrade left the database as it was"


@pytest.mark.parametrize("phase", ["opened", "work_copied"])
def test_a_row_committed_during_a_dry_run_makes_it_refuse(install, tmp_path, monkeypatch, phase):
    root = install(3)
    without_wal(root)
    committed = tmp_path / "committed.txt"
    place_commit(monkeypatch, phase, lambda: app_commits(root, committed))
    code = run_library(lambda: upgrade(locate(root, environ={}), dry_run=True))
    assert code == IN_USE and set(recorded(committed)) <= markers(root)


def test_a_row_in_the_wal_when_the_upgrade_starts_is_upgraded(install, tmp_path):
    root = install(3)
    without_wal(root)
    committed = tmp_path / "committed.txt"
    app_commits(root, committed)
    assert Path(f"{database(root)}-wal").stat().st_size
    upgrade(locate(root, environ={}))
    assert set(recorded(committed)) <= markers(root) and generation_of(root) == 1
