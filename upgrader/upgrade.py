"""The path of one upgrade: plan on the live file, fold its WAL, copy it once, migrate the copy,
validate, swap it in; the original becomes the backup.

The installation's database is only read until the final swap (but for folding its WAL into it,
which keeps every row), so every refusal and every failure before it leaves the user's data as
it was; the swap itself is journaled (upgrader.journal), so a crash or error during it is undone.
A dry run is the same path on a backup-API copy in the system's temp folder, minus fold, backup and swap.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Literal, NoReturn, cast

import apsw

from upgrader import __version__, winfs
from upgrader.backup import (
    MANIFEST,
    Backup,
    PendingBackup,
    copy_into,
    default_backup_root,
    fill_pending,
    finish_pending,
    refuse_if_damaged,
    remove_interrupted,
    start_backup,
)
from upgrader.config import ConfigPlan, plan_config
from upgrader.config import replacements as config_replacements
from upgrader.errors import BadInstallation, DatabaseInUse, NoRoom, UpgradeError, UpgradeFailed
from upgrader.executor import Outcome, in_transaction, run_steps
from upgrader.i18n import T, Text
from upgrader.installation import CONFIG_NAMES, Installation, find_config
from upgrader.journal import FileSwap, Replacement, crashpoint, journal_path, recover, remove_logged
from upgrader.loader import Catalog, load_catalog
from upgrader.locks import DEFAULT_LOCK_TIMEOUT_MINUTES, AppLock, check_app_closed, hold_file_lock, installation_lock
from upgrader.planner import Plan, make_plan
from upgrader.preflight import SpaceNeeds, check_space, check_writable, measure
from upgrader.privacy import make_private
from upgrader.recorder import record_app_migrations, record_history
from upgrader.snapshot import (
    RETIRED_HEADER,
    attach_readonly,
    check_database_file,
    check_unchanged,
    contents_state,
    copy_database,
    copy_file,
    copy_owner_and_mode,
    create_like,
    database_state,
    fsync_path,
    hold_exclusive,
    open_database,
)
from upgrader.validator import Check, app_operations_check, checks_whole_file, collect_facts, row_counts, validate

Progress = Callable[[str, int, int], None]
log = logging.getLogger(__name__)
ORIGINAL = "original"
__all__ = [
    "RETIRED_HEADER",
    "Preview",
    "RunStatus",
    "UpgradeResult",
    "apply",
    "migrate_copy",
    "prepare",
    "swap_and_commit",
    "upgrade",
]


class RunStatus(StrEnum):
    """What a run did, as --json names it."""

    UP_TO_DATE = "up_to_date"
    DRY_RUN = "dry_run"
    UPGRADED = "upgraded"
    STATUS = "status"  # --status: only read (upgrader.status)


@dataclass(frozen=True)
class Options:
    target: str | None = None
    dry_run: bool = False
    backup: bool = True
    backup_root: Path = Path("backups")
    full_check: bool = False


@dataclass(frozen=True)
class Preview:
    """All that is known before anything is written (`prepare`): what the question shows, what `apply` does."""

    installation: Installation
    plan: Plan
    config: ConfigPlan
    space: SpaceNeeds
    stale_locks: tuple[AppLock, ...]
    recovered: str | None  # what recovery settled before this run; None: nothing was interrupted
    first: FileFirstState
    options: Options
    seconds: float  # the time prepare took

    @property
    def nothing_to_do(self) -> bool:
        return self.plan.nothing_to_do and not self.config.changes


@dataclass(frozen=True)
class _Ran:
    """What every result carries: the preview it was applied from."""

    preview: Preview

    @property
    def installation(self) -> Installation:
        return self.preview.installation

    @property
    def plan(self) -> Plan:
        return self.preview.plan

    @property
    def config(self) -> ConfigPlan:
        return self.preview.config

    @property
    def space(self) -> SpaceNeeds:
        return self.preview.space

    @property
    def stale_locks(self) -> tuple[AppLock, ...]:
        return self.preview.stale_locks

    @property
    def recovered(self) -> str | None:
        return self.preview.recovered


@dataclass(frozen=True)
class UpToDate(_Ran):
    """Nothing to do: the database is the target and the settings need no change."""

    seconds: float
    status: ClassVar[Literal[RunStatus.UP_TO_DATE]] = RunStatus.UP_TO_DATE


@dataclass(frozen=True)
class DryRun(_Ran):
    """The whole upgrade on a temporary copy, deleted; nothing in the installation changed."""

    outcomes: list[Outcome]
    checks: list[Check]
    seconds: float
    status: ClassVar[Literal[RunStatus.DRY_RUN]] = RunStatus.DRY_RUN

    @property
    def estimated_seconds(self) -> float:
        """What the real run should take (the same one copy; the backup is the original)."""
        return self.seconds


@dataclass(frozen=True)
class Upgraded(_Ran):
    """The upgrade is committed."""

    outcomes: list[Outcome]
    checks: list[Check]
    seconds: float
    backup: Backup | None  # None: --no-backup
    status: ClassVar[Literal[RunStatus.UPGRADED]] = RunStatus.UPGRADED


UpgradeResult = UpToDate | DryRun | Upgraded


def upgrade(
    installation: Installation,
    target: str | None = None,
    *,
    dry_run: bool = False,
    backup: bool = True,
    backup_root: Path | None = None,
    catalog: Catalog | None = None,
    progress: Progress | None = None,
    confirm: Callable[[Preview], None] | None = None,
    full_check: bool = False,
) -> UpgradeResult:
    """Upgrade `installation` to `target` (default: the latest): lock, recover, prepare, confirm, apply.
    `confirm` is called with the preview once every check has passed and before anything is written
    (not for a dry run, nor when there is nothing to do); it may raise to stop.
    `full_check`: check the whole file whatever its size (validator.WHOLE_FILE_CHECK_BYTES)."""
    options = Options(target, dry_run, backup, backup_root or default_backup_root(installation), full_check)
    if not installation.database.parent.is_dir():
        check_database_file(installation.database)
    with ExitStack() as stack:
        recovered = None
        if not dry_run:
            stack.enter_context(installation_lock(installation.database))
            recovered = recover(installation.database)
            remove_interrupted(options.backup_root)
            installation = replace(installation, config=find_config(installation.root))
        elif journal_path(installation.database).exists():
            raise DatabaseInUse(
                T("Another wems-upgrade is running on this installation, or one was interrupted."),
                advice=T(
                    "Nothing was changed. Run wems-upgrade without "
                    "--dry-run to finish an interrupted upgrade, then try the dry run again."
                ),
            )
        preview = prepare(installation, options, catalog or load_catalog(), recovered)
        if confirm and not dry_run and not preview.nothing_to_do:
            _ask(confirm, preview)
        return apply(preview, progress)


def prepare(installation: Installation, options: Options, catalog: Catalog, recovered: str | None = None) -> Preview:
    """Measure the first state, plan, plan the settings, refuse a running app, check the room: nothing is written."""
    started = time.monotonic()
    db = installation.database
    first = None
    try:
        check_database_file(db)
        first = FileFirstState(database_state(db), _settings_state(installation))
        with closing(open_database(db)) as source:
            plan = make_plan(source, catalog, catalog.resolve_target(options.target))
            config = plan_config(
                installation.config,
                plan.target.generation,
                from_generation=plan.current.generation,
                root=installation.root,
            )
            stale = check_app_closed(source, config.timeout_minutes(DEFAULT_LOCK_TIMEOUT_MINUTES))
        space = measure(db, options.backup_root if options.backup else None, backup_is_original=True)
        preview = Preview(
            installation, plan, config, space, tuple(stale), recovered, first, options, time.monotonic() - started
        )
        if not preview.nothing_to_do:
            if not options.dry_run:
                _preflight(db, options, space)
            _log_plan(preview)
        return preview
    except (OSError, apsw.Error) as exc:
        raise _explain(_disk_error(exc), installation, first) from exc
    except UpgradeError as error:
        _raise_explained(error, installation, first)


def _ask(confirm: Callable[[Preview], None], preview: Preview) -> None:
    """The question; a refusal is explained like any other (the database may have changed meanwhile)."""
    try:
        confirm(preview)
    except UpgradeError as error:
        _raise_explained(error, preview.installation, preview.first)


def apply(preview: Preview, progress: Progress | None = None) -> UpgradeResult:
    """Carry out a prepared upgrade: a dry run migrates a temporary copy; a real one folds the WAL, copies
    the database once, fills the backup, migrates the copy and swaps it in. Refuses any change since `prepare`."""
    started = time.monotonic()
    if preview.nothing_to_do:
        return UpToDate(preview, preview.seconds)
    installation, plan, config, options = preview.installation, preview.plan, preview.config, preview.options
    first: FileFirstState = preview.first
    db = installation.database
    workdir = Path(tempfile.mkdtemp(prefix="wems-upgrade-dry-run-")) if options.dry_run else db.parent
    work = workdir / f"{db.name}.wems-upgrade-{os.getpid()}.tmp"
    swap, swapping, pending, marker = None, False, None, ExitStack()
    outcomes: list[Outcome] = []
    checks: list[Check] = []
    try:
        if options.dry_run:
            _private_folder(workdir)
            outcomes, checks = _dry_run_copy(db, first, work, plan, progress, options.full_check)
            return DryRun(preview, outcomes, checks, _seconds(preview, started))
        first = replace(first, database=_fold(db, first.database))
        log.info("folded: the database file alone holds the whole database")
        crashpoint("wal_folded")
        if options.backup:
            pending = start_backup(options.backup_root, f"before_upgrade_{plan.target.label}", db)
            marker.enter_context(hold_file_lock(pending.marker))
        swap = _file_swap(db, work, plan, config, pending)
        swap.prepare()
        digest = None if plan.nothing_to_do else _work_copy(db, work, first, progress)
        log.info("copied and hashed: %s", digest)
        if pending:
            _fill_backup(pending, installation, plan, work if digest else db, digest, progress)
            check_unchanged(db, first.database, "backed up")
            crashpoint("backup_done")
        if not plan.nothing_to_do:
            outcomes, checks = migrate_copy(work, plan, db, progress, options.full_check)
            crashpoint("migrated")
        _write_temps(config)
        swapping = True
        _swap_in(installation, swap, first)
        backup = finish_pending(pending) if pending else None
        log.info("upgraded to %s; backup %s", plan.target.label, backup and backup.folder)
        return Upgraded(preview, outcomes, checks, _seconds(preview, started), backup)
    except (OSError, apsw.Error) as exc:
        raise _explain(_disk_error(exc), installation, None if swapping else first) from exc
    except UpgradeError as error:
        _raise_explained(error, installation, None if swapping else first)
    finally:
        _clean_up(swap if not options.dry_run else None, work)
        _end_backup(pending, marker, swap)
        if options.dry_run:
            shutil.rmtree(workdir, ignore_errors=True)


def _dry_run_copy(
    db: Path, first: FileFirstState, work: Path, plan: Plan, progress: Progress | None, full_check: bool
) -> tuple[list[Outcome], list[Check]]:
    """A dry run: a backup-API copy of the live file (WAL included; the file is never written), migrated."""
    check_unchanged(db, first.database, "read")
    if plan.nothing_to_do:
        return [], []
    create_like(work, db)
    with closing(open_database(db)) as source:
        copy_database(source, work, _stage(progress, "copy"), durable=False)
    crashpoint("work_copied")
    check_unchanged(db, first.database, "copied")
    return migrate_copy(work, plan, db, progress, full_check)


def _fold(db: Path, first: tuple) -> tuple:
    """Hold the database, refuse if it changed since `first`, fold its WAL in and leave WAL mode (the app
    sets it again when it next opens it): the file alone is then the whole database. Its state then."""
    pinned = None if winfs.OPEN_FILES_BLOCK_RENAME else _pin(db)
    try:
        with closing(hold_exclusive(db, first, "read", pinned)):
            return database_state(db, pinned)
    finally:
        if pinned is not None:
            os.close(pinned)


def _work_copy(db: Path, work: Path, first: FileFirstState, progress: Progress | None) -> str:
    """The one copy: the folded original, beside it, hashed in the same pass (its SHA-256 returned);
    created with the original's permissions (less the umask), so it is never more readable than it."""
    create_like(work, db)
    try:
        digest = copy_file(db, work, _stage(progress, "copy"))
    except OSError as exc:
        if winfs.is_sharing_violation(exc):
            raise DatabaseInUse(
                T(
                    "The database could not be read ({reason}): Wareflow EMS is probably open. Nothing was lost.",
                    reason=exc,
                )
            ) from exc
        raise
    crashpoint("work_copied")
    check_unchanged(db, first.database, "copied")
    return digest


