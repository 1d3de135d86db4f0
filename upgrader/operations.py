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

from upgrader.errors import SchemaConflict
from upgrader.schema import Schema, column_differences, index_differences, table_differences

_ID = r'["`\[]?(\w+)["`\]]?'
_CREATE_TABLE = re.compile(rf"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_ID}", re.I)
_CREATE_INDEX = re.compile(rf"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?{_ID}\s+ON\s+{_ID}", re.I)
_ADD_COLUMN = re.compile(rf"ALTER\s+TABLE\s+{_ID}\s+ADD\s+(?:COLUMN\s+)?{_ID}", re.I)
_RENAME = re.compile(rf"ALTER\s+TABLE\s+{_ID}\s+RENAME\s+TO\s+{_ID}", re.I)
_INSERT = re.compile(rf"INSERT\s+INTO\s+{_ID}\s*\(([^)]*)\)\s*SELECT\s+(.*?)\s+FROM\s+{_ID}\b", re.I | re.S)
_DROP = re.compile(rf"DROP\s+TABLE\s+{_ID}", re.I)


@dataclass(frozen=True)
class Operation:
    kind: str
    target: str
    table: str
    statements: tuple[str, ...]

    def describe(self) -> str:
        words = {"create_table": "create table", "create_index": "create index",
                 "add_column": "add column", "rebuild": "rebuild table", "sql": "run"}
        return f"{words[self.kind]} {self.target}"


def split_statements(sql: str) -> list[str]:
    """The complete SQL statements of `sql`, with comment-only lines removed."""
    statements, buffer = [], []
    for line in sql.splitlines():
        if not buffer and (not line.strip() or line.strip().startswith("--")):
            continue
        buffer.append(line)
        text = "\n".join(buffer)
        if apsw.complete(text):
            statements.append(text.strip())
            buffer = []
    if buffer:
        raise ValueError(f"incomplete SQL statement at the end: {' '.join(buffer)[:80]}")
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
            ops.append(_rebuild(statements[i:i + 4], table.group(1)[4:]))
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
    ok = (insert[:1] == (new,) and insert[-1:] == (old,) and _names(_DROP, texts[2]) == (old,)
          and _names(_RENAME, texts[3]) == (new, old))
    if not ok:
        raise ValueError(f"rebuild of {table} must be: CREATE TABLE new_{table}; INSERT INTO new_{table} "
                         f"(...) SELECT ... FROM {table}; DROP TABLE {table}; "
                         f"ALTER TABLE new_{table} RENAME TO {table}")
    return Operation("rebuild", table, table, tuple(group))


def _single(statement: str, text: str) -> Operation:
    if match := _CREATE_INDEX.match(text):
        return Operation("create_index", match.group(1), match.group(2), (statement,))
    if match := _CREATE_TABLE.match(text):
        return Operation("create_table", match.group(1), match.group(1), (statement,))
    if match := _ADD_COLUMN.match(text):
        return Operation("add_column", f"{match.group(1)}.{match.group(2)}", match.group(1), (statement,))
    return Operation("sql", text.split("\n")[0][:60], "", (statement,))


def copied_columns(op: Operation) -> list[str]:
    """The columns a rebuild's INSERT ... SELECT reads from the old table."""
    match = _INSERT.match(_strip_comments(op.statements[1]).strip())
    return [re.sub(r'["`\[\]]', "", c).strip() for c in match.group(3).split(",")]


def is_needed(op: Operation, current: Schema, expected: Schema) -> bool:
    """True if `op` must run on a database whose schema is `current`; raise SchemaConflict if it cannot."""
    check = {"create_table": _table_needed, "create_index": _index_needed,
             "add_column": _column_needed, "rebuild": _rebuild_needed}.get(op.kind)
    return check(op, current, expected) if check else True


def _table_needed(op, current, expected) -> bool:
    mine, wanted = current.table(op.target), expected.table(op.target)
    if mine is None:
        return True
    problems = table_differences(mine, wanted)
    if problems:
        raise SchemaConflict(f"table {op.target} already exists but differs from WEMS", problems)
    return False


def _index_needed(op, current, expected) -> bool:
    mine, wanted = current.index(op.target), expected.index(op.target)
    if mine is None:
        return True
    problems = index_differences(mine, wanted)
    if problems:
        raise SchemaConflict(f"index {op.target} already exists but differs from WEMS", problems)
    return False


def _column_needed(op, current, expected) -> bool:
    table, column = op.target.split(".")
    mine = current.table(table)
    if mine is None:
        raise SchemaConflict(f"table {table} is missing", [f"table {table} is missing"])
    existing = mine.column(column)
    if existing is None:
        return True
    problems = column_differences(table, existing, expected.table(table).column(column))
    if problems:
        raise SchemaConflict(f"column {op.target} already exists but differs from WEMS", problems)
    return False


def _rebuild_needed(op, current, expected) -> bool:
    mine, wanted = current.table(op.target), expected.table(op.target)
    if mine is None:
        raise SchemaConflict(f"table {op.target} is missing", [f"table {op.target} is missing"])
    if not table_differences(mine, wanted):
        return False
    have = {c.lower() for c in mine.column_names}
    copied = {c.lower() for c in copied_columns(op)}
    problems = [f"column {op.target}.{c} would not be copied" for c in sorted(have - copied)]
    problems += [f"column {op.target}.{c} is missing" for c in sorted(copied - have)]
    if problems:
        raise SchemaConflict(f"table {op.target} cannot be rebuilt without losing data", problems)
    return True
