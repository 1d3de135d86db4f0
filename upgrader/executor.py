"""Runs steps' operations on a connection, inside one transaction that commits only if every check passes."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar, cast

import apsw

from upgrader.errors import UpgradeError, UpgradeFailed
from upgrader.i18n import T
from upgrader.loader import Step
from upgrader.operations import Operation, statements_for
from upgrader.schema import Schema, quote, read_schema

Result = TypeVar("Result")
PROGRESS_OPS = 200_000
OPS_PER_ROW = 30


@dataclass(frozen=True)
class Outcome:
    step: Step
    operation: Operation
    statements: tuple[str, ...]

    @property
    def applied(self) -> bool:
        return bool(self.statements)


def run_steps(
    conn: apsw.Connection,
    steps: list[Step],
    final: Schema,
    on_operation: Callable[[Outcome], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Outcome]:
    """Apply every operation still needed, step after step; skip those already done."""
    outcomes = []
    for step in steps:
        for op in step.operations:
            statements = statements_for(op, read_schema(conn), step.schema, final) or ()
            if statements and op.kind == "rebuild" and progress:
                with rows_progress(conn, op.table, progress):
                    _execute(conn, step, op, statements)
            else:
                _execute(conn, step, op, statements)
            outcomes.append(Outcome(step, op, statements))
            if on_operation:
                on_operation(outcomes[-1])
    return outcomes


@contextmanager
def rows_progress(conn: apsw.Connection, table: str, progress: Callable[[str, int, int], None]):
    """Report an estimate of the rows a rebuild has copied, from SQLite's progress handler.

    One INSERT ... SELECT gives no row count while it runs, so rows are estimated from the
    virtual-machine steps done (about OPS_PER_ROW per row, measured on a 2.4 million-row
    medical_visits), never reaching 100 % before the statement ends.
    """
    (rows,) = cast(tuple[int], conn.execute(f"SELECT count(*) FROM {quote(table)}").fetchone())  # always one row
    stage, ticks = f"rebuild {table}", [0]

    def tick() -> bool:
        ticks[0] += 1
        progress(stage, min(rows - 1, ticks[0] * PROGRESS_OPS // OPS_PER_ROW), rows)
        return False

    conn.set_progress_handler(tick, PROGRESS_OPS)
    try:
        yield
    finally:
        conn.set_progress_handler(None)
    progress(stage, rows, rows)


def _execute(conn: apsw.Connection, step: Step, op: Operation, statements: tuple[str, ...]) -> None:
    try:
        for statement in statements:
            conn.execute(statement)
    except apsw.Error as exc:
        raise UpgradeFailed(
            T("Step {step} could not {operation}: {error}", step=step.label, operation=op.text, error=exc)
        ) from exc


@contextmanager
def rolled_back(conn: apsw.Connection, name: str = "wems_upgrade_trial"):
    """Run the body under a SAVEPOINT that is always undone (ROLLBACK TO, then RELEASE).

    SQLite undoes a savepoint from its rollback journal: with journal_mode=OFF a ROLLBACK TO
    silently keeps every change, so that mode is refused here.
    """
    (mode,) = cast(tuple[str], conn.execute("PRAGMA main.journal_mode").fetchone())  # always one row
    if mode.lower() == "off":
        raise UpgradeFailed(
            T(
                "Cannot try the app's operations: the database has no rollback journal "
                "(journal_mode=OFF), so they could not be undone."
            )
        )
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")


def in_transaction(
    conn: apsw.Connection,
    work: Callable[[apsw.Connection], Result],
    before_commit: Callable[[apsw.Connection, Result], None],
) -> Result:
    """Run `work` then `before_commit` in ONE transaction; roll back on any error.

    Foreign-key enforcement is switched off before BEGIN (it cannot change inside a
    transaction), as SQLite documents for table rebuilds; `before_commit` is where
    PRAGMA foreign_key_check and the other checks run.
    """
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        before_commit(conn, result)
        conn.execute("COMMIT")
        return result
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, (UpgradeError, KeyboardInterrupt, SystemExit)):
            raise
        raise UpgradeFailed(T("The database change failed: {error}", error=exc)) from exc
