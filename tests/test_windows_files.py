"""Windows file semantics at the swap: another program holding a file, our own open connections,
no hard links. Every run ends with one consistent set: the new database with config.yaml, or
the old database with config.json, never a mix."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import apsw
import pytest
from support import content, database, file_digests, leftovers
from winsemantics import WindowsFiles

from upgrader import errors, winfs
from upgrader.cli import main
from upgrader.detector import newest_contained, read_wems_schema
from upgrader.installation import locate
from upgrader.journal import journal_path, recover
from upgrader.loader import load_catalog
from upgrader.upgrade import upgrade

pytestmark = pytest.mark.usefixtures("windows_files")


@pytest.fixture
def windows_files(monkeypatch) -> WindowsFiles:
    """Windows' rules for open files, on any system (tests/winsemantics.py)."""
    layer = WindowsFiles()
    layer.install(monkeypatch)
    return layer


def generation(root) -> int:
    with closing(apsw.Connection(str(database(root)), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        catalog = load_catalog()
        return newest_contained(read_wems_schema(conn, catalog), catalog, catalog.latest).generation


def assert_consistent(root, original: dict) -> str:
    """All new (g8 + config.yaml) or all old (the original rows + config.json); returns which."""
    yaml, json = (root / "config.yaml").exists(), (root / "config.json").exists()
    if yaml:
        assert generation(root) == 8 and not json, "config.yaml belongs with the new database"
        return "new"
    assert json and content(root) == original, "config.json belongs with the old database"
    return "old"


def state(root) -> tuple:
    """The rows, and every other file byte for byte (the hold folds the WAL into the database)."""
    files = {
        name: digest
        for name, digest in file_digests(root, except_backups=True).items()
        if not Path(name).as_posix().startswith("data/employee_manager.db")
    }
    return content(root), files


def run(root) -> int:
    return main(["--yes", "--data-dir", str(root)])


def test_retrying_waits_out_a_transient_hold_with_growing_delays(tmp_path, windows_files, monkeypatch):
    source, target = tmp_path / "new", tmp_path / "target"
    source.write_text("new", encoding="utf-8")
    target.write_text("old", encoding="utf-8")
    waits = []
    monkeypatch.setattr(winfs, "time", SimpleNamespace(sleep=waits.append))
    windows_files.hold(target, times=3)
    winfs.replace(source, target)
    assert target.read_text(encoding="utf-8") == "new"
    assert waits == [winfs.DELAY * n for n in (1, 2, 3)]


def test_a_permanent_hold_gives_the_original_error_after_the_budget(tmp_path, windows_files, monkeypatch):
    target = tmp_path / "target"
    target.write_text("old", encoding="utf-8")
    monkeypatch.setattr(winfs, "time", SimpleNamespace(sleep=lambda _s: None))
    windows_files.hold(target)
    with pytest.raises(PermissionError) as raised:
        winfs.unlink(target)
    assert raised.value.winerror == 32
    assert windows_files.attempts("unlink", target) == winfs.RETRIES + 1


def test_other_errors_are_not_retried(tmp_path, monkeypatch):
    calls = []

    def full(*_args):
        calls.append(1)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        winfs.retrying(full)
    assert calls == [1]


def test_an_upgrade_under_windows_semantics_closes_every_connection_before_renaming(install, windows_files):
    root = install(2)
    assert run(root) == 0
    assert assert_consistent(root, {}) == "new"
    renames = [c for c in windows_files.calls if c[0] in ("replace", "unlink")]
    assert renames and not [c for c in renames if c[2]], "no file is renamed or deleted while we have it open"


def test_transient_holds_at_the_swap_are_waited_out(install, windows_files):
    root = install(2)
    windows_files.hold(database(root), times=4)
    windows_files.hold(root / "config.json", times=2)
    assert run(root) == 0
    assert assert_consistent(root, {}) == "new"
    assert windows_files.attempts("replace", database(root)) >= 5


@pytest.mark.parametrize("held", ["data/employee_manager.db", "config.json"])
def test_a_permanent_hold_at_the_swap_puts_everything_back(install, windows_files, capsys, held):
    root = install(2)
    before = state(root)
    windows_files.hold(root / held)
    assert run(root) == errors.EXIT_IN_USE
    err = capsys.readouterr().err
    assert "another program has it open" in err and "undone" in err
    assert state(root) == before
    assert leftovers(root) == []


def test_a_hold_during_the_undo_keeps_the_journal_and_the_next_run_puts_the_old_set_back(install, windows_files):
    """The database's rename fails, then so does deleting its aside (the backup's database, linked):
    nothing was placed, so the next run drops the swap. The new database (the work copy) must
    survive until then, and the backup folder holding the aside too."""
    root = install(2)
    db = database(root)
    original = content(root)
    windows_files.hold(db)
    windows_files.when("replace", db, lambda: windows_files.hold(next(root.glob("backups/*/employee_manager.db"))))
    assert run(root) == errors.EXIT_ROLLED_BACK
    assert journal_path(db).exists()
    assert [p for p in db.parent.iterdir() if p.name.endswith(".tmp")], "the work copy is kept for the next run"
    windows_files.release()
    assert "changed nothing" in recover(db)
    assert assert_consistent(root, original) == "old"
    assert leftovers(root) == []


def test_an_undo_cut_half_way_is_finished_backwards_by_the_next_run(install, windows_files):
    """config.json cannot be retired; while undoing, config.yaml goes but the new database is now held."""
    root = install(2)
    db = database(root)
    original = content(root)
    windows_files.hold(root / "config.json")
    windows_files.when("replace", root / "config.json.before-wems-upgrade", lambda: windows_files.hold(db))
    assert run(root) == errors.EXIT_UNFINISHED
    assert generation(root) == 8 and not (root / "config.yaml").exists(), "a mix, which the journal records"
    windows_files.release()
    assert "undone" in recover(db)
    assert assert_consistent(root, original) == "old"
    assert run(root) == 0
    assert assert_consistent(root, original) == "new"
    assert leftovers(root) == []


def test_a_database_placed_but_settings_not_is_finished_forwards_by_the_next_run(install, windows_files):
    """config.yaml cannot be placed and the new database cannot be put back: the next run places the rest."""
    root = install(2)
    db = database(root)
    original = content(root)
    temp = root / "config.yaml.wems-upgrade-tmp"
    windows_files.hold(temp)
    windows_files.when("replace", root / "config.yaml", lambda: windows_files.hold(db))
    assert run(root) == errors.EXIT_UNFINISHED
    assert journal_path(db).exists()
    windows_files.release()
    assert "finished" in recover(db)
    assert assert_consistent(root, original) == "new"
    assert (root / "config.json.before-wems-upgrade").exists()
    assert leftovers(root) == []


def test_a_placed_file_used_since_is_neither_finished_nor_undone(install, windows_files):
    root = install(2)
    db = database(root)
    windows_files.hold(root / "config.yaml.wems-upgrade-tmp")
    windows_files.when("replace", root / "config.yaml", lambda: windows_files.hold(db))
    assert run(root) == errors.EXIT_UNFINISHED
    windows_files.release()
    (root / "config.yaml.wems-upgrade-tmp").unlink()
    with closing(apsw.Connection(str(db))) as app:
        app.execute("INSERT INTO app_locks VALUES ('x', 'PC', 'me', '2020-01-01', '2020-01-01', 1, '3')")
    with pytest.raises(errors.Unfinished, match="cannot be finished"):
        recover(db)
    assert journal_path(db).exists(), "nothing more is changed"


def test_a_failed_clean_up_does_not_hide_the_real_error(install, windows_files, monkeypatch, capsys):
    root = install(2)
    before = state(root)
    work = database(root).with_name(f"employee_manager.db.wems-upgrade-{os.getpid()}.tmp")

    def failing(*_args, **_kwargs):
        windows_files.hold(work)
        raise errors.UpgradeFailed("The upgraded database failed its checks, so nothing was changed:")

    monkeypatch.setattr("upgrader.upgrade.migrate_copy", failing)
    assert run(root) == errors.EXIT_ROLLED_BACK
    assert "failed its checks" in capsys.readouterr().err
    windows_files.release()
    work.unlink()
    assert state(root) == before


def test_a_journal_that_cannot_be_deleted_after_the_commit_does_not_hide_the_success(install, windows_files):
    root = install(2)
    journal = journal_path(database(root))
    windows_files.when("unlink", journal, lambda: windows_files.hold(journal))
    result = upgrade(locate(root, environ={}))
    assert result.status == "upgraded"
    windows_files.release()
    assert "already finished" in upgrade(locate(root, environ={})).recovered
    assert not journal.exists()


def test_without_hard_links_the_aside_is_copied_while_the_database_is_held(install, windows_files):
    root = install(2)
    db = database(root)
    windows_files.no_links = True
    assert run(root) == 0
    assert assert_consistent(root, {}) == "new"
    copies = [held for op, path, held in windows_files.calls if op == "copy2" and path == str(db.resolve())]
    assert copies == [True], "one copy, made while our exclusive hold kept every writer out"
    assert leftovers(root) == []


def test_without_hard_links_a_failed_swap_puts_the_old_set_back(install, windows_files, capsys):
    root = install(2)
    before = state(root)
    windows_files.no_links = True
    windows_files.hold(root / "config.json")
    assert run(root) == errors.EXIT_IN_USE
    assert state(root) == before
    assert leftovers(root) == []


def test_a_write_after_the_hold_is_let_go_stops_the_rename(install, windows_files, monkeypatch, capsys):
    """Windows: the hold ends before the rename; the database is measured again just before it."""
    root = install(2)
    db = database(root)
    from upgrader import journal

    real = journal.crashpoint

    def app_writes(name):
        if name == "journal_swapping":
            with closing(apsw.Connection(str(db))) as app:
                app.execute("INSERT INTO app_locks VALUES ('x', 'PC', 'me', '2020-01-01', '2020-01-01', 1, '3')")
        real(name)

    monkeypatch.setattr(journal, "crashpoint", app_writes)
    assert run(root) == errors.EXIT_IN_USE
    assert "changed while it was being replaced" in capsys.readouterr().err
    assert generation(root) == 2 and (root / "config.json").exists()
    assert (root / "data" / "employee_manager.db").exists() and leftovers(root) == []


def test_a_restore_waits_out_transient_holds_and_puts_the_old_set_back(install, windows_files):
    from upgrader.restore import restore

    root = install(2)
    original = content(root)
    backup = upgrade(locate(root, environ={})).backup.folder
    windows_files.hold(database(root), times=3)
    windows_files.hold(root / "config.yaml", times=3)
    restore(locate(root, environ={}), backup)
    assert assert_consistent(root, original) == "old"
    assert leftovers(root) == []


def test_a_program_that_blocked_the_rename_and_wrote_meanwhile_stops_it(install, windows_files, capsys):
    """The app has the database open, so the rename fails and is retried; it commits a row before
    the next try. Every try first measures the database again: the row is never left behind in the
    replaced file."""
    root = install(2)
    db = database(root)

    def app_commits():
        with closing(apsw.Connection(str(db))) as app:
            app.execute("INSERT INTO app_locks VALUES ('x', 'PC', 'me', '2020-01-01', '2020-01-01', 1, '3')")

    windows_files.hold(db, times=2)
    windows_files.when("replace", db, app_commits)
    assert run(root) == errors.EXIT_IN_USE
    assert "changed while it was being replaced" in capsys.readouterr().err
    assert generation(root) == 2 and query_locks(root) == [("x",)]
    assert leftovers(root) == []


def query_locks(root) -> list[tuple]:
    with closing(apsw.Connection(str(database(root)), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        return list(conn.execute("SELECT id FROM app_locks WHERE id = 'x'"))
