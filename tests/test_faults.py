"""Disk and file-system faults: each ends with a clear message, a documented exit code and
the user's files as they were."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import namedtuple
from pathlib import Path

import pytest
from support import content, file_digests

from upgrader import errors
from upgrader.cli import main
from upgrader.journal import FileSwap, Replacement


def test_not_enough_free_space_is_refused_before_anything_is_written(install, capsys, monkeypatch):
    root = install(1)
    before = file_digests(root)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("upgrader.preflight.shutil.disk_usage", lambda _p: usage(10**9, 10**9 - 50_000, 50_000))
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_NO_ROOM
    err = capsys.readouterr().err
    assert "Not enough free disk space" in err and "Nothing was changed" in err
    assert file_digests(root) == before


def test_an_io_error_while_writing_the_copy_changes_nothing(install, capsys, monkeypatch):
    root = install(3)
    before, rows = user_files(root), content(root)

    def failing_copy(source, dest, progress=None):
        Path(dest).write_bytes(b"SQLite format 3\x00 half written")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("upgrader.upgrade.copy_file", failing_copy)
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_ROLLED_BACK
    assert "could not be read or written" in capsys.readouterr().err
    assert content(root) == rows and user_files(root) == before, "the half-written copy is removed too"
    assert not any((root / "backups").iterdir()), "and the backup folder begun for it"


def user_files(root: Path) -> dict:
    """Every file but the database's (the upgrade folds the WAL into it: same rows, other bytes) and backups."""
    return {
        name: digest
        for name, digest in file_digests(root, except_backups=True).items()
        if not Path(name).name.startswith("employee_manager.db")
    }


def test_a_file_that_cannot_be_replaced_is_put_back(install, capsys, monkeypatch):
    root = install(2)
    original = content(root)
    real_replace = os.replace

    def refuse_database(src, dst):
        if str(dst).endswith("employee_manager.db") and str(src).endswith(".tmp"):
            raise PermissionError(13, "The process cannot access the file because it is being used")
        return real_replace(src, dst)

    monkeypatch.setattr("upgrader.journal.os.replace", refuse_database)
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_IN_USE
    assert "another program has it open" in capsys.readouterr().err
    assert content(root) == original
    assert not [p for p in (root / "data").iterdir() if "wems-upgrade" in p.name]


def test_a_failed_swap_of_several_files_puts_every_one_back(tmp_path, monkeypatch):
    targets = [tmp_path / name for name in ("a.db", "config.json", "config.yaml")]
    targets[0].write_text("old a", encoding="utf-8")
    targets[1].write_text("old json", encoding="utf-8")
    temps = [tmp_path / f"{t.name}.new" for t in targets]
    temps[0].write_text("new a", encoding="utf-8")
    temps[2].write_text("new yaml", encoding="utf-8")
    swap = FileSwap(
        targets[0],
        [
            Replacement(str(targets[0]), str(temps[0]), f"{targets[0]}.old"),
            Replacement(str(targets[1]), None, f"{targets[1]}.old"),
            Replacement(str(targets[2]), str(temps[2]), f"{targets[2]}.old"),
        ],
        [temps[0], temps[2]],
    )
    swap.prepare()
    real_replace = os.replace
    monkeypatch.setattr(
        "upgrader.journal.os.replace",
        lambda s, d: (
            (_ for _ in ()).throw(OSError(28, "No space left on device"))
            if str(d).endswith("config.yaml")
            else real_replace(s, d)
        ),
    )
    with pytest.raises(OSError):
        swap.swap()
    assert targets[0].read_text(encoding="utf-8") == "old a"
    assert targets[1].read_text(encoding="utf-8") == "old json"
    assert not targets[2].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db", "config.json"]


@pytest.fixture
def small_disk(tmp_path):
    """A real, tiny file system (tmpfs), for full-disk and read-only tests; needs mount rights."""
    if os.name != "posix":
        pytest.skip("a small file system is mounted with POSIX mount (full disks on Windows: see test_windows_files)")
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("this machine does not allow mounting a small file system")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path, leave: int) -> None:
    free = shutil.disk_usage(folder).free
    (folder / "filler.bin").write_bytes(b"\0" * max(0, free - leave))


def test_a_disk_that_fills_up_during_the_upgrade_changes_nothing(install, small_disk, capsys, monkeypatch):
    root = small_disk / "site"
    shutil.copytree(install(1), root)
    db_size = (root / "data" / "employee_manager.db").stat().st_size
    fill(small_disk, leave=db_size // 4)
    before, rows = user_files(root), content(root)
    monkeypatch.setattr("upgrader.upgrade.check_space", lambda *a, **k: None)
    code = main(["--yes", "--data-dir", str(root)])
    assert code == errors.EXIT_NO_ROOM
    assert "disk became full" in capsys.readouterr().err
    assert user_files(root) == before and content(root) == rows


def test_a_full_disk_is_refused_before_starting(install, small_disk, capsys):
    root = small_disk / "site"
    shutil.copytree(install(4), root)
    before = file_digests(root)
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_NO_ROOM
    assert "Not enough free disk space" in capsys.readouterr().err
    assert file_digests(root) == before


def test_a_read_only_installation_is_refused(install, small_disk, capsys):
    root = small_disk / "site"
    shutil.copytree(install(2), root)
    before = file_digests(root)
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)]).returncode == 0
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_NO_ROOM
    assert "cannot be written" in capsys.readouterr().err
    assert file_digests(root) == before


def test_an_aside_that_cannot_be_deleted_after_the_commit_is_only_logged(install, monkeypatch):
    from upgrader import journal
    from upgrader.installation import locate
    from upgrader.upgrade import upgrade

    root = install(5)
    real, calls = journal.remove_quietly, []

    def stubborn(*paths):
        """The aside is cleared once before it is made; deleting it after the commit fails."""
        for path in paths:
            if str(path).endswith(".wems-upgrade-old"):
                calls.append(path)
                if len(calls) > 1:
                    raise PermissionError(13, "used by another process")
        real(*paths)

    monkeypatch.setattr(journal, "remove_quietly", stubborn)
    result = upgrade(locate(root, environ={}), backup=False)
    assert result.status == "upgraded"
    assert (root / "data" / "employee_manager.db.wems-upgrade-old").exists()


def test_a_rollback_that_fails_half_way_keeps_the_journal_and_the_next_run_finishes(install, monkeypatch):
    from upgrader import journal
    from upgrader.installation import locate
    from upgrader.upgrade import upgrade

    root = install(1)
    real_replace = os.replace

    def config_fails(src, dst):
        if str(dst).endswith("config.yaml"):
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr("upgrader.journal.os.replace", config_fails)
    monkeypatch.setattr(journal, "_put_back", lambda aside, target: (_ for _ in ()).throw(OSError(5, "I/O")))
    with pytest.raises(errors.Unfinished, match="some are new, some old") as failed:
        upgrade(locate(root, environ={}))
    assert (failed.value.exit_code, failed.value.status) == (errors.EXIT_UNFINISHED, "unfinished"), (
        "the database is already new: never reported as rolled back"
    )
    assert journal.journal_path(root / "data" / "employee_manager.db").exists()
    monkeypatch.undo()
    result = upgrade(locate(root, environ={}))
    assert "finished" in result.recovered
    assert (root / "config.yaml").exists() and not (root / "config.json").exists()
