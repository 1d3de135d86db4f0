"""Power cuts: a real upgrader process is killed (SIGKILL; TerminateProcess on Windows) at every
step boundary and at random moments; the installation must be as before or fully upgraded, and a
re-run must converge."""

from __future__ import annotations

import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import CRASH_POINTS_TRIED, GENERATIONS, content, database, file_digests, leftovers, query

from upgrader.backup import verify_backup
from upgrader.config import read_settings
from upgrader.installation import locate
from upgrader.journal import CRASH_ENV
from upgrader.restore import restore
from upgrader.upgrade import upgrade

pytestmark = pytest.mark.slow

#: How a killed process ends: by SIGKILL on POSIX; on Windows os.kill() is TerminateProcess with
#: the signal's number as exit code (what journal.crashpoint and kill() below both use).
KILL = getattr(signal, "SIGKILL", signal.SIGTERM)
KILLED = -KILL if os.name == "posix" else KILL

#: Boundaries of the upgrade's phases, in order. Up to BEFORE_SWAP, every file but the database is
#: byte-identical (the database has its WAL folded in: the same rows); "retired" is POSIX only.
BEFORE_SWAP = ["wal_folded", "work_copied", "backup_done", "migrated", "held", "aside_linked"]
PHASES = (
    BEFORE_SWAP
    + ["journal_swapping", "placed_0", "placed_1", "swapped", "journal_committed"]
    + (["retired"] if os.name == "posix" else [])
    + ["backup_complete"]
)
#: Generations whose era's config.json becomes config.yaml: two more files in the swap (then the manifest).
JSON_ERA = {1, 2, 3, 4}
SEED = 20261124


def operation_points(catalog, generation: int) -> list[str]:
    """The last operation of every step (step boundaries inside the transaction) and two random ones."""
    steps = catalog.path(generation, catalog.latest.generation)
    names = [f"operation_{s.label}_{s.operations[-1].target}" for s in steps]
    inside = [f"operation_{s.label}_{op.target}" for s in steps for op in s.operations[:-1]]
    return names + random.Random(SEED + generation).sample(inside, min(2, len(inside)))


def crash_cases() -> list[tuple[int, str]]:
    from upgrader.loader import load_catalog

    catalog = load_catalog()
    return [
        (g, point)
        for g in GENERATIONS
        for point in PHASES + (["placed_2", "placed_3"] if g in JSON_ERA else []) + operation_points(catalog, g)
    ]


