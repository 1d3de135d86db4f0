"""A step's SQL split into operations, each with the test that says whether it is still needed.

An operation is one of:
- create_table X, create_index I, add_column T.c: skipped when the object already exists
  exactly as the step's expected schema defines it (added by hand, or by a newer app);
  a conflict when it exists differently.
- rebuild T: the documented sequence CREATE new_T, INSERT INTO new_T ... SELECT FROM T,
  DROP T, ALTER TABLE new_T RENAME TO T. Skipped when T already has the target layout;
  a conflict when T has columns the copy would not carry over, or lacks one it reads.
- sql: any other statement (data changes), always run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import apsw

from upgrader.errors import MalformedMigrations, SchemaConflict
from upgrader.i18n import T, Text
from upgrader.schema import (
    Column,
    Schema,
    column_differences,
    index_differences,
    missing_column,
    missing_table,
    table_differences,
)

_ID = r'["`\[]?(\w+)["`\]]?'
_CREATE_TABLE = re.compile(rf"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_ID}", re.I)
_CREATE_INDEX = re.compile(rf"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?{_ID}\s+ON\s+{_ID}", re.I)
_ADD_COLUMN = re.compile(rf"ALTER\s+TABLE\s+{_ID}\s+ADD\s+(?:COLUMN\s+)?{_ID}", re.I)
_RENAME = re.compile(rf"ALTER\s+TABLE\s+{_ID}\s+RENAME\s+TO\s+{_ID}", re.I)
_INSERT = re.compile(rf"INSERT\s+INTO\s+{_ID}\s*\(([^)]*)\)\s*SELECT\s+(.*?)\s+FROM\s+{_ID}(?!\w)", re.I | re.S)
_DROP = re.compile(rf"DROP\s+TABLE\s+{_ID}", re.I)


@dataclass(frozen=True)
class Operation:
    kind: str
    target: str
    table: str
    statements: tuple[str, ...]

    def describe(self) -> str:
        """What the operation does, in English (the log, --json, the SQL preview)."""
        return self.text.english()

    @property
    def text(self) -> Text:
        """What the operation does, in the user's language when shown (str() or localize())."""
        if self.kind == "create_table":
            return T("create table {name}", name=self.target)
        if self.kind == "create_index":
            return T("create index {name}", name=self.target)
        if self.kind == "add_column":
            return T("add column {name}", name=self.target)
        if self.kind == "rebuild":
            return T("rebuild table {name}", name=self.target)
        return T("run {sql}", sql=self.target)


def split_statements(sql: str) -> list[str]:
    """The complete SQL statements of `sql`, with comment-only lines removed."""
    statements: list[str] = []
    buffer: list[str] = []
    for line in sql.splitlines():
        if not buffer and (not line.strip() or line.strip().startswith("--")):
            continue
        buffer.append(line)
        text = "\n".join(buffer)
        if apsw.complete(text):
            statements.append(text.strip())
            buffer = []
    if buffer:
        raise MalformedMigrations(T("incomplete SQL statement at the end: {sql}", sql=" ".join(buffer)[:80]))
    return statements


def _strip_comments(statement: str) -> str:
    return "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--"))


def parse_operations(sql: str) -> list[Operation]:
    """Group a step's statements into operations (see the module docstring)."""
    statements = split_statements(sql)
    ops, i = [], 0
    while i < len(statements):
        text = _strip_comments(statements[i]).strip()
        table = _CREATE_TABLE.match(text)
        if table and table.group(1).lower().startswith("new_"):
            ops.append(_rebuild(statements[i : i + 4], table.group(1)[4:]))
            i += 4
            continue
        ops.append(_single(statements[i], text))
        i += 1
    return ops


def _names(pattern: re.Pattern, text: str) -> tuple[str, ...]:
    match = pattern.match(text)
    return tuple(g.lower() for g in match.groups()) if match else ()