def _fill_backup(
    pending: PendingBackup,
    installation: Installation,
    plan: Plan,
    source: Path,
    digest: str | None,
    progress: Progress | None,
) -> None:
    """Settings and manifest into the backup folder; a copy of the database too where the swap cannot
    keep the original there by hard link (`source`: the unmigrated work copy, or the database itself)."""
    if not pending.linked or digest is None:
        digest = copy_into(pending, source, digest, _stage(progress, "backup"))
    with closing(open_database(source)) as conn:
        counts = row_counts(conn)
    details = {
        "generation_before": plan.current.label,
        "releases_before": plan.current.releases,
        "target": plan.target.label,
        "releases_target": plan.target.releases,
    }
    fill_pending(
        pending, installation, f"before_upgrade_{plan.target.label}", details, (source.stat().st_size, digest), counts
    )


def _end_backup(pending: PendingBackup | None, marker: ExitStack, swap: FileSwap | None) -> None:
    """Let go of the backup's marker; then drop it (swap committed) or the whole folder (nothing
    swapped; a half-done swap keeps it: the original may be in it, for the next run to put back)."""
    marker.close()
    if pending is None:
        return
    if swap and swap.state == "done":
        remove_logged(pending.marker)
        crashpoint("backup_complete")
    elif not (swap and swap.unfinished):
        shutil.rmtree(pending.folder, ignore_errors=True)