def run_upgrader(root: Path, env_point: str | None = None, kill_after: float | None = None) -> int:
    env = dict(os.environ)
    if env_point:
        env[CRASH_ENV] = env_point
    process = subprocess.Popen(
        [sys.executable, "-m", "upgrader", "--data-dir", str(root), "--yes"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if kill_after is not None:
        time.sleep(kill_after)
        try:
            os.kill(process.pid, KILL)
        except OSError:  # Windows: it had already exited
            pass
    return process.wait(timeout=120)


def user_files(root: Path) -> dict[str, str]:
    """Every file but backups and wems-upgrade's own working files (a crash may leave those)."""
    return {
        name: digest for name, digest in file_digests(root, except_backups=True).items() if "wems-upgrade" not in name
    }


def settings(root: Path) -> dict:
    """The settings Wareflow EMS reads: from the first of config.yaml, config.yml, config.json."""
    found = locate(root, environ={}).config
    return read_settings(found)[1] if found else {}


def assert_before_or_after(root: Path, original: tuple, upgraded: tuple) -> None:
    assert content(root) in (original[0], upgraded[0]), "the database must be as before or fully upgraded"
    assert settings(root) in (original[1], upgraded[1]), "the app must read the old or the new settings"


def assert_converges(root: Path, upgraded: tuple, original: tuple | None = None) -> None:
    result = upgrade(locate(root, environ={}))
    assert result.status in ("upgraded", "up_to_date")
    assert (content(root), settings(root)) == upgraded
    assert leftovers(root) == []
    assert_backups_complete(root, original)


def assert_backups_complete(root: Path, original: tuple | None) -> None:
    """Exactly one backup (the crashed run's, if it committed, else the re-run's), complete, private,
    verifiable, holding the original rows and settings."""
    folders = sorted((root / "backups").iterdir())
    assert len(folders) == 1, f"one complete backup, no incomplete one: {[f.name for f in folders]}"
    backup = verify_backup(folders[0])
    assert sorted(p.name for p in folders[0].iterdir() if p.is_file()) == sorted(
        [f["name"] for f in backup.manifest["files"] if "/" not in f["name"]] + ["manifest.json"]
    )
    if os.name == "posix":
        assert {stat.S_IMODE(p.stat().st_mode) for p in folders[0].rglob("*") if p.is_file()} == {0o600}
    if original:
        copy = root.parent / f"{root.name}-restored"
        shutil.copytree(root, copy)
        restore(locate(copy, environ={}), copy / "backups" / folders[0].name, other_installation=True)
        assert (content(copy), settings(copy)) == original


@pytest.fixture(scope="session")
def upgraded_state(templates, tmp_path_factory):
    """(content, settings) of each generation's installation after a clean upgrade."""
    import shutil

    made = {}

    def get(generation: int) -> tuple:
        if generation not in made:
            root = tmp_path_factory.mktemp("clean-crash") / f"g{generation}"
            shutil.copytree(templates(generation), root)
            upgrade(locate(root, environ={}))
            made[generation] = (content(root), settings(root))
        return made[generation]

    return get


@pytest.mark.parametrize("generation,point", crash_cases())
def test_a_kill_at_a_step_boundary_leaves_before_or_after_and_a_rerun_converges(
    install, upgraded_state, generation, point
):
    root = install(generation)
    original_files, original = user_files(root), (content(root), settings(root))
    code = run_upgrader(root, env_point=point)
    assert code == KILLED, f"crash point {point} was never reached (exit {code})"
    CRASH_POINTS_TRIED.append(f"g{generation}:{point}")
    assert_before_or_after(root, original, upgraded_state(generation))
    if point in BEFORE_SWAP or point.startswith("operation_"):
        assert content(root) == original[0]
        assert without_database(user_files(root)) == without_database(original_files), (
            "before the swap, every other file is byte-for-byte as it was"
        )
    assert_converges(root, upgraded_state(generation), original)


def without_database(files: dict[str, str]) -> dict[str, str]:
    return {name: digest for name, digest in files.items() if not Path(name).name.startswith("employee_manager.db")}


def run_length(install, generation: int) -> float:
    root = install(generation, name="timing")
    started = time.monotonic()
    assert run_upgrader(root) == 0
    return time.monotonic() - started


@pytest.mark.parametrize("generation", GENERATIONS)
def test_a_kill_at_random_moments_leaves_before_or_after(install, upgraded_state, generation):
    """Kills at random moments within the measured length of a run; only real kills count."""
    rng = random.Random(SEED * generation)
    length, kills, attempt = run_length(install, generation), 0, 0
    while kills < 3:
        attempt += 1
        assert attempt <= 20, "could not kill a run in time"
        root = install(generation, name=f"random-{attempt}")
        original = (content(root), settings(root))
        if run_upgrader(root, kill_after=rng.uniform(0.1, 0.95) * length) != KILLED:
            continue
        kills += 1
        CRASH_POINTS_TRIED.append(f"g{generation}:random")
        assert_before_or_after(root, original, upgraded_state(generation))
        assert_converges(root, upgraded_state(generation))


RESTORE_POINTS = ["restore_saved", "journal_swapping", "placed_0", "placed_1", "restore_swapped", "journal_committed"]


@pytest.mark.parametrize("point", RESTORE_POINTS)
def test_a_kill_during_a_restore_leaves_before_or_restored(install, point):
    root = install(2)
    original = (content(root), settings(root))
    backup = upgrade(locate(root, environ={})).backup.folder
    upgraded = (content(root), settings(root))
    env = dict(os.environ, **{CRASH_ENV: point})
    code = subprocess.run(
        [sys.executable, "-m", "upgrader", "--data-dir", str(root), "--restore", str(backup), "--yes"],
        env=env,
        capture_output=True,
    ).returncode
    assert code == KILLED, f"crash point {point} was never reached (exit {code})"
    CRASH_POINTS_TRIED.append(f"restore:{point}")
    assert (content(root), settings(root)) in (upgraded, original)
    restore(locate(root, environ={}), backup)
    assert (content(root), settings(root)) == original
    assert (root / "config.json").read_bytes() == (backup / "config.json").read_bytes()
    assert not (root / "config.yaml").exists()


def test_an_app_started_after_a_crash_before_any_file_was_placed_does_not_block(install, upgraded_state):
    from test_in_use import add_lock

    root = install(3)
    assert run_upgrader(root, env_point="journal_swapping") == KILLED
    add_lock(root, minutes_ago=30)
    result = upgrade(locate(root, environ={}))
    assert result.recovered and "changed nothing" in result.recovered
    assert result.status == "upgraded"


def test_a_crash_mid_swap_then_the_app_writing_the_new_database_is_never_undone(install):
    """Undoing would put the old database back beside the new one's -wal: its rows lost, and SQLite
    would replay those frames into the old file. With a -wal there and a settings file edited since
    (so the swap cannot be finished either), the upgrader stops and changes nothing."""
    root = install(2)
    assert run_upgrader(root, "placed_0") == KILLED
    writer = (
        "import apsw, os, sys\n"
        "c = apsw.Connection(sys.argv[1])\n"
        "c.execute('PRAGMA journal_mode=WAL').fetchall()\n"
        "c.execute(\"UPDATE employees SET first_name = 'Written after the crash' WHERE rowid = "
        '(SELECT min(rowid) FROM employees)")\n'
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", writer, str(database(root))], check=True)
    assert Path(f"{database(root)}-wal").stat().st_size > 0
    (root / "config.json").write_text((root / "config.json").read_text(encoding="utf-8") + " ", encoding="utf-8")
    before = user_files(root)
    assert run_upgrader(root) == 13
    assert user_files(root) == before
    names = [row[0] for row in query(root, "SELECT first_name FROM employees")]
    assert "Written after the crash" in names
