"""The checks an upgraded database must pass before its transaction may commit."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

import apsw

from upgrader.executor import rolled_back
from upgrader.i18n import T, Text, english, localize, nT
from upgrader.loader import AppOperation, Step
from upgrader.preflight import GB, MB
from upgrader.schema import Schema, Table, difference_texts, quote, read_schema
from upgrader.snapshot import one_row


@dataclass(frozen=True)
class Check:
    """One check's result. `text` and `problem_texts` are shown in the user's language (`shown`,
    `shown_problems`); `detail` and `problems` are the same in English, for --json and the log."""

    name: str
    ok: bool
    text: str | Text
    problem_texts: tuple[str | Text, ...] = ()
    #: what was checked, one line each (the app's operations, catalogue texts: localize() each), shown
    #: under the check's line
    items: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        return english(self.text)

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(english(p) for p in self.problem_texts)

    @property
    def shown(self) -> str:
        """The detail in the user's language."""
        return localize(self.text)

    @property
    def shown_problems(self) -> list[str]:
        return [localize(p) for p in self.problem_texts]

    @property
    def shown_items(self) -> list[str]:
        return [localize(item) for item in self.items]


@dataclass(frozen=True)
class Facts:
    """What must not change: rows per table, and the document paths and broken references of the
    tables in `scope` (None: of every table)."""

    row_counts: dict[str, int]
    documents: dict[str, tuple[int, int]]
    broken_references: Counter
    scope: frozenset[str] | None = None
    #: document path columns left out of `documents` (their tables are outside `scope`), as table.column
    documents_not_read: tuple[str, ...] = ()

    @property
    def document_count(self) -> int:
        return sum(count for count, _length in self.documents.values())


_log = logging.getLogger(__name__)
FULL_CHECK_ROWS = 200_000
TICKS_PER_CHECK = 100
#: Up to this size every upgrade checks the whole file (quick_check, document paths and references
#: of every table); above it only the changed tables, unless full_check (--full-check) is asked.
#: Measured on a 1.1 GB g6 file (2 shared cores): the whole-file quick_check took 1.7 s (1.5 ms/MB,
#: 0.4x a cp of the file with fsync), the whole-file paths and references 1.0 s more, before and
#: after: up to 256 MB that is under 1 s, and a typical site (< 1 MB) pays a few milliseconds.
WHOLE_FILE_CHECK_BYTES = 256 * 1024 * 1024
#: what the rowid is called unless a column takes the name
_ROWID_NAMES = ("rowid", "_rowid_", "oid")


def database_bytes(conn: apsw.Connection, schema: str = "main") -> int:
    (pages,) = one_row(conn, f"PRAGMA {schema}.page_count")
    (size,) = one_row(conn, f"PRAGMA {schema}.page_size")
    return pages * size


def checks_whole_file(conn: apsw.Connection, full_check: bool = False) -> bool:
    """True if the checks read the whole file: asked for, or the database is at most WHOLE_FILE_CHECK_BYTES."""
    return full_check or database_bytes(conn) <= WHOLE_FILE_CHECK_BYTES


def row_counts(conn: apsw.Connection, schema: Schema | None = None) -> dict[str, int]:
    schema = schema or read_schema(conn)
    return {t.name: one_row(conn, f"SELECT count(*) FROM {quote(t.name)}")[0] for t in schema.tables.values()}


