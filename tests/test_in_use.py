"""An installation in use is never touched: Wareflow EMS open, or a second upgrader at once."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import datetime, timedelta

from support import database, execute, file_digests, query

from upgrader import errors
from upgrader.cli import main
from upgrader.installation import locate
from upgrader.locks import installation_lock


def add_lock(root, minutes_ago: float, host: str = "PC-QUAI-02", user: str = "hgérard") -> None:
    beat = (datetime.now() - timedelta(minutes=minutes_ago)).isoformat(sep=" ")
    execute(
        root,
        f"INSERT INTO app_locks VALUES ('{uuid.uuid4().hex}', '{host}', '{user}', '{beat}', '{beat}', 4242, '2.1.4')",
    )


def test_a_fresh_heartbeat_means_the_app_is_open_and_is_refused(install, capsys):
    root = install(6)
    add_lock(root, minutes_ago=0.5)
    before = file_digests(root)
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_IN_USE
    err = capsys.readouterr().err
    assert "PC-QUAI-02" in err and "hgérard" in err and "Close Wareflow EMS" in err
    assert file_digests(root) == before


def test_a_stale_lock_is_reported_and_does_not_block(install, capsys):
    root = install(6)
    add_lock(root, minutes_ago=90, host="PC-BUREAU")
    assert main(["--yes", "--data-dir", str(root)]) == 0
    assert "PC-BUREAU" in capsys.readouterr().out


def test_a_second_upgrader_on_the_same_installation_refuses(install, capsys):
    root = install(3)
    before = file_digests(root)
    with installation_lock(locate(root, environ={}).database):
        assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_IN_USE
        assert "Another wems-upgrade" in capsys.readouterr().err
    assert file_digests(root) == before
    assert main(["--yes", "--data-dir", str(root)]) == 0


def test_two_upgraders_started_at_once_never_race(install):
    root = install(1)
    command = [sys.executable, "-m", "upgrader", "--yes", "--data-dir", str(root)]
    # Output unread must not go to a pipe: a Windows pipe holds about 4 KB, and a child blocked
    # writing into a full one never ends.
    runs = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    codes = sorted(run.wait(timeout=120) for run in runs)
    assert codes in ([0, 0], [0, errors.EXIT_IN_USE])
    assert query(root, "PRAGMA integrity_check") == [("ok",)]
    assert query(root, "SELECT count(*) FROM wems_upgrade_history WHERE generation = 8") == [(1,)]
    assert len(list((root / "backups").iterdir())) == 1


def test_a_database_locked_by_another_program_is_refused(install, capsys):
    import apsw

    root = install(5)
    holder = apsw.Connection(str(database(root)))
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE").fetchall()
        holder.execute("BEGIN EXCLUSIVE")
        before = file_digests(root)
        assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_IN_USE
        assert "REFUSED" in capsys.readouterr().err
        assert file_digests(root) == before
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_database_another_program_merely_has_open_is_not_replaced(install, capsys):
    import apsw

    root = install(6)
    app = apsw.Connection(str(database(root)))
    try:
        app.execute("PRAGMA journal_mode=WAL").fetchall()
        assert app.execute("SELECT count(*) FROM employees").fetchall()
        before = file_digests(root, except_backups=True)
        assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_IN_USE
        assert "in use" in capsys.readouterr().err
        assert file_digests(root, except_backups=True) == before
        assert app.execute("SELECT count(*) FROM employees").fetchall()
    finally:
        app.close()
