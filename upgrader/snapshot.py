"""Opens, copies and replaces SQLite files safely: backup API copies, fsync, atomic rename."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePath
from urllib.parse import quote
from typing import Callable

import apsw

from upgrader.errors import BadInstallation, DatabaseInUse
from upgrader.winfs import unlink

SQLITE_HEADER = b"SQLite format 3\x00"
PAGES_PER_STEP = 4096
COPY_BLOCK = 16 * 1024 * 1024


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
    except apsw.ReadOnlyError as exc:
        conn.close()
        if Path(f"{path}-journal").exists():
            raise DatabaseInUse(f"The database {path} has a change that was cut short (a -journal file).",
                                advice="Nothing was changed. Run wems-upgrade without --dry-run (or start "
                                       "Wareflow EMS once): SQLite then finishes undoing it.") from exc
        raise BadInstallation(f"The database {path} cannot be read: {exc}.") from exc
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
    Any write by another program meanwhile creates a -wal, which database_state() notices.
    """
    if not readonly:
        return apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    if Path(f"{path}-wal").exists():
        return apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    return apsw.Connection(sqlite_uri(path) + "?immutable=1", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)


def attach_readonly(conn: apsw.Connection, path: Path, name: str) -> None:
    """Attach `path` read-only as `name`, leaving no file behind (see _connect). Needs SQLITE_OPEN_URI."""
    mode = "mode=ro" if Path(f"{path}-wal").exists() else "immutable=1"
    conn.execute(f"ATTACH DATABASE ? AS {name}", (f"{sqlite_uri(path)}?{mode}",))


def sqlite_uri(path: PurePath) -> str:
    """A file: URI SQLite accepts for any path: drive letters, accents, spaces and network
    shares (\\\\server\\share becomes file:////server/share: an empty authority, then the path)."""
    posix = (path if path.is_absolute() else Path(path).resolve()).as_posix()
    return ("file://" if posix.startswith("//") else "file:") + quote(posix, safe="/:")


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


def copy_file(source: Path, dest: Path, progress: Callable[[int, int], None] | None = None) -> None:
    """A plain copy of a file nobody else writes, in 16 MB blocks, reporting the bytes done."""
    total, done = source.stat().st_size, 0
    with open(source, "rb") as reader, open(dest, "wb") as writer:
        while block := reader.read(COPY_BLOCK):
            writer.write(block)
            done += len(block)
            if progress:
                progress(done, total)


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk (folders cannot be opened on Windows: skipped).

    Files are opened for writing: Windows flushes only handles with write access.
    """
    flags = os.O_RDONLY if path.is_dir() else os.O_RDWR | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except (PermissionError, IsADirectoryError):
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def database_state(db: Path) -> tuple:
    """Size and modification time of the database and its WAL: any write by another program changes it.

    An empty or missing WAL counts as no WAL (opening a database can create an empty one).
    """
    wal = Path(f"{db}-wal")
    wal_state = (wal.stat().st_size, wal.stat().st_mtime_ns) if wal.exists() and wal.stat().st_size else None
    return (db.stat().st_size, db.stat().st_mtime_ns), wal_state


def hold_exclusive(db: Path, expected_state: tuple | None = None) -> apsw.Connection:
    """Lock `db` against every other connection, fold its WAL into it and leave WAL mode.

    With locking_mode=EXCLUSIVE the lock is kept until the returned connection closes, so no
    program can read or write the database meanwhile. Taking it fails while any other
    connection has the database open, which is how a running app is caught. With
    `expected_state`, refuse if the database or its WAL changed since it was measured.
    """
    conn = open_database(db, readonly=False)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE").fetchall()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("COMMIT")
        if expected_state is not None and database_state(db) != expected_state:
            raise DatabaseInUse("The database changed while it was being upgraded: Wareflow EMS is "
                                "probably open.")
        (mode,) = conn.execute("PRAGMA journal_mode=DELETE").fetchone()
        if mode.lower() != "delete":
            raise DatabaseInUse(f"The database {db} is in use by another program.")
        return conn
    except apsw.BusyError as exc:
        conn.close()
        raise DatabaseInUse(f"The database {db} is in use by another program.") from exc
    except BaseException:
        conn.close()
        raise


def copy_owner_and_mode(source: Path, dest: Path) -> None:
    """Give `dest` the permissions (and, where allowed, the owner) of `source`."""
    st = source.stat()
    os.chmod(dest, stat.S_IMODE(st.st_mode))
    if hasattr(os, "chown"):
        try:
            os.chown(dest, st.st_uid, st.st_gid)
        except OSError:
            pass


def remove_quietly(*paths: Path) -> None:
    """Delete each file that exists, waiting out another program holding it (upgrader.winfs)."""
    for path in paths:
        unlink(path)