def _path_columns(schema: Schema, tables) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(read, left out): (table, column) of every column holding a document path (avatar_path,
    document_path...), split by whether its table is in `tables` (None: all are read)."""
    wanted = None if tables is None else {t.lower() for t in tables}
    read: list[tuple[str, str]] = []
    left: list[tuple[str, str]] = []
    for table in schema.tables.values():
        for column in (c.name for c in table.columns if c.name.lower().endswith("_path")):
            (read if wanted is None or table.name.lower() in wanted else left).append((table.name, column))
    return read, left


def _documents(conn: apsw.Connection, columns: list[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    """For each (table, column): how many rows hold a path and their total length. Exact values
    of the tables a step changes are also compared row by row by the values check."""
    out = {}
    for table, column in columns:
        count, length = one_row(
            conn, f"SELECT count({quote(column)}), total(length({quote(column)})) FROM {quote(table)}"
        )
        out[f"{table}.{column}"] = (count, int(length))
    return out


def collect_facts(conn: apsw.Connection, tables=None) -> Facts:
    """Row counts of every table; document paths and broken references of `tables` (None: of all).

    A table no step changes keeps its pages byte for byte, so reading its paths and references
    before and after proves nothing more: above WHOLE_FILE_CHECK_BYTES only the changed ones are read.
    """
    schema = read_schema(conn)
    read, left = _path_columns(schema, tables)
    existing = None if tables is None else sorted(found.name for t in tables if (found := schema.table(t)))
    return Facts(
        row_counts(conn, schema),
        _documents(conn, read),
        broken_references(conn, existing),
        None if tables is None else frozenset(tables),
        tuple(f"{t}.{c}" for t, c in left),
    )


def broken_references(conn: apsw.Connection, tables=None, schema: str = "main") -> Counter:
    """How many rows point to a missing parent, per (table, parent): rows of `tables`, or of all (None)."""
    if tables is None:
        found = conn.execute(f"PRAGMA {schema}.foreign_key_check")
        return Counter((table, parent) for table, _rowid, parent, _fk in found)
    return Counter(
        (table, parent)
        for name in tables
        for table, _rowid, parent, _fk in conn.execute(f"PRAGMA {schema}.foreign_key_check({quote(name)})")
    )


def _joined(texts: list[str | Text]) -> str | Text:
    """`texts` separated by commas, each shown in the user's language."""
    if not texts:
        return ""
    out = texts[0]
    for text in texts[1:]:
        out = T("{first}, {second}", first=out, second=text)
    return out


def _row_count_check(before: Facts, after: Facts) -> Check:
    problems: tuple[str | Text, ...] = tuple(
        nT(
            "{table}: {n} rows before, {after} after",
            "{table}: {n} rows before, {after} after",
            count,
            table=table,
            after=after.row_counts.get(table),
        )
        for table, count in before.row_counts.items()
        if after.row_counts.get(table) != count
    )
    total, tables = sum(before.row_counts.values()), len(before.row_counts)
    detail = T(
        "{rows} in {tables}, all kept",
        rows=nT("{n} rows", "{n} rows", total),
        tables=nT("{n} tables", "{n} tables", tables),
    )
    return Check("rows", not problems, detail, problems)


def _documents_check(before: Facts, after: Facts) -> Check:
    problems: tuple[str | Text, ...] = tuple(
        nT(
            "{name}: {n} paths before, {after} after",
            "{name}: {n} paths before, {after} after",
            before.documents[name][0],
            name=name,
            after=after.documents.get(name, (0, 0))[0],
        )
        for name in before.documents
        if after.documents.get(name) != before.documents[name]
    )
    count = before.document_count
    detail: Text = nT("{n} document paths unchanged", "{n} document paths unchanged", count)
    if before.documents_not_read:
        detail = T(
            "{documents} in the changed tables (the {columns} of tables no step changes were not read)",
            documents=detail,
            columns=nT("{n} path column(s)", "{n} path column(s)", len(before.documents_not_read)),
        )
    return Check("documents", not problems, detail, problems)


def _schema_check(conn: apsw.Connection, expected: Schema, label: str) -> Check:
    problems: tuple[str | Text, ...] = tuple(difference_texts(read_schema(conn), expected))
    return Check(
        "schema", not problems, T("structure identical to a fresh {generation} database", generation=label), problems
    )


def _size(n: int) -> Text:
    return T(GB, size=f"{n / 1e9:.1f}") if n >= 1e9 else T(MB, size=f"{n / 1e6:.0f}")


def _pragma_problems(conn: apsw.Connection, sql: str, original: bool = False) -> list[str | Text]:
    """SQLite's own findings (its words, in English), each marked as the original's if `original`."""
    found = [str(row[0]) for row in conn.execute(sql) if row[0] != "ok"]
    return [T("in the original: {problem}", problem=p) for p in found] if original else list(found)


