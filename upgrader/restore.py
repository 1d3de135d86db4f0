"""Puts an installation back as a backup holds it, after saving the current state as a backup of its own."""

from __future__ import annotations

import shutil
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from upgrader.backup import (
    DATABASE_FILE,
    Backup,
    create_backup,
    default_backup_root,
    open_backup_database,
    sha256_file,
    unretire_file,
    verify_backup,
)
from upgrader.config import OTHER_SETTINGS_FILES, SETTINGS_FILES
from upgrader.detector import newest_contained, read_wems_schema, refuse_if_not_wems
from upgrader.errors import BadBackup, BadInstallation, DatabaseInUse, NoRoom, UpgradeError, UpgradeFailed
from upgrader.i18n import T
from upgrader.installation import Installation, find_config
from upgrader.journal import FileSwap, Replacement, crashpoint, recover
from upgrader.loader import load_catalog
from upgrader.locks import check_app_closed, installation_lock
from upgrader.preflight import check_space, check_writable, measure
from upgrader.snapshot import check_unchanged, copy_owner_and_mode, create_like, fsync_path, open_database
from upgrader.upgrade import FirstState, check_settings_unchanged, first_state, swap_and_commit

TEMP_SUFFIX = ".wems-upgrade-restore"
ASIDE_SUFFIX = ".wems-upgrade-old"


@dataclass(frozen=True)
class RestoreResult:
    installation: Installation
    restored: Backup
    saved: Backup | None
    recovered: str | None = None


def restore(
    installation: Installation, folder: Path, backup_root: Path | None = None, *, other_installation: bool = False
) -> RestoreResult:
    """Verify the backup, save the current state, then swap database and config files back in.

    A backup made from another installation folder is refused unless `other_installation`.
    """
    backup = verify_backup(folder)
    _refuse_foreign(backup, installation, other_installation)
    _refuse_not_wems(backup)
    db = installation.database
    db.parent.mkdir(parents=True, exist_ok=True)
    with installation_lock(db):
        recovered = recover(db, discard_unfinishable=True)
        installation = replace(installation, config=find_config(installation.root))
        root = backup_root or default_backup_root(installation)
        check_writable(db.parent, root)
        first = first_state(installation)
        saved = _save_current(installation, root, backup)
        _check_current(installation, first)
        crashpoint("restore_saved")
        swap = FileSwap(db, _replacements(installation, backup, keep_current=saved is None), [])
        swap.temps = [r.new for r in swap.replacements if r.new]
        try:
            swap.prepare()
            _write_temps(installation, backup, swap.replacements)
            _swap_holding(installation, swap, first, hold=saved is not None)
        except OSError as exc:
            raise UpgradeFailed(
                T("The restore could not write its files ({reason}).", reason=exc),
                advice=T(
                    "The restore was undone: the installation is as it was before it. "
                    "Free some disk space or check the folder's rights, then try again."
                ),
            ) from exc
        finally:
            swap.abandon()
    return RestoreResult(installation, backup, saved, recovered)


def _refuse_foreign(backup: Backup, installation: Installation, allowed: bool) -> None:
    made_from = backup.manifest.get("installation")
    if allowed or not made_from or Path(made_from) == installation.root:
        return
    raise BadBackup(
        T(
            "This backup was made from another installation ({other}), not from {installation}.",
            other=made_from,
            installation=installation.root,
        ),
        advice=T(
            "Nothing was changed. If you really want to put that "
            "installation's data here (for example after moving it), add --from-other-installation."
        ),
    )


def _check_current(installation: Installation, first: FirstState) -> None:
    """Refuse if the database appeared, went or changed since `first` (its backup would miss that)."""
    db = installation.database
    if (first.database is None) != (not db.is_file()):
        raise DatabaseInUse(T("The database {path} appeared or went away while the restore was running.", path=db))
    if first.database is not None:
        check_unchanged(db, first.database, "restored")


def _refuse_not_wems(backup: Backup) -> None:
    """Any SQLite file with a manifest that matches it is not yet a Wareflow EMS backup."""
    try:
        with closing(open_backup_database(backup.folder / DATABASE_FILE)) as conn:
            refuse_if_not_wems(conn, load_catalog())
    except BadInstallation as exc:
        raise BadBackup(
            T("The backup {folder} cannot be restored: {reason}", folder=backup.folder, reason=exc.text)
        ) from None


