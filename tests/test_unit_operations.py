"""operations.statements_for on its own: what each operation still needs on a given schema.

Tables of cases in the style of sqlite-utils' tests/test_transform.py: each case is a small schema
in SQL (built in an in-memory database) and the exact statements expected, or the exact conflict.
"""

from __future__ import annotations

from contextlib import closing

import apsw
import pytest

from upgrader.errors import SchemaConflict
from upgrader.operations import Operation, column_sql, copied_columns, parse_operations, statements_for
from upgrader.schema import Column, schema_from_sql

CREATE_TABLE = 'CREATE TABLE "notes" ("id" INTEGER PRIMARY KEY, "text" TEXT NOT NULL);'
CREATE_INDEX = 'CREATE INDEX "t_a" ON "t" ("a");'
ADD_COLUMN = 'ALTER TABLE "t" ADD COLUMN "phone" VARCHAR(20);'
UPDATE = 'UPDATE "t" SET "a" = \'x\' WHERE "a" IS NULL;'
REBUILD = (
    'CREATE TABLE "new_t" ("id" INTEGER PRIMARY KEY, "a" TEXT NOT NULL);\n'
    'INSERT INTO "new_t" ("id", "a") SELECT "id", coalesce("a", \'\') FROM "t";\n'
    'DROP TABLE "t";\n'
    'ALTER TABLE "new_t" RENAME TO "t";'
)
REBUILT = (
    'CREATE TABLE "new_t" ("id" INTEGER PRIMARY KEY, "a" TEXT NOT NULL);',
    'INSERT INTO "new_t" ("id", "a") SELECT "id", coalesce("a", \'\') FROM "t";',
    'DROP TABLE "t";',
    'ALTER TABLE "new_t" RENAME TO "t";',
)

#: the schema before the step (a plain one of the previous generation)
T = 'CREATE TABLE "t" ("id" INTEGER PRIMARY KEY, "a" TEXT);'
#: the step's own schema, and the target's (a later step adds "b")
STEP = (
    'CREATE TABLE "t" ("id" INTEGER PRIMARY KEY, "a" TEXT NOT NULL, "phone" VARCHAR(20));\n'
    'CREATE TABLE "notes" ("id" INTEGER PRIMARY KEY, "text" TEXT NOT NULL);\n'
    'CREATE INDEX "t_a" ON "t" ("a");'
)
FINAL = STEP.replace('"phone" VARCHAR(20)', '"phone" VARCHAR(20), "b" TEXT DEFAULT \'x\'')


def operation(sql: str) -> Operation:
    (op,) = parse_operations(sql)
    return op


def needed(sql: str, current: str) -> tuple[str, ...] | None:
    return statements_for(operation(sql), schema_from_sql(current), schema_from_sql(STEP), schema_from_sql(FINAL))


@pytest.mark.parametrize(
    "op_sql, current, expected",
    [
        # not there yet: the operation's own statement
        (CREATE_TABLE, T, (CREATE_TABLE,)),
        (CREATE_INDEX, T, (CREATE_INDEX,)),
        (ADD_COLUMN, T, (ADD_COLUMN,)),
        # already there exactly as the step defines it (by hand, or by a newer app): skipped
        (CREATE_TABLE, T + CREATE_TABLE, None),
        (CREATE_TABLE, T + CREATE_TABLE.replace("TEXT NOT NULL", "text  not null"), None),
        (CREATE_INDEX, T + CREATE_INDEX, None),
        (CREATE_INDEX, T + 'CREATE INDEX "T_A" ON "t" ("a");', None),
        (ADD_COLUMN, T.replace('"a" TEXT', '"a" TEXT, "phone" VARCHAR(20)'), None),
        (ADD_COLUMN, T.replace('"a" TEXT', '"phone" varchar( 20 ), "a" TEXT'), None),
        # any other statement always runs, whatever the schema
        (UPDATE, T, (UPDATE,)),
        (UPDATE, STEP, (UPDATE,)),
        # a rebuild: needed while the table differs from the step's; skipped once it has that layout
        (REBUILD, T, REBUILT),
        (REBUILD, T.replace('"a" TEXT', '"a" TEXT NOT NULL'), REBUILT),
        (REBUILD, T.replace('"a" TEXT', '"a" TEXT NOT NULL, "phone" VARCHAR(20)'), None),
        (REBUILD, 'CREATE TABLE "t" ("phone" VARCHAR(20), "a" TEXT NOT NULL, "id" INTEGER PRIMARY KEY);', None),
    ],
    ids=[
        "create table",
        "create index",
        "add column",
        "table there",
        "table there, other spelling",
        "index there",
        "index there, other case",
        "column there",
        "column there, other order and spacing",
        "sql",
        "sql on the step's schema",
        "rebuild",
        "rebuild, the step's other column missing",
        "rebuild done",
        "rebuild done, other column order",
    ],
)
def test_statements_needed(op_sql, current, expected):
    assert needed(op_sql, current) == expected