def _integrity_check(
    conn: apsw.Connection, touched, counts: dict[str, int], reference: str | None, whole: bool
) -> Check:
    """SQLite's own checks, as far as the changes reach, or of the whole file:

    - the whole file: quick_check (every page, every cell, NOT NULL), if `whole`;
    - each changed table up to FULL_CHECK_ROWS rows: integrity_check (its indexes against its rows too);
      larger ones: quick_check of the table (part of the whole file's, if `whole`). Their indexes were
      built by SQLite from their rows moments before, and their rows are compared value by value with
      the original: a full check of a million-row table costs many seconds and proves no more;
    - the same tables in the original (`reference`): quick_check. A rebuilt table's pages there are
      the ones its rows were read from, and are left out of the new file's tables (free pages).
    """
    names = {name.lower(): name for name in counts}
    changed = sorted(names[t.lower()] for t in touched if t.lower() in names)
    full = [t for t in changed if counts[t] <= FULL_CHECK_ROWS]
    large = [t for t in changed if counts[t] > FULL_CHECK_ROWS]
    problems: list[str | Text] = _pragma_problems(conn, "PRAGMA main.quick_check") if whole else []
    for table in full:
        problems += _pragma_problems(conn, f"PRAGMA main.integrity_check({quote(table)})")
    for table in [] if whole else large:
        problems += _pragma_problems(conn, f"PRAGMA main.quick_check({quote(table)})")
    original = []
    if reference is not None:
        kept = {n.lower() for (n,) in conn.execute(f"SELECT name FROM {reference}.sqlite_master WHERE type = 'table'")}
        original = [t for t in changed if t.lower() in kept]
        for table in original:
            problems += _pragma_problems(conn, f"PRAGMA {reference}.quick_check({quote(table)})", original=True)
    detail = _integrity_detail(full, large, original, whole, bool(problems))
    if not whole:
        detail = T(
            "{checks}; the rest of the file ({size}, over {limit}) was not checked: --full-check checks it",
            checks=detail,
            size=_size(database_bytes(conn)),
            limit=_size(WHOLE_FILE_CHECK_BYTES),
        )
    return Check("integrity", not problems, detail, tuple(problems))


def _integrity_detail(full: list[str], large: list[str], original: list[str], whole: bool, failed: bool) -> Text:
    """What the integrity check read ("full check of A, B, quick check of the whole file"), and its verdict."""
    quick: list[Text] = (
        [T("the whole file")]
        if whole
        else [nT("{n} larger changed table(s)", "{n} larger changed table(s)", len(large))]
        if large
        else []
    )
    if original:
        quick.append(nT("the original's {n} changed table(s)", "the original's {n} changed table(s)", len(original)))
    quick_text = (
        T("quick check of {what} and of {more}", what=quick[0], more=quick[1])
        if len(quick) == 2
        else T("quick check of {what}", what=quick[0])
        if quick
        else None
    )
    full_text = T("full check of {tables}", tables=", ".join(full)) if full else None
    if full_text and quick_text:
        what: Text = T("{first}, {second}", first=full_text, second=quick_text)
    else:
        what = full_text or quick_text or T("nothing to check")
    return T("{checks}: problems found", checks=what) if failed else T("{checks}: ok", checks=what)


def _reference_scope(conn: apsw.Connection, reference: str | None, scope) -> set[str] | None:
    """The tables whose references are checked after the change: the changed ones (`scope`), and any
    other table pointing into one of them whose key columns changed (type, collation, key) or went.
    A table pointing into a changed one whose key columns are as they were still finds its parents:
    every row of the changed table holds the values it held (the values check)."""
    if scope is None or reference is None:
        return None if scope is None else set(scope)
    old, new = read_schema(conn, reference), read_schema(conn)
    wanted = {t.lower() for t in scope}
    out = set(scope)
    for table in new.tables.values():
        if table.name.lower() in wanted:
            continue
        for fk in table.foreign_keys:
            if fk.parent.lower() in wanted and not _same_key(conn, reference, old, new, fk.parent, fk.parent_columns):
                out.add(table.name)
    return out


def _same_key(conn, reference: str, old: Schema, new: Schema, parent: str, columns) -> bool:
    before, after = old.table(parent), new.table(parent)
    if before is None or after is None:
        return before is None  # a parent the original lacked: none of its references resolved before
    names = [c for c in columns if c] or _key(after)
    try:
        return all(
            conn.column_metadata(reference, before.name, c) == conn.column_metadata("main", after.name, c)
            for c in names
        )
    except apsw.Error:
        return False


