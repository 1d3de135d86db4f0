"""The path of one upgrade: plan on the live file, back up, migrate a copy, validate, swap it in.

The installation's database is only read until the final swap, so every refusal and
every failure before it leaves the user's files as they were; the swap itself is
journaled (upgrader.journal), so a crash or error during it is undone.
A dry run is the same path on a copy in the system's temp folder, minus backup and swap.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import apsw

from upgrader import __version__
from upgrader.backup import DATABASE_FILE, Backup, create_backup, default_backup_root
from upgrader.errors import DatabaseInUse, NoRoom, UpgradeError, UpgradeFailed
from upgrader.executor import Outcome, in_transaction, run_steps
from upgrader.installation import Installation
from upgrader.journal import FileSwap, Replacement, crashpoint, journal_path, recover
from upgrader.loader import Catalog, load_catalog
from upgrader.locks import AppLock, check_app_closed, installation_lock
from upgrader.planner import Plan, make_plan
from upgrader.preflight import SpaceNeeds, check_space, check_writable, measure
from upgrader.recorder import record_app_migrations, record_history
from upgrader.snapshot import (attach_readonly, check_database_file, copy_database, copy_owner_and_mode, database_state,
                               fsync_path, hold_exclusive, open_database, remove_quietly)
from upgrader.validator import Check, collect_facts, validate

Progress = Callable[[str, int, int], None]
ORIGINAL = "original"


@dataclass
class UpgradeResult:
    status: str
    installation: Installation
    plan: Plan
    outcomes: list[Outcome] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    backup: Backup | None = None
    space: SpaceNeeds | None = None
    stale_locks: list[AppLock] = field(default_factory=list)
    recovered: str | None = None


@dataclass(frozen=True)
class Options:
    target: str | None = None
    dry_run: bool = False
    backup: bool = True
    backup_root: Path | None = None


def inspect(installation: Installation, target: str | None = None,
            catalog: Catalog | None = None) -> Plan:
    """The plan for `installation`, read-only."""
    catalog = catalog or load_catalog()
    goal = catalog.resolve_target(target)
    with closing(open_database(installation.database)) as conn:
        return make_plan(conn, catalog, goal)


def upgrade(installation: Installation, target: str | None = None, *, dry_run: bool = False,
            backup: bool = True, backup_root: Path | None = None, catalog: Catalog | None = None,
            progress: Progress | None = None) -> UpgradeResult:
    options = Options(target, dry_run, backup, backup_root or default_backup_root(installation))
    if not installation.database.parent.is_dir():
        check_database_file(installation.database)
    with ExitStack() as stack:
        recovered = None
        if not dry_run:
            stack.enter_context(installation_lock(installation.database))
            recovered = recover(installation.database)
        elif journal_path(installation.database).exists():
            raise DatabaseInUse("An interrupted upgrade must be finished first: run wems-upgrade "
                                "without --dry-run.")
        result = _run(installation, options, catalog or load_catalog(), progress)
        result.recovered = recovered
        return result


def _run(installation: Installation, options: Options, catalog: Catalog,
         progress: Progress | None) -> UpgradeResult:
    started = time.monotonic()
    db = installation.database
    workdir = Path(tempfile.gettempdir()) if options.dry_run else db.parent
    work = workdir / f"{db.name}.wems-upgrade-{os.getpid()}.tmp"
    swap = FileSwap(db, [Replacement(str(db), str(work), f"{db}.wems-upgrade-old")], [work])
    result = None
    try:
        with closing(open_database(db)) as source:
            plan = make_plan(source, catalog, catalog.resolve_target(options.target))
            result = UpgradeResult("up_to_date", installation, plan, stale_locks=check_app_closed(source))
            if plan.nothing_to_do:
                return _finished(result, started)
            result.space = _preflight(db, options)
            before = database_state(db)
            if not options.dry_run:
                swap.prepare()
            result.backup = _make_work_copy(installation, source, plan, options, work, progress)
        reference = result.backup.folder / DATABASE_FILE if result.backup else db
        result.outcomes, result.checks = migrate_copy(work, plan, reference)
        crashpoint("migrated")
        if options.dry_run:
            result.status = "dry_run"
            return _finished(result, started)
        _swap_in(db, work, swap, before)
        result.status = "upgraded"
        return _finished(result, started)
    except (OSError, apsw.Error) as exc:
        error = _disk_error(exc)
        if result and result.backup:
            error.details.append(f"The backup made before this attempt is in {result.backup.folder}")
        raise error from exc
    except UpgradeError as error:
        if result and result.backup:
            error.details.append(f"The backup made before this attempt is in {result.backup.folder}")
        raise
    finally:
        if not options.dry_run:
            swap.abandon()
        remove_quietly(work, Path(f"{work}-journal"), Path(f"{work}-wal"), Path(f"{work}-shm"))


def _disk_error(exc: BaseException) -> UpgradeError:
    """A plain-language error for a failed read or write; the installation is as it was."""
    if isinstance(exc, apsw.FullError) or getattr(exc, "errno", None) == errno.ENOSPC:
        return NoRoom("The disk became full during the upgrade. The upgrade was undone.")
    if isinstance(exc, (apsw.ReadOnlyError, PermissionError)) or getattr(exc, "errno", None) == errno.EROFS:
        return NoRoom(f"A file or folder could not be written ({exc}). The upgrade was undone.")
    return UpgradeFailed(f"A file could not be read or written ({exc}).")


def _finished(result: UpgradeResult, started: float) -> UpgradeResult:
    result.seconds = time.monotonic() - started
    return result


def _preflight(db: Path, options: Options) -> SpaceNeeds:
    backup_root = options.backup_root if options.backup else None
    needs = measure(db, backup_root)
    if not options.dry_run:
        check_writable(db.parent, *([backup_root] if backup_root else []))
        check_space(db, backup_root, needs)
    return needs


def _make_work_copy(installation: Installation, source: apsw.Connection, plan: Plan, options: Options,
                    work: Path, progress: Progress | None) -> Backup | None:
    """The verified backup first (then the work copy is a plain copy of it), or a backup-API copy."""
    if options.dry_run or not options.backup:
        copy_database(source, work, _stage(progress, "copy"))
        return None
    details = {"generation_before": plan.current.label, "releases_before": plan.current.releases,
               "target": plan.target.label, "releases_target": plan.target.releases}
    saved = create_backup(installation, source, f"before_upgrade_{plan.target.label}", details,
                          options.backup_root, _stage(progress, "backup"))
    crashpoint("backup_done")
    shutil.copyfile(saved.folder / DATABASE_FILE, work)
    return saved


def _stage(progress: Progress | None, name: str) -> Callable[[int, int], None] | None:
    return (lambda done, total: progress(name, done, total)) if progress else None


def _swap_in(db: Path, work: Path, swap: FileSwap, before: tuple) -> None:
    """Lock the original against everyone, check nobody wrote since the snapshot, swap, commit."""
    copy_owner_and_mode(db, work)
    fsync_path(work)
    holder = hold_exclusive(db, before)
    try:
        crashpoint("wal_folded")
        if os.name == "nt":
            holder.close()
        swap.swap()
    except PermissionError as exc:
        raise DatabaseInUse(f"The database could not be replaced ({exc}): another program has it "
                            "open. The upgrade was undone.") from exc
    finally:
        holder.close()
    crashpoint("swapped")
    try:
        swap.commit()
    except BaseException:
        swap.rollback()
        raise


def migrate_copy(path: Path, plan: Plan, reference: Path) -> tuple[list[Outcome], list[Check]]:
    """Run the plan on the copy at `path` in one transaction; commit only if every check passes.

    `reference` is an untouched copy of the original (the backup, or the live file), to
    which every kept value is compared.
    """
    checks: list[Check] = []
    flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_URI
    with closing(apsw.Connection(str(path), flags=flags)) as conn:
        conn.execute("PRAGMA journal_mode=OFF").fetchall()
        conn.execute("PRAGMA synchronous=OFF")
        attach_readonly(conn, reference, ORIGINAL)
        before = collect_facts(conn)

        def before_commit(c: apsw.Connection, outcomes: list[Outcome]) -> None:
            _check_same_as_plan(outcomes, plan)
            checks.extend(validate(c, before, plan.target.schema, plan.target.label, plan.touched_tables,
                                   ORIGINAL))
            failed = [ch for ch in checks if not ch.ok]
            if failed:
                raise UpgradeFailed("The upgraded database failed its checks, so nothing was changed:",
                                    [f"{ch.name}: {p}" for ch in failed for p in ch.problems])
            record_app_migrations(c, list(plan.app_migrations), datetime.now())
            record_history(c, outcomes, __version__)

        steps = list(plan.steps)
        outcomes = in_transaction(conn, lambda c: run_steps(c, steps, plan.target.schema, _crash_after_operation),
                                  before_commit)
        conn.execute(f"DETACH DATABASE {ORIGINAL}")
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
    return outcomes, checks


def _crash_after_operation(outcome: Outcome) -> None:
    crashpoint(f"operation_{outcome.step.label}_{outcome.operation.target}")


def _check_same_as_plan(outcomes: list[Outcome], plan: Plan) -> None:
    done = [(o.step.generation, o.operation, o.statements) for o in outcomes]
    planned = [(o.step.generation, o.operation, o.statements) for o in plan.outcomes]
    if done != planned:
        raise UpgradeFailed("The database did not behave as the plan predicted; nothing was changed.")
