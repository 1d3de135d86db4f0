"""Verified backups of an installation: the database, every settings file as it was (config.yaml/yml/json,
config/backup_config.json, config/alert_settings.json), and a manifest of sizes, SHA-256 digests and row counts.

A restore's backup is a backup-API snapshot (create_backup). An upgrade's is filled in three moves
(start_backup, fill_pending, finish_pending): its database is the original file itself, which the
upgrade's swap keeps there (a hard link) as the new one takes its place, and its manifest is placed
by the same journaled swap. On POSIX that file then starts with RETIRED_HEADER instead of SQLite's
(see upgrade.swap_and_commit); every reader here puts SQLite's header back (`unretired`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import apsw

from upgrader import __version__
from upgrader.config import SETTINGS_FILES
from upgrader.errors import BadBackup, DatabaseInUse, NoRoom, UpgradeError, UpgradeFailed, damaged_database
from upgrader.i18n import N_, T, Text
from upgrader.installation import Installation
from upgrader.journal import INCOMPLETE_MARKER, write_atomically
from upgrader.locks import hold_file_lock, is_abandoned
from upgrader.privacy import PRIVATE_DIR, PRIVATE_FILE, make_private
from upgrader.snapshot import (
    RETIRED_HEADER,
    SQLITE_HEADER,
    copy_database,
    copy_file,
    database_state,
    fsync_path,
    open_database,
    sqlite_uri,
)
from upgrader.validator import row_counts
from upgrader.winfs import link, unlink

MANIFEST = "manifest.json"
DATABASE_FILE = "employee_manager.db"
FULL_CHECK_LIMIT = 64 * 1024 * 1024
MANIFEST_TEMP = f"{MANIFEST}.wems-upgrade-new"
UNRETIRED_VFS = "wems-unretired"
OUR_FOLDER = re.compile(r"^before_(upgrade|restore)\w*_\d{8}-\d{6}(_\d{1,2})?$")
#: Why a folder of ours is not a backup (English, as --json lists it; shown with i18n.localize()).
INTERRUPTED = N_("incomplete: a run was stopped while making it (no manifest); the next upgrade removes it")
IN_PROGRESS = N_("incomplete: another wems-upgrade is making it right now")
NO_MANIFEST = N_(
    "incomplete, or not made by wems-upgrade: it has no manifest; it is never used or removed automatically"
)
OPTIONAL_TEXT = (
    "kind",
    "installation",
    "upgrader_version",
    "generation_before",
    "releases_before",
    "target",
    "releases_target",
    "restoring",
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backup:
    """A verified backup. `privacy_problem` (only set by create_backup): why the backup could
    not be made readable by its owner only (e.g. a FAT32 stick); None when it is private."""

    folder: Path
    manifest: dict
    privacy_problem: str | None = None

    @property
    def size(self) -> int:
        return sum(f["size"] for f in self.manifest["files"])

    @property
    def created_at(self) -> str:
        return self.manifest["created_at"]


def sha256_file(path: Path, database: bool = False) -> str:
    """SHA-256 of a file; of a `database`, as it was before it was retired (see `unretired`)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(unretired(block) if database and handle.tell() == len(block) else block)
    return digest.hexdigest()


def unretired(first_block: bytes) -> bytes:
    """A database file's first bytes as they were before upgrade._retire overwrote its header."""
    return SQLITE_HEADER + first_block[len(RETIRED_HEADER) :] if first_block.startswith(RETIRED_HEADER) else first_block


def unretire_file(path: Path) -> None:
    """Put SQLite's header back into a copy of a retired database (a restore's temp file)."""
    with open(path, "r+b") as handle:
        if handle.read(len(RETIRED_HEADER)) == RETIRED_HEADER:
            handle.seek(0)
            handle.write(SQLITE_HEADER)


class _UnretiredFile(apsw.VFSFile):
    """A database file read as it was before it was retired."""

    def __init__(self, name, flags) -> None:
        super().__init__("", name, flags)

    def xRead(self, amount: int, offset: int) -> bytes:
        data = super().xRead(amount, offset)
        return unretired(data) if offset == 0 else data