@pytest.mark.parametrize(
    "op_sql, current, message, details",
    [
        (
            CREATE_TABLE,
            T + 'CREATE TABLE "notes" ("id" INTEGER PRIMARY KEY, "text" TEXT);',
            "table notes already exists but differs from WEMS",
            ["column notes.text is nullable, expected NOT NULL"],
        ),
        (
            CREATE_TABLE,
            T + 'CREATE TABLE "notes" ("id" INTEGER PRIMARY KEY, "text" TEXT NOT NULL, "x" INT);',
            "table notes already exists but differs from WEMS",
            ["column notes.x (INT) is not part of WEMS"],
        ),
        (
            CREATE_INDEX,
            T + 'CREATE UNIQUE INDEX "t_a" ON "t" ("a");',
            "index t_a already exists but differs from WEMS",
            ["index t_a is UNIQUE INDEX ON t (a), expected INDEX ON t (a)"],
        ),
        (
            CREATE_INDEX,
            T + 'CREATE INDEX "t_a" ON "t" ("id");',
            "index t_a already exists but differs from WEMS",
            ["index t_a is INDEX ON t (id), expected INDEX ON t (a)"],
        ),
        (
            ADD_COLUMN,
            T.replace('"a" TEXT', '"a" TEXT, "phone" TEXT'),
            "column t.phone already exists but differs from WEMS",
            ["column t.phone has type TEXT, expected VARCHAR(20)"],
        ),
        (
            ADD_COLUMN,
            T.replace('"a" TEXT', '"a" TEXT, "phone" VARCHAR(20) NOT NULL DEFAULT \'\''),
            "column t.phone already exists but differs from WEMS",
            ["column t.phone is NOT NULL, expected nullable", "column t.phone has default '', expected None"],
        ),
        (ADD_COLUMN, 'CREATE TABLE "other" ("id" INTEGER PRIMARY KEY);', "table t is missing", ["table t is missing"]),
        (REBUILD, 'CREATE TABLE "other" ("id" INTEGER PRIMARY KEY);', "table t is missing", ["table t is missing"]),
        (
            REBUILD,
            T.replace('"a" TEXT', '"a" TEXT, "c" TEXT'),
            "table t cannot be rebuilt without losing data",
            ["column t.c would not be copied"],
        ),
        (
            REBUILD,
            T.replace('"a" TEXT', '"a" TEXT, "b" INTEGER'),
            "table t cannot be rebuilt without losing data",
            ["column t.b would not be copied"],
        ),
        (
            REBUILD,
            T.replace('"a" TEXT', '"z" TEXT, "y" TEXT'),
            "table t cannot be rebuilt without losing data",
            ["column t.y would not be copied", "column t.z would not be copied"],
        ),
    ],
    ids=[
        "table differs",
        "table has more",
        "index unique",
        "index other column",
        "column type",
        "column constraints",
        "column's table missing",
        "rebuilt table missing",
        "column not copied",
        "later column, other type",
        "columns not copied, sorted",
    ],
)
def test_conflicts(op_sql, current, message, details):
    with pytest.raises(SchemaConflict) as conflict:
        needed(op_sql, current)
    assert (conflict.value.message, conflict.value.details) == (message, details)


def test_a_rebuild_reading_a_column_the_table_lacks_is_a_conflict():
    op = operation(REBUILD.replace("coalesce(\"a\", '')", '"a"'))
    with pytest.raises(SchemaConflict) as conflict:
        statements_for(
            op,
            schema_from_sql('CREATE TABLE "t" ("id" INTEGER PRIMARY KEY);'),
            schema_from_sql(STEP),
            schema_from_sql(FINAL),
        )
    assert conflict.value.details == ["column t.a is missing"]