@dataclass(frozen=True)
class FirstState:
    """The installation as it was when first read: what the plan, the backup and the copy are made of."""

    database: tuple | None
    settings: tuple


@dataclass(frozen=True)
class FileFirstState(FirstState):
    """The first state of a database file that exists: what an upgrade compares with."""

    database: tuple


def first_state(installation: Installation) -> FirstState:
    """Measured before the database is opened and before the settings are read, so that any
    change after this moment, even one the reads already saw, is caught by a later comparison."""
    db = installation.database
    return FirstState(database_state(db) if db.is_file() else None, _settings_state(installation))


def _settings_state(installation: Installation) -> tuple:
    return contents_state([installation.root / name for name in CONFIG_NAMES])


def check_settings_unchanged(installation: Installation, expected: tuple) -> None:
    """Refuse (DatabaseInUse) if a settings file was created, edited or removed since `expected`."""
    if _settings_state(installation) != expected:
        raise DatabaseInUse(
            T(
                "A settings file was changed while wems-upgrade was running: Wareflow EMS "
                "or an editor is probably open. Nothing was lost: the settings keep every change."
            )
        )


def _raise_explained(error: UpgradeError, installation: Installation, first: FileFirstState | None) -> NoReturn:
    """Raise `error`, or the true cause that explains it (chained to it)."""
    cause = _explain(error, installation, first)
    if cause is error:
        raise error
    raise cause from error