def _foreign_key_check(conn: apsw.Connection, before: Facts, after: Facts, reference: str | None) -> Check:
    """No reference may break; references already broken before the upgrade are reported, not blamed."""
    was = Counter(before.broken_references)
    counted = None if before.scope is None else {t.lower() for t in before.scope}
    extra = sorted({t for t, _p in after.broken_references if counted is not None and t.lower() not in counted})
    if extra and reference is not None:  # tables pointing into a changed key: their state before, only if needed
        there = {
            n.lower(): n for (n,) in conn.execute(f"SELECT name FROM {reference}.sqlite_master WHERE type = 'table'")
        }
        was += broken_references(conn, [there[t.lower()] for t in extra if t.lower() in there], reference)
    new = after.broken_references - was
    problems: tuple[str | Text, ...] = tuple(
        nT(
            "{n} row(s) of {table} now point to a missing {parent}",
            "{n} row(s) of {table} now point to a missing {parent}",
            count,
            table=table,
            parent=parent,
        )
        for (table, parent), count in sorted(new.items())
    )
    old = sum(was.values())
    fine = (
        T("every reference points to an existing row")
        if after.scope is None
        else nT(
            "every reference of the {n} changed or dependent table(s) points to an existing row "
            "(the other tables' references were not read: their rows and the keys they point to are unchanged)",
            "every reference of the {n} changed or dependent table(s) points to an existing row "
            "(the other tables' references were not read: their rows and the keys they point to are unchanged)",
            len(after.scope),
        )
    )
    detail = (
        fine
        if not old
        else nT(
            "no reference broken by the upgrade; {n} row(s) already pointed to missing rows "
            "before it ({tables}) and were left as they were",
            "no reference broken by the upgrade; {n} row(s) already pointed to missing rows "
            "before it ({tables}) and were left as they were",
            old,
            tables=", ".join(sorted({t for t, _p in was})),
        )
    )
    return Check("foreign_keys", not new, detail, problems)


def _key(table: Table) -> list[str]:
    return [c.name for c in sorted(table.columns, key=lambda c: c.pk) if c.pk]


def _values_check(conn: apsw.Connection, reference: str | None, touched) -> Check:
    """Every value of every kept column of each changed table is what the original held, row by row."""
    if reference is None:
        return Check("values", True, T("not compared (no original to compare with)"))
    old, new = read_schema(conn, reference), read_schema(conn)
    problems: list[str | Text] = []
    compared = 0
    for name in sorted(touched):
        before, after = old.table(name), new.table(name)
        if before is None or after is None:
            continue
        columns = [c for c in before.column_names if after.column(c)]
        differing = _differing_rows(conn, reference, before, after, columns)
        compared += 1
        if differing:
            problems.append(
                nT(
                    "{table}: {n} row(s) hold other values than before",
                    "{table}: {n} row(s) hold other values than before",
                    differing,
                    table=name,
                )
            )
    detail = nT(
        "every value kept in the {n} changed table(s)", "every value kept in the {n} changed table(s)", compared
    )
    return Check("values", not problems, detail, tuple(problems))


def _rowid(table: Table) -> str | None:
    """What the rowid of `table` is called in SQL; None for a WITHOUT ROWID table (or every name taken)."""
    return None if table.without_rowid else next((n for n in _ROWID_NAMES if table.column(n) is None), None)


