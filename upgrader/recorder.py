"""Writes down what was done: the app's own `migrations` table and wems-upgrade's history table."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import apsw

from upgrader.executor import Outcome
from upgrader.schema import HISTORY_TABLE, has_table

HISTORY_DDL = f"""CREATE TABLE IF NOT EXISTS "{HISTORY_TABLE}" (
    "id" INTEGER PRIMARY KEY,
    "run_at" TEXT NOT NULL,
    "upgrader_version" TEXT NOT NULL,
    "generation" INTEGER NOT NULL,
    "step" TEXT NOT NULL,
    "checksum" TEXT NOT NULL,
    "operations_applied" INTEGER NOT NULL,
    "operations_skipped" INTEGER NOT NULL
)"""


def recorded_app_migrations(conn: apsw.Connection) -> set[str]:
    if not has_table(conn, "migrations"):
        return set()
    return {row[0] for row in conn.execute('SELECT "name" FROM "migrations"')}


def record_app_migrations(conn: apsw.Connection, names: list[str], now: datetime) -> None:
    """Record `names` as the app's migration manager would: one new batch, local time, rollback_<name>."""
    if not names:
        return
    (last,) = next(conn.execute('SELECT COALESCE(MAX("batch"), 0) FROM "migrations"'))
    applied_at = now.isoformat(sep=" ")
    conn.executemany('INSERT INTO "migrations" ("name", "batch", "applied_at", "rollback_name") '
                     "VALUES (?, ?, ?, ?)",
                     [(name, last + 1, applied_at, f"rollback_{name}") for name in names])


def record_history(conn: apsw.Connection, outcomes: list[Outcome], version: str) -> None:
    """One history row per step run: its generation, SQL checksum and operation counts."""
    conn.execute(HISTORY_DDL)
    run_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    applied, skipped, steps = Counter(), Counter(), {}
    for outcome in outcomes:
        steps[outcome.step.generation] = outcome.step
        (applied if outcome.applied else skipped)[outcome.step.generation] += 1
    conn.executemany(
        f'INSERT INTO "{HISTORY_TABLE}" ("run_at", "upgrader_version", "generation", "step", "checksum", '
        '"operations_applied", "operations_skipped") VALUES (?, ?, ?, ?, ?, ?, ?)',
        [(run_at, version, gen, f"{step.label}_{step.name}", step.checksum, applied[gen], skipped[gen])
         for gen, step in steps.items()])


def read_history(conn: apsw.Connection) -> list[dict]:
    if not has_table(conn, HISTORY_TABLE):
        return []
    names = [row[1] for row in conn.execute(f'PRAGMA table_info("{HISTORY_TABLE}")')]
    return [dict(zip(names, row)) for row in conn.execute(f'SELECT * FROM "{HISTORY_TABLE}" ORDER BY "id"')]
