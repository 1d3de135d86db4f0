"""Checks made before anything is written: free disk space and writable folders."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from upgrader.errors import NoRoom

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
                f"Not enough free disk space in {folder}: the upgrade needs "
                f"{human_size(need)}, only {human_size(free)} is free."
            )


def check_writable(*folders: Path) -> None:
    for folder in folders:
        folder = _existing(folder)
        probe = folder / f".wems-upgrade-probe-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise NoRoom(f"The folder {folder} cannot be written ({exc.strerror or exc}).") from exc


def human_size(size: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
