"""Puts an installation back as a backup holds it, after saving the current state as a backup of its own."""

from __future__ import annotations

import os
import shutil
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from upgrader.backup import Backup, create_backup, default_backup_root, sha256_file, verify_backup
from upgrader.errors import BadInstallation, NoRoom, UpgradeFailed
from upgrader.installation import CONFIG_NAMES, Installation, find_config
from upgrader.journal import FileSwap, Replacement, crashpoint, recover
from upgrader.locks import check_app_closed, installation_lock
from upgrader.preflight import check_space, check_writable, measure
from upgrader.snapshot import fsync_path, hold_exclusive, open_database

TEMP_SUFFIX = ".wems-upgrade-restore"
ASIDE_SUFFIX = ".wems-upgrade-old"


@dataclass(frozen=True)
class RestoreResult:
    installation: Installation
    restored: Backup
    saved: Backup | None
    recovered: str | None = None


def restore(installation: Installation, folder: Path, backup_root: Path | None = None) -> RestoreResult:
    """Verify the backup, save the current state, then swap database and config files back in."""
    backup = verify_backup(folder)
    db = installation.database
    db.parent.mkdir(parents=True, exist_ok=True)
    with installation_lock(db):
        recovered = recover(db)
        installation = replace(installation, config=find_config(installation.root))
        root = backup_root or default_backup_root(installation)
        check_writable(db.parent, root)
        saved = _save_current(installation, root, backup)
        crashpoint("restore_saved")
        swap = FileSwap(db, _replacements(installation, backup), [])
        swap.temps = [r.new for r in swap.replacements if r.new]
        try:
            swap.prepare()
            _write_temps(installation, backup, swap.replacements)
            _swap_holding(db, swap, hold=saved is not None)
            crashpoint("restore_swapped")
            swap.commit()
        except OSError as exc:
            raise UpgradeFailed(f"The restore could not write its files ({exc}); the installation "
                                "is as it was.") from exc
        finally:
            swap.abandon()
    return RestoreResult(installation, backup, saved, recovered)


def _swap_holding(db: Path, swap: FileSwap, hold: bool) -> None:
    """Swap while holding an exclusive lock on the current database (if it is readable)."""
    holder = hold_exclusive(db) if hold else None
    try:
        if holder and os.name == "nt":
            holder.close()
        swap.swap()
    finally:
        if holder:
            holder.close()


def _save_current(installation: Installation, root: Path, restoring: Backup) -> Backup | None:
    """A backup of what is there now, so the restore itself can be undone (None: no readable database)."""
    db = installation.database
    if not db.exists():
        return None
    try:
        source = open_database(db)
    except BadInstallation:
        return None
    with closing(source):
        check_app_closed(source)
        check_space(db, root, measure(db, root, extra_backup_bytes=restoring.size))
        details = {"restoring": str(restoring.folder)}
        return create_backup(installation, source, "before_restore", details, root)


def _replacements(installation: Installation, backup: Backup) -> list[Replacement]:
    """The database and each config file of the backup go back; config files it lacks go away."""
    db = installation.database
    if _readable(db) or not db.exists():
        out = [Replacement(str(db), f"{db}{TEMP_SUFFIX}", f"{db}{ASIDE_SUFFIX}")]
    else:
        damaged = f"{db}.damaged-{datetime.now():%Y%m%d-%H%M%S}"
        out = [Replacement(str(db), f"{db}{TEMP_SUFFIX}", damaged, keep_aside=True)]
        out += [Replacement(f"{db}{suffix}", None, f"{damaged}{suffix}", keep_aside=True)
                for suffix in ("-wal", "-shm") if Path(f"{db}{suffix}").exists()]
    in_backup = {e["name"] for e in backup.manifest["files"] if e["role"] == "config"}
    for name in CONFIG_NAMES:
        target = installation.root / name
        if name in in_backup:
            out.append(Replacement(str(target), f"{target}{TEMP_SUFFIX}", f"{target}{ASIDE_SUFFIX}"))
        elif target.exists():
            out.append(Replacement(str(target), None, f"{target}{ASIDE_SUFFIX}"))
    return out


def _readable(db: Path) -> bool:
    try:
        open_database(db).close()
        return True
    except (BadInstallation, OSError):
        return False


def _write_temps(installation: Installation, backup: Backup, replacements: list[Replacement]) -> None:
    """Copy each backed-up file beside its target, and check the copy against the manifest."""
    entries = {str(installation.root / e["name"]): e for e in backup.manifest["files"] if e["role"] == "config"}
    entries[str(installation.database)] = next(e for e in backup.manifest["files"] if e["role"] == "database")
    for r in replacements:
        if r.new:
            entry = entries[r.target]
            shutil.copyfile(backup.folder / entry["name"], r.new)
            fsync_path(Path(r.new))
            if sha256_file(Path(r.new)) != entry["sha256"]:
                raise NoRoom(f"Copying {entry['name']} from the backup did not give the same file; "
                             "is the disk full?")