class _UnretiredVFS(apsw.VFS):
    def __init__(self) -> None:
        super().__init__(UNRETIRED_VFS, "")

    def xOpen(self, name, flags) -> _UnretiredFile:
        return _UnretiredFile(name, flags)


_VFS: list[_UnretiredVFS] = []


def open_backup_database(path: Path) -> apsw.Connection:
    """Open a backup's database read-only, retired or not, leaving no file behind."""
    with open(path, "rb") as handle:
        retired = handle.read(len(RETIRED_HEADER)) == RETIRED_HEADER
    if not retired:
        return open_database(path)
    if not _VFS:
        _VFS.append(_UnretiredVFS())
    return apsw.Connection(
        sqlite_uri(path) + "?immutable=1", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI, vfs=UNRETIRED_VFS
    )


def default_backup_root(installation: Installation) -> Path:
    return installation.root / "backups"


def _new_folder(root: Path, kind: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    for n in range(100):
        folder = root / (f"{kind}_{stamp}" + (f"_{n}" if n else ""))
        try:
            folder.mkdir(mode=PRIVATE_DIR)
            return folder
        except FileExistsError:
            continue
    raise UpgradeFailed(T("Could not create a backup folder in {folder}.", folder=root))


class _Privacy:
    """Makes the folder, then each file, private; remembers the first reason it could not."""

    def __init__(self) -> None:
        self.problem: str | None = None

    def apply(self, path: Path) -> None:
        problem = make_private(path)
        if problem and not self.problem:
            self.problem = problem
            log.warning("the backup could not be made readable by its owner only (%s): %s", path, problem)


def _file_entry(folder: Path, name: str, role: str, original: Path, root: Path, privacy: _Privacy) -> dict:
    path = folder / name
    privacy.apply(path)
    return {
        "name": name,
        "role": role,
        "original": _relative(original, root),
        "size": path.stat().st_size,
        "sha256": sha256_file(path),
    }


def _relative(original: Path, root: Path) -> str:
    try:
        return original.relative_to(root).as_posix()
    except ValueError:
        return str(original)


def _copy_configs(installation: Installation, folder: Path, privacy: _Privacy) -> list[dict]:
    entries = []
    for name in SETTINGS_FILES:
        source = installation.root / name
        if source.is_file():
            (folder / name).parent.mkdir(exist_ok=True)
            shutil.copyfile(source, folder / name)
            fsync_path(folder / name)
            entries.append(_file_entry(folder, name, "config", source, installation.root, privacy))
    return entries


def create_backup(
    installation: Installation,
    source: apsw.Connection,
    kind: str,
    details: dict,
    root: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Backup:
    """Snapshot the database (WAL content included) and config files into a new private folder, then verify.

    The folder is made private before anything is written into it, then each file. Where that
    cannot be done (a drive without permissions), the backup is made all the same: the returned
    Backup says why in `privacy_problem`, and the log has it as a warning.
    """
    root = root or default_backup_root(installation)
    remove_interrupted(root)
    folder = _new_folder(root, kind)
    try:
        privacy = _Privacy()
        privacy.apply(folder)
        with hold_file_lock(folder / INCOMPLETE_MARKER):
            backup = _fill(folder, installation, source, kind, details, progress, privacy)
        (folder / INCOMPLETE_MARKER).unlink()
        return replace(backup, privacy_problem=privacy.problem)
    except (BadBackup, apsw.Error):
        shutil.rmtree(folder, ignore_errors=True)
        refuse_if_damaged(installation.database, source)
        raise
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _manifest(installation: Installation, kind: str, details: dict, files: list[dict], counts: dict) -> dict:
    return {
        "format": 1,
        "kind": kind,
        "created_at": datetime.now(UTC).isoformat(),
        "upgrader_version": __version__,
        "installation": str(installation.root),
        **details,
        "files": files,
        "row_counts": counts,
    }


def _fill(
    folder: Path,
    installation: Installation,
    source: apsw.Connection,
    kind: str,
    details: dict,
    progress: Callable[[int, int], None] | None,
    privacy: _Privacy,
) -> Backup:
    """Copy the database and config files into `folder`, write the manifest last, verify."""
    state = database_state(installation.database)
    copy_database(source, folder / DATABASE_FILE, progress, journal_mode="delete")
    if database_state(installation.database) != state:
        raise DatabaseInUse(T("The database changed while it was being backed up: Wareflow EMS is probably open."))
    files = [_file_entry(folder, DATABASE_FILE, "database", installation.database, installation.root, privacy)]
    files += _copy_configs(installation, folder, privacy)
    with closing(apsw.Connection(str(folder / DATABASE_FILE), flags=apsw.SQLITE_OPEN_READONLY)) as conn:
        counts = row_counts(conn)
    manifest = _manifest(installation, kind, details, files, counts)
    write_atomically(
        folder / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"), PRIVATE_FILE
    )
    privacy.apply(folder / MANIFEST)
    return verify_backup(folder, rehash=False)


@dataclass
class PendingBackup:
    """An upgrade's backup until its swap commits: `linked`, the swap keeps the original database
    in it by hard link; else it holds a copy (another volume, or no hard links)."""

    folder: Path
    linked: bool
    manifest: dict | None = None
    privacy: _Privacy = field(default_factory=_Privacy)

    @property
    def database(self) -> Path:
        return self.folder / DATABASE_FILE

    @property
    def manifest_temp(self) -> Path:
        return self.folder / MANIFEST_TEMP

    @property
    def marker(self) -> Path:
        return self.folder / INCOMPLETE_MARKER


def start_backup(root: Path, kind: str, database: Path) -> PendingBackup:
    """A new private folder for an upgrade's backup; hold_file_lock(`marker`) at once (it says incomplete)."""
    remove_interrupted(root)
    folder = _new_folder(root, kind)
    pending = PendingBackup(folder, linked=False)
    pending.privacy.apply(folder)
    pending.linked = _can_link(database.parent, folder)
    return pending


def _can_link(source_dir: Path, folder: Path) -> bool:
    """Whether a file of `source_dir` can get a hard link in `folder`: same volume, and links work there."""
    if os.stat(source_dir).st_dev != os.stat(folder).st_dev:
        return False
    probe, second = folder / ".wems-upgrade-link-probe", folder / ".wems-upgrade-link-probe-2"
    try:
        probe.write_bytes(b"")
        link(probe, second)
        return True
    except OSError as exc:
        log.info("no hard links in %s (%s): the backup gets a copy of the database", folder, exc)
        return False
    finally:
        unlink(second)
        unlink(probe)


def copy_into(
    pending: PendingBackup, source: Path, sha256: str | None, progress: Callable[[int, int], None] | None
) -> str:
    """The backup's own copy of the database, read back and checked against `sha256` (that of the
    original, else of what the copy read); returns that SHA-256."""
    os.close(os.open(pending.database, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), PRIVATE_FILE))
    read = copy_file(source, pending.database, progress)
    fsync_path(pending.database)
    sha256 = sha256 or read
    if read != sha256 or sha256_file(pending.database) != sha256:
        raise NoRoom(
            T("The backup of the database in {folder} is not the same file; is the disk full?", folder=pending.folder)
        )
    pending.privacy.apply(pending.database)
    return sha256


def fill_pending(
    pending: PendingBackup,
    installation: Installation,
    kind: str,
    details: dict,
    database: tuple[int, str],
    counts: dict,
) -> None:
    """Copy the settings files; write the manifest beside its name (the swap places it). `database`:
    the size and SHA-256 of the original database, read while nobody wrote it."""
    size, sha256 = database
    entry = {
        "name": DATABASE_FILE,
        "role": "database",
        "original": _relative(installation.database, installation.root),
        "size": size,
        "sha256": sha256,
    }
    files = [entry] + _copy_configs(installation, pending.folder, pending.privacy)
    pending.manifest = _manifest(installation, kind, details, files, counts)
    text = json.dumps(pending.manifest, indent=2, ensure_ascii=False).encode("utf-8")
    write_atomically(pending.manifest_temp, text, PRIVATE_FILE)
    pending.privacy.apply(pending.manifest_temp)


def finish_pending(pending: PendingBackup) -> Backup:
    """After the swap committed: the database file, no longer the live one, made private."""
    pending.privacy.apply(pending.database)
    pending.privacy.apply(pending.folder / MANIFEST)
    manifest = cast(dict, pending.manifest)  # fill_pending wrote it before the swap
    return Backup(pending.folder, manifest, pending.privacy.problem)


def _database_problems(conn: apsw.Connection, size: int) -> list[str]:
    """What SQLite's check finds wrong (integrity_check up to FULL_CHECK_LIMIT, else quick_check)."""
    check = "integrity_check" if size <= FULL_CHECK_LIMIT else "quick_check"
    try:
        result = [row[0] for row in conn.execute(f"PRAGMA {check}")]
    except apsw.Error as exc:
        return [str(exc)]
    return [] if result == ["ok"] else result


def refuse_if_damaged(database: Path, source: apsw.Connection) -> None:
    """A copy or a migration that fails may only reflect a damaged original: then blame the original."""
    problems = _database_problems(source, database.stat().st_size)
    if problems:
        raise damaged_database(database, problems) from None


def remove_interrupted(root: Path) -> None:
    """Delete the backup folders a run stopped while making (ours, no manifest, nobody at work on them);
    finish those whose upgrade committed before it was stopped (private database, no marker)."""
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        reason = _incomplete_reason(folder)
        if reason == INTERRUPTED:
            shutil.rmtree(folder, ignore_errors=True)
            log.info(
                "removed the incomplete backup %s, left by a run that was stopped while making it%s",
                folder,
                " (could not remove all of it)" if folder.exists() else "",
            )
        elif reason is None and OUR_FOLDER.match(folder.name) and _abandoned(folder / INCOMPLETE_MARKER):
            make_private(folder / DATABASE_FILE)
            unlink(folder / INCOMPLETE_MARKER)
            log.info("finished the backup %s, left by a run stopped just after its upgrade", folder)


def _abandoned(marker: Path) -> bool:
    return marker.is_file() and is_abandoned(marker)


def _incomplete_reason(folder: Path) -> str | None:
    """Why a folder of ours holding no manifest is not a backup; None for anything else."""
    if not OUR_FOLDER.match(folder.name) or not folder.is_dir() or (folder / MANIFEST).exists():
        return None
    marker = folder / INCOMPLETE_MARKER
    if not marker.is_file():
        return NO_MANIFEST
    return INTERRUPTED if is_abandoned(marker) else IN_PROGRESS


def read_manifest(folder: Path) -> dict:
    _refuse_a_file(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadBackup(
            T("{folder} is not a wems-upgrade backup (no {manifest}).", folder=folder, manifest=MANIFEST)
        ) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadBackup(T("The manifest of {folder} is damaged: {reason}.", folder=folder, reason=exc)) from None
    except OSError as exc:
        raise BadBackup(
            T("The manifest of {folder} cannot be read ({reason}).", folder=folder, reason=exc.strerror or exc)
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != 1 or not _valid_files(manifest.get("files")):
        raise BadBackup(T("{folder} does not hold a backup this wems-upgrade can read.", folder=folder))
    if (
        not _is_counts(manifest.get("row_counts"))
        or not isinstance(manifest.get("created_at"), str)
        or any(not isinstance(manifest.get(key, ""), str) for key in OPTIONAL_TEXT)
    ):
        raise BadBackup(T("The manifest of {folder} is incomplete or holds values of the wrong kind.", folder=folder))
    return manifest


def _refuse_a_file(path: Path) -> None:
    """A backup is a folder: name the one to give instead of a file, such as its manifest."""
    if not path.exists() or path.is_dir():
        return
    if (path.parent / MANIFEST).is_file():
        raise BadBackup(
            T("{path} is a file, not a backup folder.", path=path),
            advice=T(
                'Nothing was changed. Give the backup\'s folder: --restore "{folder}" '
                "(wems-upgrade --list-backups shows them).",
                folder=path.parent,
            ),
        )
    raise BadBackup(T("{path} is a file, not a backup folder.", path=path))


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_counts(counts) -> bool:
    return isinstance(counts, dict) and all(_is_count(v) for v in counts.values())


def _valid_files(files) -> bool:
    """Exactly one database entry named employee_manager.db; config entries named as the app's, once each."""
    if not isinstance(files, list) or not all(
        isinstance(f, dict)
        and isinstance(f.get("name"), str)
        and _is_count(f.get("size"))
        and isinstance(f.get("sha256"), str)
        and isinstance(f.get("original", ""), str)
        for f in files
    ):
        return False
    databases = [f["name"] for f in files if f.get("role") == "database"]
    configs = [f["name"] for f in files if f.get("role") == "config"]
    return (
        databases == [DATABASE_FILE]
        and len(set(configs)) == len(configs)
        and set(configs) <= set(SETTINGS_FILES)
        and len(databases) + len(configs) == len(files)
    )


def verify_backup(folder: Path, *, rehash: bool = True) -> Backup:
    """Check every file's size and SHA-256, then open the database and check it and its row counts.

    `rehash=False` right after writing: the digests were just computed from the written files.
    """
    manifest = read_manifest(folder)
    problems: list[str | Text] = []
    for entry in manifest["files"]:
        path = folder / entry["name"]
        if (Path(entry["name"]).name != entry["name"] and entry["name"] not in SETTINGS_FILES) or not path.is_file():
            problems.append(T("{file} is missing", file=entry["name"]))
        elif path.stat().st_size != entry["size"] or (
            rehash and sha256_file(path, entry.get("role") == "database") != entry["sha256"]
        ):
            problems.append(T("{file} has been changed or damaged since the backup was made", file=entry["name"]))
    if not any(e.get("role") == "database" for e in manifest["files"]):
        problems.append(T("the backup holds no database"))
    if problems:
        raise BadBackup(T("The backup {folder} cannot be trusted:", folder=folder), problems)
    _check_database(folder / DATABASE_FILE, manifest)
    return Backup(folder, manifest)


def _check_database(path: Path, manifest: dict) -> None:
    try:
        with closing(open_backup_database(path)) as conn:
            problems = _database_problems(conn, path.stat().st_size)
            counts = None if problems else row_counts(conn)
    except (apsw.Error, UpgradeError) as exc:
        reason = exc.text if isinstance(exc, UpgradeError) else exc
        raise BadBackup(
            T("The database in {folder} cannot be read: {reason}", folder=path.parent, reason=reason)
        ) from exc
    if problems:
        raise BadBackup(T("The database in {folder} is damaged:", folder=path.parent), problems[:10])
    if counts != manifest.get("row_counts"):
        raise BadBackup(T("The database in {folder} does not hold the rows its manifest lists.", folder=path.parent))


def list_backups(root: Path) -> list[Backup | tuple[Path, str | Text]]:
    """Every folder of `root` holding a manifest, newest first; unreadable ones, and incomplete
    ones of ours, as (folder, reason): English, or a Text (english() for --json, str() to show)."""
    if not root.is_dir():
        return []
    found: list[Backup] = []
    unreadable: list[tuple[Path, str | Text]] = []
    for folder in sorted(root.iterdir()):
        if (reason := _incomplete_reason(folder)) is not None:
            unreadable.append((folder, reason))
            continue
        if not (folder / MANIFEST).is_file():
            continue
        try:
            found.append(Backup(folder, read_manifest(folder)))
        except BadBackup as exc:
            unreadable.append((folder, exc.text))
    return [*sorted(found, key=lambda b: b.created_at, reverse=True), *unreadable]
