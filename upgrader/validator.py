"""The checks an upgraded database must pass before its transaction may commit."""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable

import apsw

from upgrader.executor import rolled_back
from upgrader.loader import AppOperation, Step
from upgrader.runlog import log as _log
from upgrader.schema import Schema, Table, differences, quote, read_schema


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    problems: tuple[str, ...] = ()
    #: what was checked, one line each (the app's operations), shown under the check's line
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    """What must not change: rows per table and the document paths the rows point to."""

    row_counts: dict[str, int]
    documents: dict[str, tuple[int, int]]
    broken_references: Counter

    @property
    def document_count(self) -> int:
        return sum(count for count, _length in self.documents.values())


FULL_CHECK_ROWS = 200_000
TICKS_PER_CHECK = 100


def row_counts(conn: apsw.Connection, schema: Schema | None = None) -> dict[str, int]:
    schema = schema or read_schema(conn)
    return {t.name: conn.execute(f"SELECT count(*) FROM {quote(t.name)}").fetchone()[0]
            for t in schema.tables.values()}


def _documents(conn: apsw.Connection, schema: Schema) -> dict[str, tuple[int, int]]:
    """For every column holding a document path (avatar_path, document_path...): how many rows
    have one and their total length. Exact values of the tables a step changes are compared
    row by row by the values check; the others are not touched by any step."""
    out = {}
    for table in schema.tables.values():
        for column in (c.name for c in table.columns if c.name.lower().endswith("_path")):
            count, length = conn.execute(f"SELECT count({quote(column)}), total(length({quote(column)})) "
                                         f"FROM {quote(table.name)}").fetchone()
            out[f"{table.name}.{column}"] = (count, int(length))
    return out


def collect_facts(conn: apsw.Connection) -> Facts:
    schema = read_schema(conn)
    return Facts(row_counts(conn, schema), _documents(conn, schema), broken_references(conn))


def broken_references(conn: apsw.Connection) -> Counter:
    """How many rows point to a missing parent, per (table, parent)."""
    return Counter((table, parent) for table, _rowid, parent, _fk in conn.execute("PRAGMA foreign_key_check"))


def _row_count_check(before: Facts, after: Facts) -> Check:
    problems = tuple(f"{table}: {count} rows before, {after.row_counts.get(table)} after"
                     for table, count in before.row_counts.items() if after.row_counts.get(table) != count)
    total = sum(before.row_counts.values())
    return Check("rows", not problems, f"{total} rows in {len(before.row_counts)} tables, all kept", problems)


def _documents_check(before: Facts, after: Facts) -> Check:
    problems = tuple(f"{name}: {before.documents[name][0]} paths before, {after.documents.get(name, (0, 0))[0]} after"
                     for name in before.documents if after.documents.get(name) != before.documents[name])
    return Check("documents", not problems, f"{before.document_count} document paths unchanged", problems)


def _schema_check(conn: apsw.Connection, expected: Schema, label: str) -> Check:
    problems = tuple(differences(read_schema(conn), expected))
    return Check("schema", not problems, f"structure identical to a fresh {label} database", problems)


def _integrity_check(conn: apsw.Connection, touched: set[str], counts: dict[str, int]) -> Check:
    """quick_check of the whole file; full integrity_check (indexes against rows too) of each
    changed table up to FULL_CHECK_ROWS rows. Larger rebuilt tables had their indexes built
    by SQLite from their rows moments before, and their rows are compared value by value with
    the original; a full check of a million-row table costs many seconds and proves no more."""
    rows = [r[0] for r in conn.execute("PRAGMA quick_check")]
    full = sorted(t for t in touched if counts.get(t, 0) <= FULL_CHECK_ROWS)
    for table in full:
        rows += [r[0] for r in conn.execute(f"PRAGMA integrity_check({quote(table)})")]
    problems = tuple(r for r in rows if r != "ok")
    scope = f"full check of {', '.join(full)}, quick check of the whole file" if full else "quick check"
    return Check("integrity", not problems, f"{scope}: ok", problems)