def _rebuild(group: list[str], table: str) -> Operation:
    texts = [_strip_comments(s).strip() for s in group] + ["", "", ""]
    new, old = f"new_{table}".lower(), table.lower()
    insert = _names(_INSERT, texts[1])
    ok = (
        insert[:1] == (new,)
        and insert[-1:] == (old,)
        and _names(_DROP, texts[2]) == (old,)
        and _names(_RENAME, texts[3]) == (new, old)
    )
    if not ok:
        raise MalformedMigrations(
            T(
                "rebuild of {table} must be: {sql}",
                table=table,
                sql=f"CREATE TABLE new_{table}; INSERT INTO new_{table} (...) SELECT ... FROM {table}; "
                f"DROP TABLE {table}; ALTER TABLE new_{table} RENAME TO {table}",
            )
        )
    op = Operation("rebuild", table, table, tuple(group))
    _check_copy_lists(op)
    return op


def _is_name(item: str) -> bool:
    return re.fullmatch(r'["`\[]?\w+["`\]]?', item.strip()) is not None


def _unquote(item: str) -> str:
    return re.sub(r'["`\[\]]', "", item).strip()


def _copy_lists(op: Operation) -> tuple[list[str], list[str], str]:
    """(columns written, SELECT items, text after `FROM old`) of a rebuild's INSERT ... SELECT."""
    text = _strip_comments(op.statements[1]).strip()
    match = _INSERT.match(text)
    if match is None:  # _rebuild checked this statement before making the operation
        raise MalformedMigrations(
            T("rebuild of {table}: the second statement is not INSERT INTO ... SELECT", table=op.target)
        )
    tail = text[match.end() :].rstrip().rstrip(";")
    return [_unquote(c) for c in _split_list(match.group(2))], [c.strip() for c in _split_list(match.group(3))], tail


def _split_list(text: str) -> list[str]:
    """The items of a comma-separated SQL list; commas inside parentheses or quotes do not split."""
    items, depth, quote, start = [], 0, None, 0
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"`[":
            quote = "]" if char == "[" else char
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    return items + [text[start:]]


def _check_copy_lists(op: Operation) -> None:
    """Each plain column in the SELECT must go to the column of the same name: no value changes column."""
    written, selected, _tail = _copy_lists(op)
    swapped = [
        (w, s) for w, s in zip(written, selected, strict=False) if _is_name(s) and _unquote(s).lower() != w.lower()
    ]
    if len(written) != len(selected) or swapped:
        if swapped:
            raise MalformedMigrations(
                T(
                    "rebuild of {table}: the INSERT column list and the SELECT list must "
                    "name the same columns in the same order (differ at {columns})",
                    table=op.target,
                    columns=str(swapped),
                )
            )
        raise MalformedMigrations(
            T(
                "rebuild of {table}: the INSERT column list and the SELECT list must "
                "name the same columns in the same order (differ at their length)",
                table=op.target,
            )
        )


def _single(statement: str, text: str) -> Operation:
    if match := _CREATE_INDEX.match(text):
        return Operation("create_index", match.group(1), match.group(2), (statement,))
    if match := _CREATE_TABLE.match(text):
        return Operation("create_table", match.group(1), match.group(1), (statement,))
    if match := _ADD_COLUMN.match(text):
        return Operation("add_column", f"{match.group(1)}.{match.group(2)}", match.group(1), (statement,))
    return Operation("sql", text.split("\n")[0][:60], "", (statement,))


def copied_columns(op: Operation) -> list[str]:
    """The columns a rebuild's INSERT ... SELECT reads, by name, from the old table."""
    _written, selected, _tail = _copy_lists(op)
    return [_unquote(item) for item in selected if _is_name(item)]


def statements_for(op: Operation, current: Schema, expected: Schema, final: Schema) -> tuple[str, ...] | None:
    """The SQL to run for `op` on a database whose schema is `current`, or None if it is already done.

    `expected` is the step's schema, `final` the target's. Raises SchemaConflict if `op` cannot run.
    """
    if op.kind == "rebuild":
        return _rebuild_statements(op, current, expected, final)
    check = {"create_table": _table_needed, "create_index": _index_needed, "add_column": _column_needed}.get(op.kind)
    return op.statements if check is None or check(op, current, expected) else None