def _swap_holding(installation: Installation, swap: FileSwap, first: FirstState, hold: bool) -> None:
    """Swap while holding an exclusive lock on the current database (if it is readable), once nobody
    has changed it nor the settings since `first`: the before_restore backup holds them as they are."""
    swap_and_commit(
        installation.database,
        swap,
        first.database if hold else None,
        lambda: check_settings_unchanged(installation, first.settings),
        "restore_swapped",
        "restored",
    )


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
        details = {"restoring": str(restoring.folder), "generation_before": _generation(source)}
        return create_backup(installation, source, "before_restore", details, root)


def _generation(conn) -> str | None:
    """The generation of the current database, for the before_restore manifest (None if unknown)."""
    catalog = load_catalog()
    try:
        found = newest_contained(read_wems_schema(conn, catalog), catalog, catalog.latest)
    except UpgradeError:
        return None
    return found.label if found else None


def _replacements(installation: Installation, backup: Backup, keep_current: bool) -> list[Replacement]:
    """The database and each settings file of the backup go back; a main settings file it lacks goes
    away (config/*.json it lacks stay: backups made before they were saved did not hold them).

    With `keep_current` (no backup of the current state could be made), every current file
    is kept beside its target, named *.before-restore-<time>, instead of being deleted.
    Removals come last, so the app always finds a settings file between two renames.
    """
    db = installation.database
    stamp = f"before-restore-{datetime.now():%Y%m%d-%H%M%S}"
    if _readable(db) or not db.exists():
        out = [Replacement(str(db), f"{db}{TEMP_SUFFIX}", f"{db}{ASIDE_SUFFIX}")]
    else:
        damaged = f"{db}.damaged-{datetime.now():%Y%m%d-%H%M%S}"
        out = [Replacement(str(db), f"{db}{TEMP_SUFFIX}", damaged, keep_aside=True)]
        out += [
            Replacement(f"{db}{suffix}", None, f"{damaged}{suffix}", keep_aside=True)
            for suffix in ("-wal", "-shm")
            if Path(f"{db}{suffix}").exists()
        ]
    in_backup = {e["name"] for e in backup.manifest["files"] if e["role"] == "config"}
    for name in SETTINGS_FILES:
        target = installation.root / name
        aside = f"{target}.{stamp}" if keep_current else f"{target}{ASIDE_SUFFIX}"
        if name in in_backup:
            out.append(Replacement(str(target), f"{target}{TEMP_SUFFIX}", aside, keep_current))
        elif target.exists() and name not in OTHER_SETTINGS_FILES:
            out.append(Replacement(str(target), None, aside, keep_current))
    return sorted(out, key=lambda r: r.new is None)


def _readable(db: Path) -> bool:
    try:
        open_database(db).close()
        return True
    except (BadInstallation, OSError):
        return False


def _write_temps(installation: Installation, backup: Backup, replacements: list[Replacement]) -> None:
    """Copy each backed-up file beside its target (a database as it was before it was retired: see
    backup.unretired), and check the copy against the manifest."""
    entries = {str(installation.root / e["name"]): e for e in backup.manifest["files"] if e["role"] == "config"}
    entries[str(installation.database)] = next(e for e in backup.manifest["files"] if e["role"] == "database")
    for r in replacements:
        if r.new:
            entry = entries[r.target]
            Path(r.new).parent.mkdir(exist_ok=True)
            create_like(Path(r.new), Path(r.target))
            shutil.copyfile(backup.folder / entry["name"], r.new)
            if entry["role"] == "database":
                unretire_file(Path(r.new))
            if Path(r.target).exists():
                copy_owner_and_mode(Path(r.target), Path(r.new))
            fsync_path(Path(r.new))
            if sha256_file(Path(r.new)) != entry["sha256"]:
                raise NoRoom(
                    T(
                        "Copying {file} from the backup did not give the same file; is the disk full?",
                        file=entry["name"],
                    )
                )