def _differing_rows(conn, reference: str, before: Table, after: Table, columns: list[str]) -> int:
    """How many rows of the original's `before` have no row in `after` holding the same `columns`.

    With the row counts equal (the rows check), zero proves every row kept, value for value.
    First joined on the rowid, which every rebuild copies (INTEGER PRIMARY KEY tables share it
    anyway): a lookup in the table's own b-tree, about 6x faster than the primary key's index on
    2.4 million medical_visits. If rows differ there (a rebuild not copying the rowid), the primary
    key decides.
    """
    old, new = f"{reference}.{quote(before.name)}", f"main.{quote(after.name)}"
    differ = " OR ".join(f"o.{quote(c)} IS NOT n.{quote(c)}" for c in columns) or "0"
    old_id, new_id = _rowid(before), _rowid(after)
    if old_id and new_id:
        (count,) = conn.execute(
            f"SELECT count(*) FROM {old} AS o LEFT JOIN {new} AS n ON n.{new_id} = o.{old_id} "
            f"WHERE n.{new_id} IS NULL OR {differ}"
        ).fetchone()
        if not count:
            return 0
    key = _key(before)
    cols = ", ".join(quote(c) for c in columns)
    if not key:
        sql = f"SELECT count(*) FROM (SELECT {cols} FROM {old} EXCEPT SELECT {cols} FROM {new})"
    else:
        join = " AND ".join(f"n.{quote(k)} = o.{quote(k)}" for k in key)
        sql = (
            f"SELECT count(*) FROM {old} AS o LEFT JOIN {new} AS n ON {join} "
            f"WHERE n.{quote(key[0])} IS NULL OR {differ}"
        )
    return conn.execute(sql).fetchone()[0]


def validate(
    conn: apsw.Connection,
    before: Facts,
    expected: Schema,
    label: str,
    touched: set[str],
    reference: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    full_check: bool = False,
) -> list[Check]:
    """Run every check on `conn` (normally inside the upgrade's open transaction).

    `reference` names an attached, untouched copy of the original database. `before` tells how far
    the checks reach: the whole file if it was collected for every table (collect_facts(conn)), else
    the changed tables (collect_facts(conn, touched), above WHOLE_FILE_CHECK_BYTES); `full_check`
    adds the whole file's quick_check to the latter.
    """
    whole = full_check or before.scope is None
    after_scope = _reference_scope(conn, reference, before.scope)
    after = collect_facts(conn, after_scope)
    if before.scope is not None:  # documents are compared over the same tables as before
        after = Facts(
            after.row_counts,
            {k: v for k, v in after.documents.items() if k in before.documents},
            after.broken_references,
            after.scope,
            after.documents_not_read,
        )
    checks = [
        lambda: _row_count_check(before, after),
        lambda: _values_check(conn, reference, touched),
        lambda: _documents_check(before, after),
        lambda: _schema_check(conn, expected, label),
        lambda: _integrity_check(conn, touched, after.row_counts, reference, whole),
        lambda: _foreign_key_check(conn, before, after, reference),
    ]
    done: list[Check] = []
    for check in checks:
        with _ticking(conn, progress, len(done), len(checks)):
            done.append(check())
    return done


APP_OPERATIONS = "app_operations"
#: Above WHOLE_FILE_CHECK_BYTES (without full_check) each of the app's lists (a lone SELECT) runs for
#: this many steps of SQLite's VM at most, then is interrupted: compiled against the new schema and run
#: through its joins on real rows, not to the last row. On the 1.2 GB g6 the 24 operations took 4.6 s
#: read whole; bounded, 6 lists stop at the budget, 30-40 ms each (2,000,000 steps: 55-80 ms each).
LIST_STEP_BUDGET = 1_000_000
_BUDGET = "wems-upgrade list budget"
ALERT_DAYS = 30  # the app's default alerts.warning_days from g2 to g8
_WRITES = {apsw.SQLITE_INSERT, apsw.SQLITE_UPDATE, apsw.SQLITE_DELETE}
#: what an app_checks.sql may not do: end or split the transaction, attach files, change settings
_FORBIDDEN = {
    apsw.SQLITE_TRANSACTION,
    apsw.SQLITE_SAVEPOINT,
    apsw.SQLITE_ATTACH,
    apsw.SQLITE_DETACH,
    apsw.SQLITE_PRAGMA,
}


def app_bindings() -> dict[str, object]:
    """The values the app's operations are run with: today, now (as peewee writes them), fresh ids."""
    return {
        "today": date.today().isoformat(),
        "now": datetime.now().isoformat(sep=" "),
        "alert_days": ALERT_DAYS,
        "user": "wems-upgrade",
        "hostname": socket.gethostname(),
        "process_id": os.getpid(),
        "lock_id": str(uuid.uuid4()),
        "employee_id": str(uuid.uuid4()),
        "external_id": f"WEMS-UPGRADE-{uuid.uuid4().hex[:12]}",
        "caces_id": str(uuid.uuid4()),
        "contract_id": str(uuid.uuid4()),
    }