def _explain(error: UpgradeError, installation: Installation, first: FileFirstState | None) -> UpgradeError:
    """The true cause of a run that failed before its swap: the database changed under it (reads of
    a file being written can fail: it is in use), or it was damaged already (its own fault, exit 3)."""
    if first is None or isinstance(error, DatabaseInUse):
        return error
    try:
        check_unchanged(installation.database, first.database, "upgraded")
        if isinstance(error, UpgradeFailed):
            with closing(open_database(installation.database)) as source:
                refuse_if_damaged(installation.database, source)
    except (DatabaseInUse, BadInstallation) as cause:
        return cause
    except OSError:
        pass
    return error


def _private_folder(folder: Path) -> None:
    problem = make_private(folder)
    if problem:
        log.warning("the dry run's temporary folder %s could not be made private: %s", folder, problem)


def _clean_up(swap: FileSwap | None, work: Path) -> None:
    """Delete the temps, unless a half-done swap still needs them; a failure here is only logged."""
    if swap:
        swap.abandon()
    if not (swap and swap.unfinished):
        remove_logged(work, Path(f"{work}-journal"), Path(f"{work}-wal"), Path(f"{work}-shm"))


def _log_plan(preview: Preview) -> None:
    plan, config = preview.plan, preview.config
    log.info(
        "database %s: %s -> %s, %d operation(s) to apply, %d already present, app migrations %s",
        preview.installation.database,
        plan.current.label,
        plan.target.label,
        len(plan.applied),
        len(plan.outcomes) - len(plan.applied),
        list(plan.app_migrations),
    )
    if config.source:
        log.info(
            "settings %s (%s): %s", config.source.name, config.shape, [c.name for c in config.converters] or "unchanged"
        )


