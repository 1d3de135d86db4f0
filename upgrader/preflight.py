"""Checks made before anything is written: free disk space and writable folders."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from upgrader.errors import NoRoom
from upgrader.i18n import N_, T, Text, nT

MARGIN = 16 * 1024 * 1024


@dataclass(frozen=True)
class SpaceNeeds:
    """Bytes: `backup_size` is what the backup holds, `backup_written` what making it writes (none
    where an upgrade's original file becomes the backup on its own volume)."""

    database_size: int
    backup_size: int
    work_size: int
    free_for_backup: int
    free_for_work: int
    backup_written: int = 0

    @property
    def while_running(self) -> int:
        """The disk space a run takes until it ends (the work copy becomes the database)."""
        return self.database_size + self.backup_written


def database_size(db: Path) -> int:
    """The database and its WAL: the most a snapshot of it can take."""
    wal = Path(f"{db}-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def measure(
    db: Path, backup_root: Path | None, extra_backup_bytes: int = 0, backup_is_original: bool = False
) -> SpaceNeeds:
    """`backup_is_original`: on the database's volume the backup is the original file itself (an
    upgrade's), which takes no more room."""
    size = database_size(db)
    work_free = shutil.disk_usage(db.parent).free
    backup_free = shutil.disk_usage(_existing(backup_root)).free if backup_root else work_free
    backup = size + extra_backup_bytes if backup_root else 0
    moved = backup_is_original and backup_root is not None and _same_disk(db.parent, backup_root)
    return SpaceNeeds(size, backup, size + MARGIN, backup_free, work_free, 0 if moved else backup)


def _same_disk(a: Path, b: Path) -> bool:
    return os.stat(_existing(a)).st_dev == os.stat(_existing(b)).st_dev


def check_space(db: Path, backup_root: Path | None, needs: SpaceNeeds) -> None:
    """Refuse early when the backup and the work copy would not both fit."""
    if backup_root and _same_disk(db.parent, backup_root):
        wanted = [(db.parent, needs.backup_written + needs.work_size, needs.free_for_work)]
    else:
        wanted = [(db.parent, needs.work_size, needs.free_for_work)]
        if backup_root:
            wanted.append((backup_root, needs.backup_written, needs.free_for_backup))
    for folder, need, free in wanted:
        if free < need:
            raise NoRoom(
                T(
                    "Not enough free disk space in {folder}: the upgrade needs {need}, only {free} is free.",
                    folder=folder,
                    need=size_text(need),
                    free=size_text(free),
                )
            )


def check_writable(*folders: Path) -> None:
    for folder in folders:
        folder = _existing(folder)
        probe = folder / f".wems-upgrade-probe-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise NoRoom(
                T("The folder {folder} cannot be written ({reason}).", folder=folder, reason=exc.strerror or exc)
            ) from exc


#: the units of a size, with the number as {size} (French: o, Ko, Mo, Go)
KB, MB, GB = N_("{size} KB"), N_("{size} MB"), N_("{size} GB")


def size_text(size: float) -> Text:
    """A number of bytes for people (1.5 MB), in the user's language when shown, English in the log."""
    if size < 1024:
        return nT("{n} bytes", "{n} bytes", round(size))
    for unit in (KB, MB):
        size /= 1024
        if size < 1024:
            return T(unit, size=f"{size:.1f}")
    return T(GB, size=f"{size / 1024:.1f}")


def human_size(size: float) -> str:
    """size_text() as shown now: call it where the text is shown, never for the log or --json."""
    return str(size_text(size))