class _OperationFailed(Exception):
    """An operation of the app failed: `text` says which and why."""

    def __init__(self, text: Text) -> None:
        super().__init__(text.english())
        self.text = text


def app_operations_check(conn: apsw.Connection, step: Step, bindings: dict | None = None, whole: bool = True) -> Check:
    """Run what the app of `step`'s generation runs at start-up and on its screens, under a
    SAVEPOINT that is rolled back: every write changing a row; every list (a lone SELECT) read to
    its last row, or with `whole` false (a large file, no --full-check) for LIST_STEP_BUDGET steps.

    The first operation that fails stops the run and is named. Afterwards every table must hold
    the rows it held before (nothing the operations wrote stays).
    """
    operations = step.app_operations
    if not operations:
        return Check(
            APP_OPERATIONS,
            True,
            T(
                "none run: wems-upgrade describes no operation of the app for {generation} or an earlier generation",
                generation=step.label,
            ),
        )
    values = app_bindings() | (bindings or {})
    source = f"g{step.app_operations_from}"
    counts, ran, bounded = row_counts(conn), [], []
    problems: list[str | Text] = []
    with rolled_back(conn):
        written: set[str] = set()
        try:
            for op in operations:
                if not _run_app_operation(conn, op, values, written, None if whole else LIST_STEP_BUDGET):
                    bounded.append(op.name)
                ran.append(op.name)
            broken = _broken_in(conn, written)
        except _OperationFailed as exc:
            problems.append(exc.text)
    if not problems:
        left: list[str | Text] = [
            nT(
                "{table}: {n} rows before the operations, {after} after",
                "{table}: {n} rows before the operations, {after} after",
                n,
                table=t,
                after=counts.get(t),
            )
            for t, n in row_counts(conn).items()
            if counts.get(t) != n
        ]
        new = broken - _broken_in(conn, written)
        problems += [T("the operations left rows behind ({tables})", tables=_joined(left))] if left else []
        problems += [
            nT(
                "{n} row(s) of {table} written by the operations point to a missing {parent}",
                "{n} row(s) of {table} written by the operations point to a missing {parent}",
                n,
                table=t,
                parent=parent,
            )
            for (t, parent), n in sorted(new.items())
        ]
    if problems:
        failed = T(operations[len(ran)].name) if len(ran) < len(operations) else T("after the last operation")
        return Check(
            APP_OPERATIONS,
            False,
            nT(
                "{n} of {total} of the app's operations ran ({source}); failed: {failed}",
                "{n} of {total} of the app's operations ran ({source}); failed: {failed}",
                len(ran),
                total=len(operations),
                source=source,
                failed=failed,
            ),
            tuple(problems),
            tuple(ran),
        )
    return Check(
        APP_OPERATIONS,
        True,
        nT(
            "{n} of {total} of the app's operations ({source}) ran on the upgraded data, then were undone{note}",
            "{n} of {total} of the app's operations ({source}) ran on the upgraded data, then were undone{note}",
            len(ran),
            total=len(operations),
            source=source,
            note=_bounded_note(bounded, ran),
        ),
        items=tuple(ran),
    )


def _bounded_note(bounded: list[str], ran: list[str]) -> str | Text:
    """What the detail must add when some lists were not read to their last row (`bounded`)."""
    if not bounded:
        return ""
    whole = [name for name in ran if name not in bounded]
    return nT(
        "; {n} list(s) were stopped after {budget} steps of SQLite, not read to their last row (the file is "
        "over {size}: --full-check reads them whole): {lists}; run in full: {whole}",
        "; {n} list(s) were stopped after {budget} steps of SQLite, not read to their last row (the file is "
        "over {size}: --full-check reads them whole): {lists}; run in full: {whole}",
        len(bounded),
        budget=f"{LIST_STEP_BUDGET:,}",
        size=_size(WHOLE_FILE_CHECK_BYTES),
        lists=_joined([T(name) for name in bounded]),
        whole=_joined([T(name) for name in whole]) or T("none"),
    )


