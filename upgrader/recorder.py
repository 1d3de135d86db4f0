"""Writes down what was done: the app's own `migrations` table and wems-upgrade's history table."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import apsw

from upgrader.errors import UnknownSchema
from upgrader.executor import Outcome
from upgrader.i18n import T, Text
from upgrader.loader import Step
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


HISTORY_COLUMNS = re.findall(r'^\s+"(\w+)"', HISTORY_DDL, re.M)


def recorded_app_migrations(conn: apsw.Connection) -> set[str]:
    """The names in the app's `migrations` table (none if it has no such column: the schema
    comparison reports that table)."""
    if not has_table(conn, "migrations"):
        return set()
    try:
        return {row[0] for row in conn.execute('SELECT "name" FROM "migrations"') if isinstance(row[0], str)}
    except apsw.SQLError:
        return set()


def record_app_migrations(conn: apsw.Connection, names: list[str], now: datetime) -> None:
    """Record `names` as the app's migration manager would: one new batch, local time, rollback_<name>."""
    if not names:
        return
    (last,) = next(
        conn.execute('SELECT COALESCE(MAX("batch"), 0) FROM "migrations" WHERE typeof("batch") = \'integer\'')
    )
    applied_at = now.isoformat(sep=" ")
    conn.executemany(
        'INSERT INTO "migrations" ("name", "batch", "applied_at", "rollback_name") VALUES (?, ?, ?, ?)',
        [(name, last + 1, applied_at, f"rollback_{name}") for name in names],
    )


def record_history(conn: apsw.Connection, outcomes: list[Outcome], version: str) -> None:
    """One history row per step run: its generation, SQL checksum and operation counts."""
    conn.execute(HISTORY_DDL)
    run_at = datetime.now(UTC).isoformat(timespec="seconds")
    applied: Counter[int] = Counter()
    skipped: Counter[int] = Counter()
    steps: dict[int, Step] = {}
    for outcome in outcomes:
        steps[outcome.step.generation] = outcome.step
        (applied if outcome.applied else skipped)[outcome.step.generation] += 1
    conn.executemany(
        f'INSERT INTO "{HISTORY_TABLE}" ("run_at", "upgrader_version", "generation", "step", "checksum", '
        '"operations_applied", "operations_skipped") VALUES (?, ?, ?, ?, ?, ?, ?)',
        [
            (run_at, version, gen, f"{step.label}_{step.name}", step.checksum, applied[gen], skipped[gen])
            for gen, step in steps.items()
        ],
    )


def read_history(conn: apsw.Connection) -> list[dict]:
    """Our history rows; UnknownSchema if the table is not as wems-upgrade makes it."""
    if not has_table(conn, HISTORY_TABLE):
        return []
    names = [row[1] for row in conn.execute(f'PRAGMA table_info("{HISTORY_TABLE}")')]
    if sorted(names) != sorted(HISTORY_COLUMNS):
        raise _odd_history(
            [
                T(
                    "its columns are {columns}; wems-upgrade makes {expected}",
                    columns=", ".join(names),
                    expected=", ".join(HISTORY_COLUMNS),
                )
            ]
        )
    rows = [
        dict(zip(names, row, strict=True)) for row in conn.execute(f'SELECT * FROM "{HISTORY_TABLE}" ORDER BY "id"')
    ]
    odd: list[str | Text] = [
        T("row {id}: generation {generation} is not a whole number", id=row["id"], generation=repr(row["generation"]))
        for row in rows
        if not isinstance(row["generation"], int)
    ]
    if odd:
        raise _odd_history(odd)
    return rows


def _odd_history(details: list[str | Text]) -> UnknownSchema:
    return UnknownSchema(
        T(
            "The table {table}, where wems-upgrade records its work, is not as "
            "wems-upgrade makes it (changed by hand?):",
            table=HISTORY_TABLE,
        ),
        details[:10],
    )