def _absent(conflict: Text, mine, wanted, differ) -> bool:
    """True if the object is absent; False if it is there as wanted; `conflict` if it differs."""
    if mine is None:
        return True
    problems = differ(mine, wanted)
    if problems:
        raise SchemaConflict(conflict, problems)
    return False


def _missing_table(table: str) -> SchemaConflict:
    details: list[str | Text] = [missing_table(table)]
    return SchemaConflict(missing_table(table), details)


def _table_needed(op, current, expected) -> bool:
    conflict = T("table {name} already exists but differs from WEMS", name=op.target)
    return _absent(conflict, current.table(op.target), expected.table(op.target), table_differences)


def _index_needed(op, current, expected) -> bool:
    conflict = T("index {name} already exists but differs from WEMS", name=op.target)
    return _absent(conflict, current.index(op.target), expected.index(op.target), index_differences)


def _column_needed(op, current, expected) -> bool:
    table, column = op.target.split(".")
    mine = current.table(table)
    if mine is None:
        raise _missing_table(table)
    existing = mine.column(column)
    if existing is None:
        return True
    problems = column_differences(table, existing, expected.table(table).column(column))
    if problems:
        raise SchemaConflict(T("column {name} already exists but differs from WEMS", name=op.target), problems)
    return False


def _rebuild_statements(op, current, expected, final) -> tuple[str, ...] | None:
    mine, wanted = current.table(op.target), expected.table(op.target)
    if mine is None:
        raise _missing_table(op.target)
    if not table_differences(mine, wanted):
        return None
    written, _selected, _tail = _copy_lists(op)
    have = {c.lower(): c for c in mine.column_names}
    # the rowid a rebuild copies (so the values check can join on it) is not a column to find
    read = {c.lower() for c in copied_columns(op)} - ({"rowid", "_rowid_", "oid"} - have.keys())
    left = sorted(have.keys() - read - {w.lower() for w in written})
    carry = [have[c] for c in left if _same_in(final, op.target, mine.column(c))]
    problems: list[str | Text] = [
        T("column {column} would not be copied", column=f"{op.target}.{have[c]}") for c in left if have[c] not in carry
    ]
    problems += [missing_column(op.target, c) for c in sorted(read - have.keys())]
    if problems:
        raise SchemaConflict(T("table {name} cannot be rebuilt without losing data", name=op.target), problems)
    return _carrying(op, [mine.column(c) for c in carry]) if carry else op.statements


def _same_in(schema: Schema, table: str, column: Column) -> bool:
    """True if `schema` defines `column` of `table` exactly so (a later release's column, added early)."""
    their_table = schema.table(table)
    theirs = their_table.column(column.name) if their_table is not None else None
    return theirs is not None and not column_differences(table, column, theirs)


def _carrying(op: Operation, columns: list[Column]) -> tuple[str, ...]:
    """The rebuild's statements, extended to carry `columns` (present early) into the new table."""
    create, _insert, drop, rename = op.statements
    written, selected, tail = _copy_lists(op)
    names = [f'"{c.name}"' for c in columns]
    adds = [f'ALTER TABLE "new_{op.target}" ADD COLUMN {column_sql(c)}' for c in columns]
    insert = (
        f'INSERT INTO "new_{op.target}" ({", ".join([f"{chr(34)}{w}{chr(34)}" for w in written] + names)})'
        f' SELECT {", ".join(selected + names)} FROM "{op.target}"{tail}'
    )
    return (create, *adds, insert, drop, rename)


def column_sql(column: Column) -> str:
    parts = [f'"{column.name}"', column.type]
    if column.notnull:
        parts.append("NOT NULL")
    if column.default is not None:
        parts.append(f"DEFAULT {column.default}")
    return " ".join(p for p in parts if p)
