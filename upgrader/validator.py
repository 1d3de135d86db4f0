"""The checks an upgraded database must pass before its transaction may commit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import apsw

from upgrader.schema import Schema, differences, read_schema


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    """What must not change: rows per table and the document paths the rows point to."""

    row_counts: dict[str, int]
    document_digest: str
    document_count: int


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _path_columns(schema: Schema) -> list[tuple[str, str, str]]:
    """(table, key, column) for every column that holds a document path (avatar_path, document_path...)."""
    out = []
    for table in schema.tables.values():
        keys = [c.name for c in sorted(table.columns, key=lambda c: c.pk) if c.pk]
        key = ", ".join(_quote(k) for k in keys) if keys else "rowid"
        out += [(table.name, key, c.name) for c in table.columns if c.name.lower().endswith("_path")]
    return sorted(out)


def collect_facts(conn: apsw.Connection) -> Facts:
    schema = read_schema(conn)
    counts = {t.name: next(conn.execute(f"SELECT count(*) FROM {_quote(t.name)}"))[0]
              for t in schema.tables.values()}
    digest, total = hashlib.sha256(), 0
    for table, key, column in _path_columns(schema):
        rows = conn.execute(f"SELECT {_quote(column)}, {key} FROM {_quote(table)} "
                            f"WHERE {_quote(column)} IS NOT NULL ORDER BY {key}")
        for path, *row_key in rows:
            digest.update(f"{table}\0{column}\0{row_key}\0{path}\n".encode("utf-8"))
            total += 1
    return Facts(counts, digest.hexdigest(), total)


def _row_count_check(before: Facts, after: Facts) -> Check:
    problems = tuple(f"{table}: {count} rows before, {after.row_counts.get(table)} after"
                     for table, count in before.row_counts.items() if after.row_counts.get(table) != count)
    total = sum(before.row_counts.values())
    return Check("rows", not problems, f"{total} rows in {len(before.row_counts)} tables, all kept", problems)


def _documents_check(before: Facts, after: Facts) -> Check:
    ok = (before.document_digest, before.document_count) == (after.document_digest, after.document_count)
    return Check("documents", ok, f"{before.document_count} document paths unchanged",
                 () if ok else ("document paths changed",))


def _schema_check(conn: apsw.Connection, expected: Schema, label: str) -> Check:
    problems = tuple(differences(read_schema(conn), expected))
    return Check("schema", not problems, f"structure identical to a fresh {label} database", problems)


def _integrity_check(conn: apsw.Connection, touched: set[str]) -> Check:
    rows = [r[0] for r in conn.execute("PRAGMA quick_check")]
    for table in sorted(touched):
        rows += [r[0] for r in conn.execute(f"PRAGMA integrity_check({_quote(table)})")]
    problems = tuple(r for r in rows if r != "ok")
    scope = f"full check of {', '.join(sorted(touched))}, quick check of the rest" if touched else "quick check"
    return Check("integrity", not problems, f"{scope}: ok", problems)


def _foreign_key_check(conn: apsw.Connection) -> Check:
    rows = list(conn.execute("PRAGMA foreign_key_check"))
    problems = tuple(f"{table} row {rowid} points to a missing {parent}" for table, rowid, parent, _fk in rows[:20])
    return Check("foreign_keys", not rows, "every reference points to an existing row", problems)


def validate(conn: apsw.Connection, before: Facts, expected: Schema, label: str,
             touched: set[str]) -> list[Check]:
    """Run every check on `conn` (normally inside the upgrade's open transaction)."""
    after = collect_facts(conn)
    return [_row_count_check(before, after), _documents_check(before, after),
            _schema_check(conn, expected, label), _integrity_check(conn, touched),
            _foreign_key_check(conn)]
