"""Opens, copies and replaces SQLite files safely: backup API copies, fsync, atomic rename."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import apsw

from upgrader.errors import BadInstallation, DatabaseInUse

SQLITE_HEADER = b"SQLite format 3\x00"
PAGES_PER_STEP = 4096


def open_database(path: Path, *, readonly: bool = True) -> apsw.Connection:
    """Open an existing database, refusing anything that is not a readable SQLite database."""
    check_database_file(path)
    conn = _connect(path, readonly)
    try:
        conn.set_busy_timeout(2000)
        list(conn.execute("SELECT count(*) FROM sqlite_master"))
    except apsw.BusyError as exc:
        conn.close()
        raise DatabaseInUse(f"The database {path} is locked by another program.") from exc
    except apsw.Error as exc:
        conn.close()
        raise BadInstallation(f"The database {path} cannot be read: {exc}. It may be damaged.") from exc
    return conn


def check_database_file(path: Path) -> None:
    """Refuse a path that is not an existing, non-empty file starting with SQLite's header."""
    if not path.exists():
        raise BadInstallation(f"There is no database at {path}.")
    if not path.is_file():
        raise BadInstallation(f"{path} is not a file.")
    with open(path, "rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if not header:
        raise BadInstallation(f"The database file {path} is empty (0 bytes).")
    if header != SQLITE_HEADER:
        raise BadInstallation(f"{path} is not a SQLite database (it may be damaged).")


def _connect(path: Path, readonly: bool) -> apsw.Connection:
    """A connection that leaves no file behind when reading.

    A read-only connection to a WAL database creates an empty -wal file if there is none;
    with no -wal there is nothing but the main file to read, so it is opened immutable.
    Any write by another program meanwhile creates a -wal, which file_state() notices.
    """
    if not readonly:
        return apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    if Path(f"{path}-wal").exists():
        return apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    uri = path.resolve().as_uri() + "?immutable=1"
    return apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)


def copy_database(source: apsw.Connection, dest: Path,
                  progress: Callable[[int, int], None] | None = None, journal_mode: str | None = None) -> None:
    """A consistent copy of `source` (WAL content included) in a new file, through the backup API.

    With `journal_mode` ("delete"), the copy is switched to it: one self-contained file.
    """
    target = apsw.Connection(str(dest))
    try:
        with target.backup("main", source, "main") as backup:
            while not backup.done:
                backup.step(PAGES_PER_STEP)
                if progress:
                    progress(backup.pagecount - backup.remaining, backup.pagecount)
        if journal_mode:
            target.execute(f"PRAGMA journal_mode={journal_mode}")
    finally:
        target.close()


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk (folders cannot be opened on Windows: skipped)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (PermissionError, IsADirectoryError):
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_state(db: Path) -> tuple:
    """Size and modification time of the database and its WAL: any write by another program changes it."""
    def stat(p: Path):
        return (p.stat().st_size, p.stat().st_mtime_ns) if p.exists() else None
    return stat(db), stat(Path(f"{db}-wal"))


def leave_wal_mode(db: Path) -> None:
    """Fold the WAL into the database and switch it to a rollback journal, through SQLite.

    SQLite refuses while any other connection has the database open, which is how an
    app that is still running is caught; it deletes -wal and -shm itself.
    """
    conn = open_database(db, readonly=False)
    try:
        (mode,) = next(conn.execute("PRAGMA journal_mode=DELETE"))
    except apsw.BusyError as exc:
        raise DatabaseInUse(f"The database {db} is in use by another program.") from exc
    finally:
        conn.close()
    if mode.lower() != "delete":
        raise DatabaseInUse(f"The database {db} is in use by another program.")


def swap_in(new: Path, db: Path) -> None:
    """Replace `db` by the finished file `new` in one atomic rename."""
    leave_wal_mode(db)
    fsync_path(new)
    os.replace(new, db)
    fsync_path(db.parent)


def remove_quietly(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
