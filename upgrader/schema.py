"""A structural model of a SQLite schema, read through PRAGMAs, and the differences between two.

Two schemas are equal when they have the same tables, views and triggers, each table
has the same columns (name, declared type, NOT NULL, default, primary-key position;
column ORDER is not compared), the same foreign keys (columns, parent, ON DELETE,
ON UPDATE, MATCH) and the same UNIQUE constraints, and the same named indexes
(table, uniqueness, ordered key columns with sort order and collation, WHERE clause).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import cast

import apsw

from upgrader.i18n import T, Text, english

#: Tables that belong to SQLite itself or to wems-upgrade, never to the app's schema.
HISTORY_TABLE = "wems_upgrade_history"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    notnull: bool
    default: str | None
    pk: int

    def describe(self) -> str:
        parts = [self.type or "(no type)"]
        if self.notnull:
            parts.append("NOT NULL")
        if self.pk:
            parts.append("PRIMARY KEY")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        return " ".join(parts)


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str | None, ...]
    on_update: str
    on_delete: str
    match: str

    def describe(self) -> str:
        return f"({', '.join(self.columns)}) -> {self.parent} ON DELETE {self.on_delete} ON UPDATE {self.on_update}"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    foreign_keys: frozenset[ForeignKey]
    unique_constraints: frozenset[tuple[str, ...]]
    without_rowid: bool = False
    strict: bool = False

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name.lower() == name.lower()), None)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class Index:
    name: str
    table: str
    unique: bool
    keys: tuple[tuple[str | None, bool, str], ...]
    where: str | None

    def describe(self) -> str:
        cols = ", ".join(
            (name or "<expression>")
            + (" DESC" if desc else "")
            + (f" COLLATE {collation}" if collation != "BINARY" else "")
            for name, desc, collation in self.keys
        )
        kind = "UNIQUE INDEX" if self.unique else "INDEX"
        return f"{kind} ON {self.table} ({cols})" + (f" WHERE {self.where}" if self.where else "")


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    others: dict[str, tuple[str, str]] = field(default_factory=dict)

    def table(self, name: str) -> Table | None:
        return self.tables.get(name.lower())

    def index(self, name: str) -> Index | None:
        return self.indexes.get(name.lower())


def _rows(conn: apsw.Connection, sql: str, params=()) -> list[tuple]:
    return list(conn.execute(sql, params))


def quote(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def has_table(conn: apsw.Connection, name: str) -> bool:
    return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchall())


def _normalise_type(declared: str) -> str:
    return re.sub(r"\s+", "", declared or "").upper()


def _normalise_sql(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def _is_ours(name: str) -> bool:
    return name.lower().startswith("sqlite_") or name.lower() == HISTORY_TABLE


def _read_columns(conn, table: str, db: str = "main") -> tuple[Column, ...]:
    rows = _rows(conn, f"PRAGMA {db}.table_xinfo({quote(table)})")
    return tuple(
        Column(name, _normalise_type(ctype), bool(notnull), default, pk)
        for _cid, name, ctype, notnull, default, pk, _hidden in rows
    )


def _read_foreign_keys(conn, table: str, db: str = "main") -> frozenset[ForeignKey]:
    grouped: dict[int, list[tuple]] = {}
    for row in _rows(conn, f"PRAGMA {db}.foreign_key_list({quote(table)})"):
        grouped.setdefault(row[0], []).append(row)
    keys = set()
    for rows in grouped.values():
        rows.sort(key=lambda r: r[1])
        _id, _seq, parent, _from, _to, on_update, on_delete, match = rows[0]
        keys.add(
            ForeignKey(
                tuple(r[3] for r in rows), parent.lower(), tuple(r[4] for r in rows), on_update, on_delete, match
            )
        )
    return frozenset(keys)


def _index_keys(conn, index: str, db: str = "main") -> tuple[tuple[str | None, bool, str], ...]:
    rows = _rows(conn, f"PRAGMA {db}.index_xinfo({quote(index)})")
    return tuple((name, bool(desc), coll.upper()) for _seqno, _cid, name, desc, coll, key in rows if key)


def _index_where(sql: str | None) -> str | None:
    if not sql:
        return None
    match = re.search(r"\)\s*WHERE\s+(.*)$", sql, re.IGNORECASE | re.DOTALL)
    return _normalise_sql(match.group(1)) if match else None


def _read_table(conn, name: str, kind: dict, db: str) -> Table:
    # SQLite refuses expressions in a UNIQUE constraint, so each key of its index names a column
    uniques = frozenset(
        cast(tuple[str, ...], tuple(k[0] for k in _index_keys(conn, idx, db)))
        for _seq, idx, _unique, origin, _partial in _rows(conn, f"PRAGMA {db}.index_list({quote(name)})")
        if origin == "u"
    )
    return Table(
        name,
        _read_columns(conn, name, db),
        _read_foreign_keys(conn, name, db),
        uniques,
        without_rowid=bool(kind.get("wr")),
        strict=bool(kind.get("strict")),
    )


def _table_kinds(conn, db: str) -> dict[str, dict]:
    return {
        row[1].lower(): {"wr": row[4], "strict": row[5]}
        for row in _rows(conn, f"PRAGMA {db}.table_list")
        if row[0] == db
    }


def read_schema(conn: apsw.Connection, db: str = "main") -> Schema:
    """The app's schema in database `db` of `conn` (SQLite's and wems-upgrade's own tables left out)."""
    schema = Schema()
    kinds = _table_kinds(conn, db)
    master = _rows(conn, f"SELECT type, name, tbl_name, sql FROM {db}.sqlite_master ORDER BY rowid")
    for kind, name, table, sql in master:
        if _is_ours(name) or _is_ours(table):
            continue
        if kind == "table":
            schema.tables[name.lower()] = _read_table(conn, name, kinds.get(name.lower(), {}), db)
        elif kind == "index" and sql:
            unique = bool(re.match(r"\s*CREATE\s+UNIQUE\b", sql, re.IGNORECASE))
            schema.indexes[name.lower()] = Index(
                name, table.lower(), unique, _index_keys(conn, name, db), _index_where(sql)
            )
        elif kind in ("view", "trigger"):
            schema.others[name.lower()] = (kind, _normalise_sql(sql or ""))
    return schema


