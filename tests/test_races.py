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
from support import database, file_digests, query

from upgrader import errors
from upgrader import restore as restore_module
from upgrader import upgrade as upgrade_module
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


def writer_command(
    root: Path,
    committed: Path,
    *,
    count: int = 1,
    end: str = "abandon",
    start: float = 0.0,
    pause: float = 0.0,
    seed: int | None = None,
) -> list[str]:
    command = [
        sys.executable,
        str(WRITER),
        str(database(root)),
        str(committed),
        "--count",
        str(count),
        "--end",
        end,
        "--start",
        str(start),
        "--pause",
        str(pause),
    ]
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


@pytest.mark.parametrize("end", ["abandon", "close"])
def test_an_app_started_while_the_database_is_held_never_writes_into_the_replaced_file(
    install, tmp_path, monkeypatch, end
):
    """It waits for our lock with the old file open; once let go, that file is no database any more."""
    root = install(3)
    without_wal(root)
    committed, writers = tmp_path / "committed.txt", []
    real_point = upgrade_module.crashpoint

    def point(name):
        if name == "held":
            writers.append(subprocess.Popen(writer_command(root, committed, end=end), stderr=subprocess.PIPE))
            time.sleep(0.5)
        real_point(name)

    monkeypatch.setattr(upgrade_module, "crashpoint", point)
    code = run_library(lambda: upgrade(locate(root, environ={})))
    writers[0].communicate(timeout=60)
    assert code in (OK, IN_USE)
    assert set(recorded(committed)) <= markers(root), "a row committed into the replaced file is lost"
    assert query(root, "PRAGMA integrity_check") == [("ok",)]


# --- a restore -----------------------------------------------------------------------------------

RESTORE_PHASES = ["opened", "restore_saved", "before_swap"]


def place_restore_commit(monkeypatch, phase: str, commit) -> None:
    if phase == "opened":
        real_backup = restore_module.create_backup
        monkeypatch.setattr(restore_module, "create_backup", lambda *a, **k: (commit(), real_backup(*a, **k))[1])
    elif phase == "restore_saved":
        real_point = restore_module.crashpoint
        monkeypatch.setattr(restore_module, "crashpoint", lambda name: (name == phase and commit(), real_point(name)))
    else:
        real_temps = restore_module._write_temps
        monkeypatch.setattr(restore_module, "_write_temps", lambda *a: (commit(), real_temps(*a)))


def upgraded_with_backup(install) -> tuple[Path, Path]:
    root = install(2)
    backup = upgrade(locate(root, environ={})).backup.folder
    without_wal(root)
    return root, backup


@pytest.mark.parametrize("end", ["abandon", "close"])
@pytest.mark.parametrize("phase", RESTORE_PHASES)
def test_a_row_committed_during_a_restore_is_never_lost(install, tmp_path, monkeypatch, phase, end):
    root, backup = upgraded_with_backup(install)
    committed = tmp_path / "committed.txt"
    place_restore_commit(monkeypatch, phase, lambda: app_commits(root, committed, end))
    code = run_library(lambda: restore(locate(root, environ={}), backup))
    assert recorded(committed), f"the app never committed at {phase}"
    assert code == IN_USE, "a database changed since the restore first read it must be refused"
    assert set(recorded(committed)) <= markers(root) and generation_of(root) == 1


# --- settings edited meanwhile ---------------------------------------------------------------------

EDITED = '{"alerts": {"critical_days": 7, "warning_days": 30, "info_days": 60}, "edited": "pendant la mise à jour"}\n'


@pytest.mark.parametrize("phase", ["question", "backup_done", "migrated"])
def test_a_settings_file_edited_during_an_upgrade_is_never_lost(install, monkeypatch, phase):
    root = install(2)
    edit = lambda: (root / "config.json").write_text(EDITED, encoding="utf-8")  # noqa: E731
    options = place_commit(monkeypatch, phase, edit)
    assert run_library(lambda: upgrade(locate(root, environ={}), **options)) == IN_USE
    assert (root / "config.json").read_text(encoding="utf-8") == EDITED
    assert not (root / "config.yaml").exists() and generation_of(root) == 0


def test_a_settings_file_created_during_an_upgrade_is_never_lost(install, monkeypatch):
    root = install(2)
    options = place_commit(monkeypatch, "migrated", lambda: (root / "config.yml").write_text("a: 1\n"))
    assert run_library(lambda: upgrade(locate(root, environ={}), **options)) == IN_USE
    assert (root / "config.yml").read_text() == "a: 1\n" and (root / "config.json").exists()