CARRY_B = T.replace('"a" TEXT', '"a" TEXT, "b" TEXT DEFAULT \'x\'')
CARRY_B_AND_PHONE = T.replace('"a" TEXT', '"phone" VARCHAR(20), "a" TEXT, "b" TEXT DEFAULT \'x\'')


@pytest.mark.parametrize(
    "current, expected",
    [
        (
            CARRY_B,
            (
                REBUILT[0],
                'ALTER TABLE "new_t" ADD COLUMN "b" TEXT DEFAULT \'x\'',
                'INSERT INTO "new_t" ("id", "a", "b") SELECT "id", coalesce("a", \'\'), "b" FROM "t"',
                *REBUILT[2:],
            ),
        ),
        (
            CARRY_B_AND_PHONE,
            (
                REBUILT[0],
                'ALTER TABLE "new_t" ADD COLUMN "b" TEXT DEFAULT \'x\'',
                'ALTER TABLE "new_t" ADD COLUMN "phone" VARCHAR(20)',
                'INSERT INTO "new_t" ("id", "a", "b", "phone") SELECT "id", coalesce("a", \'\'), "b", "phone" FROM "t"',
                *REBUILT[2:],
            ),
        ),
    ],
    ids=["one later column", "two later columns, by name"],
)
def test_a_rebuild_carries_the_columns_a_later_release_defines(current, expected):
    """A column the target defines, added early (by hand, a newer app), is carried, not lost."""
    assert needed(REBUILD, current) == expected


def test_the_carried_rebuild_keeps_every_value():
    with closing(apsw.Connection(":memory:")) as conn:
        conn.execute(CARRY_B_AND_PHONE)
        conn.execute("INSERT INTO t VALUES (1, '06 12', NULL, 'kept'), (2, NULL, 'a', NULL)")
        for statement in needed(REBUILD, CARRY_B_AND_PHONE):
            conn.execute(statement)
        rows = list(conn.execute('SELECT "id", "a", "b", "phone" FROM t ORDER BY "id"'))
    assert rows == [(1, "", "kept", "06 12"), (2, "a", None, None)]


@pytest.mark.parametrize(
    "sql, columns",
    [
        (REBUILD, ["id"]),
        (REBUILD.replace("coalesce(\"a\", '')", '"a"'), ["id", "a"]),
        (REBUILD.replace('"id", coalesce("a", \'\')', "[id], `a`"), ["id", "a"]),
    ],
)
def test_copied_columns_are_the_plain_names_read(sql, columns):
    assert copied_columns(operation(sql)) == columns


@pytest.mark.parametrize(
    "column, sql",
    [
        (Column("b", "TEXT", False, None, 0), '"b" TEXT'),
        (Column("b", "", False, None, 0), '"b"'),
        (Column("n", "INTEGER", True, "0", 0), '"n" INTEGER NOT NULL DEFAULT 0'),
        (Column("s", "VARCHAR(20)", False, "'x'", 0), "\"s\" VARCHAR(20) DEFAULT 'x'"),
    ],
)
def test_column_sql(column, sql):
    assert column_sql(column) == sql


@pytest.mark.parametrize(
    "sql, kind, target, table",
    [
        (CREATE_TABLE, "create_table", "notes", "notes"),
        ('CREATE TABLE IF NOT EXISTS [notes] ("id" INT);', "create_table", "notes", "notes"),
        (CREATE_INDEX, "create_index", "t_a", "t"),
        ('CREATE UNIQUE INDEX IF NOT EXISTS "u" ON "t" ("a");', "create_index", "u", "t"),
        (ADD_COLUMN, "add_column", "t.phone", "t"),
        ("ALTER TABLE t ADD phone TEXT;", "add_column", "t.phone", "t"),
        (REBUILD, "rebuild", "t", "t"),
        (UPDATE, "sql", UPDATE, ""),
    ],
)
def test_each_statement_becomes_its_kind_of_operation(sql, kind, target, table):
    op = operation(sql)
    assert (op.kind, op.target, op.table) == (kind, target, table)