def schema_from_sql(sql: str) -> Schema:
    """The schema that `sql` creates in an empty database."""
    conn = apsw.Connection(":memory:")
    try:
        conn.execute(sql)
        return read_schema(conn)
    finally:
        conn.close()


def schema_only_copy(conn: apsw.Connection) -> apsw.Connection:
    """An in-memory database with the same tables, indexes, views and triggers as `conn`, and no rows."""
    statements = _rows(
        conn,
        "SELECT type, sql FROM main.sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
    )
    order = {"table": 0, "index": 1, "view": 2, "trigger": 3}
    copy = apsw.Connection(":memory:")
    for _kind, sql in sorted(statements, key=lambda s: order.get(s[0], 4)):
        copy.execute(sql)
    return copy


# --- differences -----------------------------------------------------------------------


def column_differences(table: str, actual: Column, expected: Column) -> list[str | Text]:
    column = f"{table}.{expected.name}"
    out: list[str | Text] = []
    if actual.type != expected.type:
        out.append(
            T(
                "column {column} has type {actual}, expected {expected}",
                column=column,
                actual=actual.type or T("(none)"),
                expected=expected.type or T("(none)"),
            )
        )
    if actual.notnull != expected.notnull:
        if actual.notnull:
            out.append(T("column {column} is NOT NULL, expected nullable", column=column))
        else:
            out.append(T("column {column} is nullable, expected NOT NULL", column=column))
    if actual.default != expected.default:
        out.append(
            T(
                "column {column} has default {actual}, expected {expected}",
                column=column,
                actual=str(actual.default),
                expected=str(expected.default),
            )
        )
    if actual.pk != expected.pk:
        out.append(
            T(
                "column {column} primary-key position is {actual}, expected {expected}",
                column=column,
                actual=actual.pk,
                expected=expected.pk,
            )
        )
    return out


def constraint_differences(actual: Table, expected: Table) -> list[str | Text]:
    out: list[str | Text] = []
    for fk in sorted(expected.foreign_keys - actual.foreign_keys, key=repr):
        out.append(T("table {table} lacks foreign key {key}", table=expected.name, key=fk.describe()))
    for fk in sorted(actual.foreign_keys - expected.foreign_keys, key=repr):
        out.append(T("table {table} has an unexpected foreign key {key}", table=expected.name, key=fk.describe()))
    if actual.unique_constraints != expected.unique_constraints:
        out.append(
            T(
                "table {table} has UNIQUE constraints {actual}, expected {expected}",
                table=expected.name,
                actual=str(sorted(actual.unique_constraints)),
                expected=str(sorted(expected.unique_constraints)),
            )
        )
    if (actual.without_rowid, actual.strict) != (expected.without_rowid, expected.strict):
        out.append(T("table {table} differs in WITHOUT ROWID / STRICT", table=expected.name))
    return out


