"""Who else is using the installation: Wareflow EMS itself (its app_locks heartbeat) or another upgrader."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import apsw

from upgrader.errors import DatabaseInUse, NoRoom
from upgrader.i18n import T, Text
from upgrader.schema import has_table

DEFAULT_LOCK_TIMEOUT_MINUTES = 2


@dataclass(frozen=True)
class AppLock:
    hostname: str
    username: str | None
    process_id: int
    app_version: str | None
    last_heartbeat: datetime

    def describe(self) -> Text:
        """Who holds the lock, in words (a Text: English in the log, translated on the screen)."""
        seen = f"{self.last_heartbeat:%Y-%m-%d %H:%M}"
        place = dict(computer=self.hostname, process=self.process_id, seen=seen)
        if self.username and self.app_version:
            return T(
                "{user} on computer {computer}, process {process} (Wareflow EMS {version}), last seen {seen}",
                user=self.username,
                version=self.app_version,
                **place,
            )
        if self.username:
            return T("{user} on computer {computer}, process {process}, last seen {seen}", user=self.username, **place)
        if self.app_version:
            return T(
                "computer {computer}, process {process} (Wareflow EMS {version}), last seen {seen}",
                version=self.app_version,
                **place,
            )
        return T("computer {computer}, process {process}, last seen {seen}", **place)


def _parse_time(value) -> datetime | None:
    """The app writes local time without an offset; a time with one is turned into local time too."""
    try:
        moment = datetime.fromisoformat(str(value))
        return moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment
    except (ValueError, OverflowError):
        return None


def app_locks(conn: apsw.Connection) -> list[AppLock]:
    if not has_table(conn, "app_locks"):
        return []
    rows = conn.execute('SELECT "hostname", "username", "process_id", "app_version", "last_heartbeat" FROM "app_locks"')
    return [AppLock(h, u, p, v, t) for h, u, p, v, raw in rows if (t := _parse_time(raw))]


def check_app_closed(
    conn: apsw.Connection, timeout_minutes: int = DEFAULT_LOCK_TIMEOUT_MINUTES, now: datetime | None = None
) -> list[AppLock]:
    """Refuse if a lock's heartbeat is fresher than the app's own timeout; return the stale locks."""
    now = now or datetime.now()
    locks = app_locks(conn)
    fresh = [lock for lock in locks if lock.last_heartbeat > now - timedelta(minutes=timeout_minutes)]
    if fresh:
        raise DatabaseInUse(T("Wareflow EMS is open on this database:"), [lock.describe() for lock in fresh])
    return locks


@contextmanager
def installation_lock(db: Path) -> Iterator[None]:
    """Hold an OS lock on `<db>.wems-upgrade-lock` so two upgraders never work on one installation.

    The OS releases the lock when the process dies, so a crash never leaves it stuck.
    """
    path = db.with_name(f"{db.name}.wems-upgrade-lock")
    handle = _acquire(path)
    try:
        yield
    finally:
        _release(path, handle)


@contextmanager
def hold_file_lock(path: Path) -> Iterator[None]:
    """Create `path` and hold an OS lock on it until the block ends; the file itself stays."""
    with open(path, "a+b") as handle:
        if not _try_lock(handle):
            raise DatabaseInUse(T("Another wems-upgrade is using {folder}.", folder=path.parent))
        yield


def is_abandoned(path: Path) -> bool:
    """True when nobody holds the OS lock on `path` any more (its owner finished or died)."""
    try:
        with open(path, "r+b") as handle:
            return _try_lock(handle)
    except OSError:
        return False


def _acquire(path: Path):
    for _attempt in range(3):
        try:
            handle = open(path, "a+b")  # noqa: SIM115 - held open until the caller lets go
        except OSError as exc:
            raise NoRoom(
                T("The folder {folder} cannot be written ({reason}).", folder=path.parent, reason=exc.strerror or exc)
            ) from exc
        if not _try_lock(handle):
            handle.close()
            raise DatabaseInUse(T("Another wems-upgrade is already working on this installation."))
        if _still_linked(path, handle):
            return handle
        handle.close()
    raise DatabaseInUse(T("Another wems-upgrade is starting on this installation at the same moment."))


def _still_linked(path: Path, handle) -> bool:
    """False if another upgrader removed the lock file between our open and our lock."""
    try:
        return os.name == "nt" or os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def _try_lock(handle) -> bool:
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _release(path: Path, handle) -> None:
    """Remove the lock file while still holding the lock (POSIX), then let go of it."""
    if os.name != "nt":
        path.unlink(missing_ok=True)
    handle.close()
    if os.name == "nt":
        try:
            path.unlink()
        except OSError:
            pass
