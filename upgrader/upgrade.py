"""The path of one upgrade: plan on the live file, migrate a snapshot, validate, swap it in.

The installation's database is only ever opened read-only until the final swap, so
every refusal and every failure before it leaves the user's files as they were.
A dry run is the same path on a snapshot in the system's temp folder, minus the swap.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import apsw

from upgrader import __version__
from upgrader.errors import DatabaseInUse, UpgradeFailed
from upgrader.executor import Outcome, in_transaction, run_steps
from upgrader.installation import Installation
from upgrader.loader import Catalog, load_catalog
from upgrader.planner import Plan, make_plan
from upgrader.recorder import record_app_migrations, record_history
from upgrader.snapshot import copy_database, file_state, open_database, remove_quietly, swap_in
from upgrader.validator import Check, collect_facts, validate

Progress = Callable[[str, int, int], None]


@dataclass
class UpgradeResult:
    status: str
    installation: Installation
    plan: Plan
    outcomes: list[Outcome] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0


def inspect(installation: Installation, target: str | None = None,
            catalog: Catalog | None = None) -> Plan:
    """The plan for `installation`, read-only."""
    catalog = catalog or load_catalog()
    goal = catalog.resolve_target(target)
    with closing(open_database(installation.database)) as conn:
        return make_plan(conn, catalog, goal)


def upgrade(installation: Installation, target: str | None = None, *, dry_run: bool = False,
            catalog: Catalog | None = None, progress: Progress | None = None) -> UpgradeResult:
    started = time.monotonic()
    catalog = catalog or load_catalog()
    goal = catalog.resolve_target(target)
    db = installation.database
    workdir = Path(tempfile.gettempdir()) if dry_run else db.parent
    work = workdir / f"{db.name}.wems-upgrade-{os.getpid()}.tmp"
    try:
        with closing(open_database(db)) as source:
            plan = make_plan(source, catalog, goal)
            if plan.nothing_to_do:
                return UpgradeResult("up_to_date", installation, plan, seconds=time.monotonic() - started)
            before = file_state(db)
            copy_database(source, work, _stage(progress, "snapshot"))
        outcomes, checks = migrate_copy(work, plan, catalog)
        if not dry_run:
            if file_state(db) != before:
                raise DatabaseInUse("The database changed while it was being upgraded: "
                                    "Wareflow EMS is probably open.")
            swap_in(work, db)
        status = "dry_run" if dry_run else "upgraded"
        return UpgradeResult(status, installation, plan, outcomes, checks, time.monotonic() - started)
    finally:
        remove_quietly(work, Path(f"{work}-journal"), Path(f"{work}-wal"), Path(f"{work}-shm"))


def _stage(progress: Progress | None, name: str) -> Callable[[int, int], None] | None:
    return (lambda done, total: progress(name, done, total)) if progress else None


def migrate_copy(path: Path, plan: Plan, catalog: Catalog) -> tuple[list[Outcome], list[Check]]:
    """Run the plan on the snapshot at `path` in one transaction; commit only if every check passes."""
    checks: list[Check] = []
    with closing(apsw.Connection(str(path))) as conn:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        before = collect_facts(conn)

        def before_commit(c: apsw.Connection, outcomes: list[Outcome]) -> None:
            _check_same_as_plan(outcomes, plan)
            checks.extend(validate(c, before, plan.target.schema, plan.target.label, plan.touched_tables))
            failed = [ch for ch in checks if not ch.ok]
            if failed:
                raise UpgradeFailed("The upgraded database failed its checks, so nothing was changed:",
                                    [f"{ch.name}: {p}" for ch in failed for p in ch.problems])
            record_app_migrations(c, list(plan.app_migrations), datetime.now())
            record_history(c, outcomes, __version__)

        outcomes = in_transaction(conn, lambda c: run_steps(c, list(plan.steps)), before_commit)
        conn.execute("PRAGMA journal_mode=WAL")
    return outcomes, checks


def _check_same_as_plan(outcomes: list[Outcome], plan: Plan) -> None:
    done = [(o.step.generation, o.operation, o.applied) for o in outcomes]
    planned = [(o.step.generation, o.operation, o.applied) for o in plan.outcomes]
    if done != planned:
        raise UpgradeFailed("The database did not behave as the plan predicted; nothing was changed.")