def _foreign_key_check(before: Facts, after: Facts) -> Check:
    """No reference may break; references already broken before the upgrade are reported, not blamed."""
    new = after.broken_references - before.broken_references
    problems = tuple(f"{count} row(s) of {table} now point to a missing {parent}"
                     for (table, parent), count in sorted(new.items()))
    old = sum(before.broken_references.values())
    detail = "every reference points to an existing row" if not old else (
        f"no reference broken by the upgrade; {old} row(s) already pointed to missing rows before it "
        f"({', '.join(sorted({t for t, _p in before.broken_references}))}) and were left as they were")
    return Check("foreign_keys", not new, detail, problems)


def _key(table: Table) -> list[str]:
    return [c.name for c in sorted(table.columns, key=lambda c: c.pk) if c.pk]


def _values_check(conn: apsw.Connection, reference: str | None, touched: set[str]) -> Check:
    """Every value of every kept column of each changed table is what the original held, row by row."""
    if reference is None:
        return Check("values", True, "not compared (no original to compare with)")
    old, new = read_schema(conn, reference), read_schema(conn)
    problems, compared = [], 0
    for name in sorted(touched):
        before, after = old.table(name), new.table(name)
        if before is None or after is None:
            continue
        columns = [c for c in before.column_names if after.column(c)]
        differing = _differing_rows(conn, reference, before.name, _key(before), columns)
        compared += 1
        if differing:
            problems.append(f"{name}: {differing} row(s) hold other values than before")
    return Check("values", not problems, f"every value kept in the {compared} changed table(s)", tuple(problems))


def _differing_rows(conn, reference: str, table: str, key: list[str], columns: list[str]) -> int:
    old, new = f"{reference}.{quote(table)}", f"main.{quote(table)}"
    cols = ", ".join(quote(c) for c in columns)
    if not key:
        sql = f"SELECT count(*) FROM (SELECT {cols} FROM {old} EXCEPT SELECT {cols} FROM {new})"
    else:
        join = " AND ".join(f"n.{quote(k)} = o.{quote(k)}" for k in key)
        differ = " OR ".join(f"o.{quote(c)} IS NOT n.{quote(c)}" for c in columns)
        sql = (f"SELECT count(*) FROM {old} AS o LEFT JOIN {new} AS n ON {join} "
               f"WHERE n.{quote(key[0])} IS NULL OR {differ}")
    return conn.execute(sql).fetchone()[0]


def validate(conn: apsw.Connection, before: Facts, expected: Schema, label: str, touched: set[str],
             reference: str | None = None, progress: Callable[[int, int], None] | None = None) -> list[Check]:
    """Run every check on `conn` (normally inside the upgrade's open transaction).

    `reference` names an attached, untouched copy of the original database.
    """
    after = collect_facts(conn)
    checks = [lambda: _row_count_check(before, after), lambda: _values_check(conn, reference, touched),
              lambda: _documents_check(before, after), lambda: _schema_check(conn, expected, label),
              lambda: _integrity_check(conn, touched, after.row_counts), lambda: _foreign_key_check(before, after)]
    done = []
    for check in checks:
        with _ticking(conn, progress, len(done), len(checks)):
            done.append(check())
    return done


APP_OPERATIONS = "app_operations"
ALERT_DAYS = 30  # the app's default alerts.warning_days from g2 to g8
_WRITES = {apsw.SQLITE_INSERT, apsw.SQLITE_UPDATE, apsw.SQLITE_DELETE}
#: what an app_checks.sql may not do: end or split the transaction, attach files, change settings
_FORBIDDEN = {apsw.SQLITE_TRANSACTION, apsw.SQLITE_SAVEPOINT, apsw.SQLITE_ATTACH, apsw.SQLITE_DETACH,
              apsw.SQLITE_PRAGMA}


def app_bindings() -> dict[str, object]:
    """The values the app's operations are run with: today, now (as peewee writes them), fresh ids."""
    return {"today": date.today().isoformat(), "now": datetime.now().isoformat(sep=" "),
            "alert_days": ALERT_DAYS, "user": "wems-upgrade", "hostname": socket.gethostname(),
            "process_id": os.getpid(), "lock_id": str(uuid.uuid4()), "employee_id": str(uuid.uuid4()),
            "external_id": f"WEMS-UPGRADE-{uuid.uuid4().hex[:12]}", "caces_id": str(uuid.uuid4()),
            "contract_id": str(uuid.uuid4())}