def _run_app_operation(
    conn: apsw.Connection, op: AppOperation, values: dict, written: set[str], budget: int | None = None
) -> bool:
    """Run `op`, adding the tables it wrote to `written`; False if it is a list stopped after `budget` steps."""
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
        rows = _read_to_the_end(cursor, op.sql, values, budget)
    except (apsw.Error, KeyError) as exc:
        raise _OperationFailed(T("{operation}: {reason}", operation=T(op.name), reason=_reason(exc))) from exc
    finally:
        conn.authorizer = None
        cursor.close()
    written |= writes
    if writes and conn.total_changes() == before:
        raise _OperationFailed(T("{operation}: changed no row", operation=T(op.name)))
    if rows is None:
        _log.info("app operation %r: stopped after %d steps", op.name, budget)
        return False
    log_rows = rows if not writes else conn.total_changes() - before
    _log.info("app operation %r: %s %d row(s)", op.name, "wrote" if writes else "read", log_rows)
    return True


def _read_to_the_end(cursor: apsw.Cursor, sql: str, values: dict, budget: int | None = None) -> int | None:
    """Run `sql`; return how many rows it yields, every one produced by SQLite. With a `budget`, a
    lone SELECT is stopped after that many steps of SQLite's VM (None returned): it was compiled
    against the schema and ran on the rows, but not to the last one. Anything else runs in full.

    A lone SELECT is counted inside SQLite (SELECT count(*) FROM (...)), not converted to Python
    row by row: that took 8 s of a 1.2 GB g6 upgrade for the 2.2 million medical visits of one list.
    Anything else, or a SELECT the wrapper does not parse or fails on, runs as it is (so an error
    is the app's statement's own).
    """
    body = sql.strip()
    body = body[:-1].rstrip() if body.endswith(";") else body
    head = "\n".join(line for line in body.splitlines() if not line.strip().startswith("--")).lstrip().upper()
    if head.startswith(("SELECT", "WITH")):
        try:
            return _count(cursor, f"SELECT count(*) FROM (\n{body}\n)", values, budget)
        except apsw.InterruptError:
            raise
        except (apsw.Error, KeyError):
            pass
    return sum(1 for _row in cursor.execute(sql, values))


def _count(cursor: apsw.Cursor, sql: str, values: dict, budget: int | None) -> int | None:
    """The count `sql` returns; None if it was stopped after `budget` steps (a read-only statement:
    SQLite interrupts it without rolling back the transaction it runs in)."""
    if budget is None:
        return one_row(cursor, sql, values)[0]
    conn, stopped = cursor.connection, []
    held = conn.in_transaction

    def stop() -> bool:
        stopped.append(True)
        return True

    conn.set_progress_handler(stop, budget, id=_BUDGET)
    try:
        return one_row(cursor, sql, values)[0]
    except apsw.InterruptError:
        if not stopped or (held and not conn.in_transaction):
            raise
        return None
    finally:
        conn.set_progress_handler(None, id=_BUDGET)


def _reason(exc: BaseException) -> str | Text:
    """Why an operation failed: SQLite's own words, or ours."""
    if isinstance(exc, KeyError):
        return T("no value for the binding :{name}", name=exc.args[0])
    if isinstance(exc, apsw.AuthError):
        return T("not allowed in the app's operations (transactions, savepoints, ATTACH and PRAGMA are refused)")
    return str(exc)


def _broken_in(conn: apsw.Connection, tables: set[str]) -> Counter:
    return Counter(
        (table, parent)
        for name in sorted(tables)
        for table, _rowid, parent, _fk in conn.execute(f"PRAGMA main.foreign_key_check({quote(name)})")
    )


@contextmanager
def _ticking(conn: apsw.Connection, progress: Callable[[int, int], None] | None, index: int, count: int):
    """Move the checks' bar while a long check runs (SQLite's progress handler), then to its end."""
    if progress is None:
        yield
        return
    ticks = [0]

    def tick() -> bool:
        ticks[0] += 1
        progress(index * TICKS_PER_CHECK + min(TICKS_PER_CHECK - 1, ticks[0]), count * TICKS_PER_CHECK)
        return False

    conn.set_progress_handler(tick, 2_000_000)
    try:
        yield
    finally:
        conn.set_progress_handler(None)
    progress((index + 1) * TICKS_PER_CHECK, count * TICKS_PER_CHECK)