def _file_swap(db: Path, work: Path, plan: Plan, config: ConfigPlan, pending: PendingBackup | None) -> FileSwap:
    """The files this upgrade replaces: the database (if its schema changes; its aside is the backup's
    database where a hard link can put it there), the settings file, and the backup's manifest last."""
    settings = config_replacements(config)
    linked = pending is not None and pending.linked
    aside = str(pending.database) if pending is not None and pending.linked else f"{db}.wems-upgrade-old"
    replacements = [] if plan.nothing_to_do else [Replacement(str(db), str(work), aside, linked)]
    replacements += [Replacement(str(t), str(n) if n else None, str(a), keep) for t, n, a, keep in settings]
    temps = [work, Path(f"{work}-journal")] + [n for _t, n, _a, _k in settings if n]
    if pending:
        manifest = pending.folder / MANIFEST
        replacements.append(Replacement(str(manifest), str(pending.manifest_temp), f"{manifest}.wems-upgrade-old"))
        temps.append(pending.manifest_temp)
    return FileSwap(db, replacements, temps)


def _write_temps(config: ConfigPlan) -> None:
    """The new settings file beside its target, fsynced, with the old file's permissions."""
    for _target, temp, _aside, _keep in config_replacements(config):
        if temp:
            create_like(temp, config.source)
            with open(temp, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(cast(str, config.new_text))  # a plan that writes the settings has their text
                handle.flush()
                os.fsync(handle.fileno())
            if config.source:
                copy_owner_and_mode(config.source, temp)


def _disk_error(exc: BaseException) -> UpgradeError:
    """A plain-language error for a failed read or write; the installation is as it was."""
    if isinstance(exc, apsw.FullError) or getattr(exc, "errno", None) == errno.ENOSPC:
        return NoRoom(T("The disk became full during the upgrade. The upgrade was undone."))
    if isinstance(exc, (apsw.ReadOnlyError, PermissionError)) or getattr(exc, "errno", None) == errno.EROFS:
        return NoRoom(T("A file or folder could not be written ({reason}). The upgrade was undone.", reason=exc))
    return UpgradeFailed(T("A file could not be read or written ({reason}).", reason=exc))


def _seconds(preview: Preview, started: float) -> float:
    """The time the run took: preparing, and applying since `started` (not the question in between)."""
    return preview.seconds + time.monotonic() - started


def _preflight(db: Path, options: Options, needs: SpaceNeeds) -> None:
    """Room for the work copy beside the database, and for the backup's copy where it is on another volume."""
    backup_root = options.backup_root if options.backup else None
    check_writable(db.parent, *([backup_root] if backup_root else []))
    check_space(db, backup_root, needs)


def _stage(progress: Progress | None, name: str) -> Callable[[int, int], None] | None:
    return (lambda done, total: progress(name, done, total)) if progress else None


def _swap_in(installation: Installation, swap: FileSwap, first: FirstState) -> None:
    """Lock the original against everyone, check nobody wrote it or the settings since they were
    first read, swap, commit."""
    db = installation.database
    work = next((Path(r.new) for r in swap.replacements if r.target == str(db) and r.new), None)
    try:
        if work:
            copy_owner_and_mode(db, work)
            fsync_path(work)
        swap_and_commit(
            db,
            swap,
            first.database if work else None,
            lambda: check_settings_unchanged(installation, first.settings),
            "swapped",
        )
    except PermissionError as exc:
        raise DatabaseInUse(
            T(
                "A file could not be replaced ({reason}): another program has it open. The upgrade was undone.",
                reason=exc,
            )
        ) from exc


def swap_and_commit(
    db: Path, swap: FileSwap, expected: tuple | None, check: Callable[[], None], swapped: str, doing: str = "upgraded"
) -> None:
    """With `expected` (the database's first state), hold the database exclusively and refuse if it
    changed; swap (`check` runs just before the first rename); record the commit; let go.

    Where it is held through the renames (POSIX), one descriptor of the database stays open until
    the lock is let go (closing any would drop it), and the replaced database is made unreadable
    before that: a program that opened it meanwhile and waits for our lock would otherwise write
    into a file that is no longer the database. It gets "file is not a database" instead."""
    pinned = _pin(db) if expected and not winfs.OPEN_FILES_BLOCK_RENAME else None
    holder = None
    try:
        if expected:
            holder = hold_exclusive(db, expected, doing, pinned)
            crashpoint("held")
        swap.swap(then(set_aside_while_held(db, swap, holder, pinned) if holder else None, check))
        crashpoint(swapped)
        swap.complete()
        if pinned is not None:
            _retire(pinned)
            crashpoint("retired")
    finally:
        if holder:
            holder.close()
        if pinned is not None:
            os.close(pinned)


def _pin(db: Path) -> int:
    try:
        return os.open(db, os.O_RDWR)
    except PermissionError:
        return os.open(db, os.O_RDONLY)


def _retire(fd: int) -> None:
    """Overwrite the header of a replaced database (already kept aside, the swap committed): where it is
    the backup, readers of backups put SQLite's header back (backup.unretired); its SHA-256 is the original's."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, RETIRED_HEADER)
    except OSError as exc:
        log.warning("the replaced database could not be marked as replaced: %s", exc)


def then(first: Callable[[], None] | None, second: Callable[[], None]) -> Callable[[], None]:
    def both() -> None:
        if first:
            first()
        second()

    return both


def set_aside_while_held(
    db: Path, swap: FileSwap, holder: apsw.Connection, pinned: int | None = None
) -> Callable[[], None]:
    """Keep the original aside (a copy where no hard link can be made) while nobody else can
    write it. Where an open file cannot be renamed (Windows), let go of it. Return the check
    that nobody wrote it since, to run just before the rename (on POSIX too: copying the aside
    opens and closes the database, which drops the process's locks on it)."""
    held = database_state(db, pinned)
    swap.set_aside(db)
    crashpoint("aside_linked")
    if winfs.OPEN_FILES_BLOCK_RENAME:
        holder.close()

    def unchanged() -> None:
        if database_state(db, pinned) != held:
            raise DatabaseInUse(
                T(
                    "The database changed while it was being replaced: Wareflow EMS is "
                    "probably open. The upgrade was undone."
                )
            )

    return unchanged


def migrate_copy(
    path: Path, plan: Plan, reference: Path, progress: Progress | None = None, full_check: bool = False
) -> tuple[list[Outcome], list[Check]]:
    """Run the plan on the copy at `path` in one transaction; commit only if every check passes.

    `reference` is an untouched copy of the original (the backup, or the live file), to
    which every kept value is compared. The checks read the whole file up to
    validator.WHOLE_FILE_CHECK_BYTES, or with `full_check`; else the changed tables.
    """
    checks: list[Check] = []
    flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_URI
    with closing(apsw.Connection(str(path), flags=flags)) as conn:
        # A rollback journal, not OFF: the app's operations run under a SAVEPOINT that must really
        # be undone, and SQLite undoes one from the journal (OFF keeps the changes). On disk, not
        # MEMORY: pages a rebuild frees and a later one reuses would all be held in RAM.
        conn.execute("PRAGMA journal_mode=DELETE").fetchall()
        conn.execute("PRAGMA synchronous=OFF")
        # SQLite's default cache (2 MB), temp_store and threads: on the 1.1 GB g1 (g1 -> g8 SQL, 17-18 s
        # of CPU) a 32 or 64 MB cache, temp_store=MEMORY or threads=2 saved no CPU time and cost 70,
        # 135, 215 MB of RSS (the sorter takes as much again as the cache); 128 MB passes 150 MB.
        attach_readonly(conn, reference, ORIGINAL)
        before = collect_facts(conn, None if checks_whole_file(conn, full_check) else plan.touched_tables)
        log.info(
            "migrating the copy; the checks will read %s",
            "the whole file"
            if before.scope is None
            else f"the {len(before.scope)} changed table(s), not the whole file",
        )

        def before_commit(c: apsw.Connection, outcomes: list[Outcome]) -> None:
            _check_same_as_plan(outcomes, plan)
            checks.extend(
                validate(
                    c,
                    before,
                    plan.target.schema,
                    plan.target.label,
                    plan.touched_tables,
                    ORIGINAL,
                    _stage(progress, "checks"),
                    full_check,
                )
            )
            log.info("checks: %s", [(ch.name, ch.ok, ch.detail) for ch in checks])
            failed = [ch for ch in checks if not ch.ok]
            if not failed:
                checks.append(app_operations_check(c, plan.target, whole=before.scope is None))
                log.info("checks: %s", [(ch.name, ch.ok, ch.detail) for ch in checks[-1:]])
                failed = [ch for ch in checks if not ch.ok]
            if failed:
                raise UpgradeFailed(
                    T("The upgraded database failed its checks, so nothing was changed:"),
                    [
                        T("{check}: {problem}", check=_text(ch.name), problem=_text(p))
                        for ch in failed
                        for p in ch.problems
                    ],
                )
            record_app_migrations(c, list(plan.app_migrations), datetime.now())
            record_history(c, outcomes, __version__)

        steps = list(plan.steps)
        outcomes = in_transaction(
            conn, lambda c: run_steps(c, steps, plan.target.schema, _crash_after_operation, progress), before_commit
        )
        conn.execute(f"DETACH DATABASE {ORIGINAL}")
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
    return outcomes, checks


def _text(value: str | Text) -> Text:
    """A check's name or problem as a Text: translated where the catalogue knows it, else as it is."""
    return value if isinstance(value, Text) else Text(value)


def _crash_after_operation(outcome: Outcome) -> None:
    if outcome.applied:
        log.info("%s: %s", outcome.step.label, outcome.operation.describe())
    crashpoint(f"operation_{outcome.step.label}_{outcome.operation.target}")


def _check_same_as_plan(outcomes: list[Outcome], plan: Plan) -> None:
    done = [(o.step.generation, o.operation, o.statements) for o in outcomes]
    planned = [(o.step.generation, o.operation, o.statements) for o in plan.outcomes]
    if done != planned:
        raise UpgradeFailed(T("The database did not behave as the plan predicted; nothing was changed."))