class _OperationFailed(Exception):
    pass


def app_operations_check(conn: apsw.Connection, step: Step, bindings: dict | None = None) -> Check:
    """Run what the app of `step`'s generation runs at start-up and on its screens, under a
    SAVEPOINT that is rolled back: every SELECT read to its last row, every write changing a row.

    The first operation that fails stops the run and is named. Afterwards every table must hold
    the rows it held before (nothing the operations wrote stays).
    """
    operations = step.app_operations
    if not operations:
        return Check(APP_OPERATIONS, True, f"none run: wems-upgrade describes no operation of the app for "
                                           f"{step.label} or an earlier generation")
    values = app_bindings() | (bindings or {})
    source = f"g{step.app_operations_from}"
    counts, ran, problems = row_counts(conn), [], []
    with rolled_back(conn):
        written: set[str] = set()
        try:
            for op in operations:
                _run_app_operation(conn, op, values, written)
                ran.append(op.name)
            broken = _broken_in(conn, written)
        except _OperationFailed as exc:
            problems.append(str(exc))
    if not problems:
        left = [f"{t}: {n} rows before the operations, {counts.get(t)} after" for t, n in row_counts(conn).items()
                if counts.get(t) != n]
        new = broken - _broken_in(conn, written)
        problems += [f"the operations left rows behind ({', '.join(left)})"] if left else []
        problems += [f"{n} row(s) of {t} written by the operations point to a missing {parent}"
                     for (t, parent), n in sorted(new.items())]
    if problems:
        failed = operations[len(ran)].name if len(ran) < len(operations) else "after the last operation"
        return Check(APP_OPERATIONS, False, f"{len(ran)} of {len(operations)} of the app's operations ran "
                                            f"({source}); failed: {failed}", tuple(problems), tuple(ran))
    return Check(APP_OPERATIONS, True, f"{len(ran)} of {len(operations)} of the app's operations ({source}) "
                                       f"ran on the upgraded data, then were undone", items=tuple(ran))


def _run_app_operation(conn: apsw.Connection, op: AppOperation, values: dict, written: set[str]) -> None:
    writes: set[str] = set()

    def authorize(action, table, _b, database, _trigger):
        if action in _FORBIDDEN:
            return apsw.SQLITE_DENY
        if action in _WRITES and database in ("main", None):
            writes.add(table)
        return apsw.SQLITE_OK
    conn.authorizer = authorize
    cursor = conn.cursor()
    before = conn.total_changes()
    try:
        rows = sum(1 for _row in cursor.execute(op.sql, values))
    except (apsw.Error, KeyError) as exc:
        raise _OperationFailed(f"{op.name}: {_reason(exc)}") from exc
    finally:
        conn.authorizer = None
        cursor.close()
    written |= writes
    if writes and conn.total_changes() == before:
        raise _OperationFailed(f"{op.name}: changed no row")
    log_rows = rows if not writes else conn.total_changes() - before
    _log.info("app operation %r: %s %d row(s)", op.name, "wrote" if writes else "read", log_rows)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no value for the binding :{exc.args[0]}"
    if isinstance(exc, apsw.AuthError):
        return "not allowed in the app's operations (transactions, savepoints, ATTACH and PRAGMA are refused)"
    return str(exc)


def _broken_in(conn: apsw.Connection, tables: set[str]) -> Counter:
    return Counter((table, parent) for name in sorted(tables)
                   for table, _rowid, parent, _fk in conn.execute(f"PRAGMA main.foreign_key_check({quote(name)})"))


@contextmanager
def _ticking(conn: apsw.Connection, progress: Callable[[int, int], None] | None, index: int, count: int):
    """Move the checks' bar while a long check runs (SQLite's progress handler), then to its end."""
    if progress is None:
        yield
        return
    ticks = [0]

    def tick() -> int:
        ticks[0] += 1
        progress(index * TICKS_PER_CHECK + min(TICKS_PER_CHECK - 1, ticks[0]), count * TICKS_PER_CHECK)
        return 0
    conn.set_progress_handler(tick, 2_000_000)
    try:
        yield
    finally:
        conn.set_progress_handler(None)
    progress((index + 1) * TICKS_PER_CHECK, count * TICKS_PER_CHECK)