def missing_table(name: str) -> Text:
    return T("table {table} is missing", table=name)


def missing_column(table: str, column: str) -> Text:
    return T("column {column} is missing", column=f"{table}.{column}")


def missing_index(name: str) -> Text:
    return T("index {index} is missing", index=name)


def _extra_column(table: str, column: Column) -> Text:
    return T(
        "column {column} ({definition}) is not part of WEMS",
        column=f"{table}.{column.name}",
        definition=column.describe(),
    )


def table_differences(actual: Table, expected: Table, *, allow_extra_columns: bool = False) -> list[str | Text]:
    out: list[str | Text] = []
    for col in expected.columns:
        mine = actual.column(col.name)
        if mine is None:
            out.append(missing_column(expected.name, col.name))
        else:
            out.extend(column_differences(expected.name, mine, col))
    if not allow_extra_columns:
        for col in actual.columns:
            if expected.column(col.name) is None:
                out.append(_extra_column(expected.name, col))
    return out + constraint_differences(actual, expected)


def index_differences(actual: Index, expected: Index) -> list[str | Text]:
    if (actual.table, actual.unique, actual.keys, actual.where) == (
        expected.table,
        expected.unique,
        expected.keys,
        expected.where,
    ):
        return []
    return [
        T(
            "index {index} is {actual}, expected {expected}",
            index=expected.name,
            actual=actual.describe(),
            expected=expected.describe(),
        )
    ]


def _missing_or_different(kind: str, name: str) -> Text:
    """`kind`: a view or a trigger (the only other objects a Schema keeps)."""
    if kind == "view":
        return T("view {name} is missing or different", name=name)
    return T("trigger {name} is missing or different", name=name)


def _not_part_of_wems(kind: str, name: str) -> Text:
    if kind == "view":
        return T("view {name} is not part of WEMS", name=name)
    return T("trigger {name} is not part of WEMS", name=name)


def differences(actual: Schema, expected: Schema, *, allow_extra: bool = False) -> list[str]:
    """Plain-language differences of `actual` from `expected`; with allow_extra, only what is missing or changed.

    In English; difference_texts() gives them to show in the user's language."""
    return [english(text) for text in difference_texts(actual, expected, allow_extra=allow_extra)]


def difference_texts(actual: Schema, expected: Schema, *, allow_extra: bool = False) -> list[str | Text]:
    """differences(), each a Text: English for the log and --json (english()), translated on the screen."""
    out: list[str | Text] = []
    for key, table in expected.tables.items():
        mine = actual.tables.get(key)
        if mine is None:
            out.append(missing_table(table.name))
        else:
            out.extend(table_differences(mine, table, allow_extra_columns=allow_extra))
    for key, index in expected.indexes.items():
        mine_index = actual.indexes.get(key)
        out.extend([missing_index(index.name)] if mine_index is None else index_differences(mine_index, index))
    for key, (kind, sql) in expected.others.items():
        if actual.others.get(key) != (kind, sql):
            out.append(_missing_or_different(kind, key))
    if not allow_extra:
        out.extend(extra_objects(actual, expected))
    return out


def extra_objects(actual: Schema, expected: Schema) -> list[str | Text]:
    """Tables, indexes, views and triggers in `actual` that `expected` does not have."""
    out: list[str | Text] = [
        T("table {table} is not part of WEMS", table=t.name)
        for k, t in actual.tables.items()
        if k not in expected.tables
    ]
    out += [
        T("index {index} ({definition}) is not part of WEMS", index=i.name, definition=i.describe())
        for k, i in actual.indexes.items()
        if k not in expected.indexes
    ]
    out += [_not_part_of_wems(kind, k) for k, (kind, _sql) in actual.others.items() if k not in expected.others]
    return out


def extra_columns(actual: Schema, expected: Schema) -> list[str | Text]:
    """Columns of `actual`'s tables that the same table in `expected` does not have."""
    out: list[str | Text] = []
    for key, table in actual.tables.items():
        target = expected.tables.get(key)
        if target:
            out += [_extra_column(table.name, c) for c in table.columns if target.column(c.name) is None]
    return out