def test_a_settings_file_edited_during_a_restore_is_never_lost(install, monkeypatch):
    root, backup = upgraded_with_backup(install)
    edited = "# edited meanwhile\n" + (root / "config.yaml").read_text(encoding="utf-8")
    place_restore_commit(
        monkeypatch, "before_swap", lambda: (root / "config.yaml").write_text(edited, encoding="utf-8")
    )
    assert run_library(lambda: restore(locate(root, environ={}), backup)) == IN_USE
    assert (root / "config.yaml").read_text(encoding="utf-8") == edited and generation_of(root) == 1


# --- copies are never more readable than the original ----------------------------------------------

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
def test_the_work_copy_and_new_settings_are_never_more_readable_than_the_originals(install, monkeypatch):
    root = install(2)
    os.chmod(database(root), 0o600)
    os.chmod(root / "config.json", 0o600)
    seen = {}
    real_migrate = upgrade_module.migrate_copy

    def migrate(work, *args, **kwargs):
        seen["work"] = mode(work)
        return real_migrate(work, *args, **kwargs)

    def point(name):
        if name == "held":
            seen["settings"] = mode(root / "config.yaml.wems-upgrade-tmp")

    monkeypatch.setattr(upgrade_module, "migrate_copy", migrate)
    monkeypatch.setattr(upgrade_module, "crashpoint", point)
    old_umask = os.umask(0o022)
    try:
        upgrade(locate(root, environ={}))
    finally:
        os.umask(old_umask)
    assert seen == {"work": 0o600, "settings": 0o600}


@posix_only
def test_the_files_a_restore_writes_are_never_more_readable_than_the_originals(install, monkeypatch):
    root, backup = upgraded_with_backup(install)
    os.chmod(database(root), 0o600)
    seen = {}
    real_copy_mode = restore_module.copy_owner_and_mode

    def copy_owner_and_mode(source, dest):
        seen[dest.name] = mode(dest)
        return real_copy_mode(source, dest)

    monkeypatch.setattr(restore_module, "copy_owner_and_mode", copy_owner_and_mode)
    old_umask = os.umask(0o022)
    try:
        restore(locate(root, environ={}), backup)
    finally:
        os.umask(old_umask)
    assert seen[database(root).name + restore_module.TEMP_SUFFIX] == 0o600, "a 0600 database is never copied 0644"
    assert mode(database(root)) == 0o600


def test_a_dry_run_works_in_a_private_folder_of_its_own_and_removes_it(install, monkeypatch):
    root = install(3)
    seen = {}
    real_migrate = upgrade_module.migrate_copy

    def migrate(work, *args, **kwargs):
        seen["folder"], seen["private"] = work.parent, is_private(work.parent)
        return real_migrate(work, *args, **kwargs)

    monkeypatch.setattr(upgrade_module, "migrate_copy", migrate)
    assert upgrade(locate(root, environ={}), dry_run=True).status == "dry_run"
    assert seen["folder"] != Path(tempfile.gettempdir()) and seen["folder"].parent == Path(tempfile.gettempdir())
    assert seen["private"], "the dry run's copy must sit in a folder only its user can open"
    assert not seen["folder"].exists()


# --- the command line ------------------------------------------------------------------------------


def test_a_dry_run_of_a_restore_is_refused_as_a_usage_error(install, capsys):
    root, backup = upgraded_with_backup(install)
    before = file_digests(root)
    assert main(["--dry-run", "--restore", str(backup), "--yes", "--data-dir", str(root)]) == errors.EXIT_USAGE
    assert "--dry-run cannot be combined with --restore" in capsys.readouterr().err
    assert file_digests(root) == before and generation_of(root) == 1


# --- the adversarial campaign: a real writer at random moments, killed at random moments -------------

#: Fixed under CI (a failure there is reproducible); a developer's run explores new seeds.
QUICK_SEEDS = [11, 23, 37, 41, 59, 64]
SLOW_SEEDS = list(range(100, 130))
MODES = ["upgrade", "upgrade", "dry_run", "restore"]
CAMPAIGN: list[str] = []


def seeds(fixed: list[int]) -> list[int]:
    if os.environ.get("CI"):
        return fixed
    base = random.SystemRandom().randrange(10**6)
    return [base + n for n in range(len(fixed))]


@pytest.fixture(scope="module")
def run_length(templates, tmp_path_factory) -> float:
    """Seconds a real upgrader process takes on a small installation, start-up included."""
    import shutil

    root = tmp_path_factory.mktemp("race-timing") / "site"
    shutil.copytree(templates(3), root)
    started = time.monotonic()
    assert subprocess.run(upgrader_command(root, "upgrade", None), capture_output=True, timeout=120).returncode == 0
    return time.monotonic() - started


def upgrader_command(root: Path, mode: str, backup: Path | None) -> list[str]:
    extra = {"upgrade": [], "dry_run": ["--dry-run"], "restore": ["--restore", str(backup)]}[mode]
    return [sys.executable, "-m", "upgrader", "--yes", "--data-dir", str(root), *extra]


def prepare(install, rng: random.Random, mode: str) -> tuple[Path, Path | None]:
    if mode == "restore":
        root, backup = upgraded_with_backup(install)
    else:
        root, backup = install(rng.choice([1, 3, 5, 6, 7])), None
    if rng.random() < 0.7:
        without_wal(root)
    return root, backup


def race(install, tmp_path: Path, seed: int, length: float) -> str:
    """One case: the upgrader and the writer started together, the writer's commits and death at random."""
    rng = random.Random(seed)
    mode = rng.choice(MODES)
    root, backup = prepare(install, rng, mode)
    committed = tmp_path / f"committed-{seed}.txt"
    end = rng.choice(["close", "abandon", "wait"])
    writer = subprocess.Popen(
        writer_command(
            root,
            committed,
            count=rng.randint(1, 4),
            end=end,
            seed=seed,
            start=rng.uniform(0, 1.2 * length),
            pause=rng.uniform(0, 0.3 * length),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    upgrader = subprocess.Popen(
        upgrader_command(root, mode, backup), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    kill_at = time.monotonic() + rng.uniform(0.2, 2.0) * length if end == "wait" or rng.random() < 0.3 else None
    code = wait_killing(upgrader, writer, kill_at)
    outcome = f"seed {seed}: {mode}, writer {end}, exit {code}, {len(recorded(committed))} committed"
    CAMPAIGN.append(outcome)
    assert code in (OK, IN_USE), outcome
    kept = markers(root) | (saved_markers(root) if mode == "restore" and code == OK else set())
    assert set(recorded(committed)) <= kept, f"a committed row was lost: {outcome}"
    assert query(root, "PRAGMA integrity_check") == [("ok",)], outcome
    return outcome


def wait_killing(upgrader: subprocess.Popen, writer: subprocess.Popen, kill_at: float | None) -> int:
    """The upgrader's exit code, once both processes have ended (the writer killed at `kill_at`, if any)."""
    deadline = time.monotonic() + 120
    while upgrader.poll() is None or writer.poll() is None:
        now = time.monotonic()
        if writer.poll() is None and kill_at is not None and now >= kill_at:
            writer.kill()
        if writer.poll() is None and upgrader.poll() is not None and kill_at is None and now > deadline - 110:
            writer.kill()
        assert now < deadline, "the upgrader did not finish"
        time.sleep(0.01)
    return upgrader.returncode


def saved_markers(root: Path) -> set[str]:
    """Markers in the before_restore backup a restore made of the database it replaced."""
    found = set()
    for folder in (root / "backups").glob("before_restore_*"):
        with closing(apsw.Connection(str(folder / "employee_manager.db"), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
            found |= {r[0] for r in conn.execute("SELECT id FROM employees WHERE id LIKE 'race-%'")}
    return found


@pytest.mark.parametrize("seed", seeds(QUICK_SEEDS))
def test_a_writer_racing_a_run_never_loses_a_committed_row(install, tmp_path, run_length, seed):
    race(install, tmp_path, seed, run_length)


@pytest.mark.slow
@pytest.mark.parametrize("seed", seeds(SLOW_SEEDS))
def test_a_long_campaign_of_writers_racing_runs_never_loses_a_committed_row(install, tmp_path, run_length, seed):
    race(install, tmp_path, seed, run_length)


def test_campaign_summary(capsys):
    """Prints what the campaign tried (run with -s to see it)."""
    if CAMPAIGN:
        with capsys.disabled():
            print(f"\nrace campaign: {len(CAMPAIGN)} cases")
            for line in CAMPAIGN:
                print("  " + line)
