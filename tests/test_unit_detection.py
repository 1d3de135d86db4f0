"""Detection on its own: which generation a schema is, what no later release explains, and the
databases refused before any plan (newer, not WEMS), on a four-generation catalog made of small
SQL strings and in-memory databases.

    g1  e(id, name)
    g2  + e.phone                      (add column)
    g3  + index e_name on e(name)      (create index)
    g4  e.name NOT NULL                (rebuild, then the index again)
"""

from __future__ import annotations

from contextlib import closing

import apsw
import pytest
from packaging.version import Version

from upgrader.detector import newest_contained, read_wems_schema, unexplained, unknown
from upgrader.errors import BadInstallation, NewerDatabase, UnknownSchema
from upgrader.i18n import english
from upgrader.loader import Catalog, Step
from upgrader.operations import parse_operations
from upgrader.planner import make_plan
from upgrader.recorder import HISTORY_DDL, HISTORY_TABLE
from upgrader.schema import schema_from_sql

G1 = 'CREATE TABLE "e" ("id" INTEGER PRIMARY KEY, "name" TEXT);\n'
G2 = 'CREATE TABLE "e" ("id" INTEGER PRIMARY KEY, "name" TEXT, "phone" TEXT);\n'
G3 = G2 + 'CREATE INDEX "e_name" ON "e" ("name");\n'
G4 = G3.replace('"name" TEXT', '"name" TEXT NOT NULL')
UP = {
    2: 'ALTER TABLE "e" ADD COLUMN "phone" TEXT;',
    3: 'CREATE INDEX "e_name" ON "e" ("name");',
    4: (
        'CREATE TABLE "new_e" ("id" INTEGER PRIMARY KEY, "name" TEXT NOT NULL, "phone" TEXT);\n'
        'INSERT INTO "new_e" ("id", "name", "phone") SELECT "id", coalesce("name", \'\'), "phone" FROM "e";\n'
        'DROP TABLE "e";\nALTER TABLE "new_e" RENAME TO "e";\nCREATE INDEX "e_name" ON "e" ("name");'
    ),
}
MIGRATIONS = 'CREATE TABLE "migrations" ("id" INTEGER PRIMARY KEY, "name" TEXT);\n'


def make_catalog() -> Catalog:
    steps = []
    for n, sql in enumerate([G1, G2, G3, G4], 1):
        up = UP.get(n)
        steps.append(
            Step(
                n,
                f"s{n}",
                f"step {n}",
                f"r{n}",
                sql,
                up_sql=up,
                first_release=Version(f"1.0.{n}"),
                last_release=Version(f"1.0.{n}"),
                operations=tuple(parse_operations(up)) if up else (),
                app_migrations=(f"2026010{n}_000000_step{n}",),
            )
        )
    return Catalog(tuple(steps))


CATALOG = make_catalog()
LATEST, G2_STEP = CATALOG.latest, CATALOG.step(2)


def label(step: Step | None) -> str | None:
    return step.label if step else None


@pytest.mark.parametrize(
    "sql, target, found",
    [
        (G1, LATEST, "g1"),
        (G2, LATEST, "g2"),
        (G3, LATEST, "g3"),
        (G4, LATEST, "g4"),
        # extra objects are allowed here (the planner refuses them against the target)
        (G1 + 'CREATE TABLE "notes" ("x" TEXT);', LATEST, "g1"),
        (G2 + 'CREATE INDEX "mine" ON "e" ("phone");', LATEST, "g2"),
        # a later generation's object added early is enough for that generation when it is all there
        (G1.replace('"name" TEXT', '"name" TEXT, "phone" TEXT'), LATEST, "g2"),
        (G1 + 'CREATE INDEX "e_name" ON "e" ("name");', LATEST, "g1"),
        # g4's NOT NULL made early: g1 as g4 defines it ...
        (G1.replace('"name" TEXT', '"name" TEXT NOT NULL'), LATEST, "g1"),
        (G3.replace('"name" TEXT', '"name" TEXT NOT NULL'), LATEST, "g4"),
        # ... but not explained when the target stops before g4
        (G1.replace('"name" TEXT', '"name" TEXT NOT NULL'), G2_STEP, None),
        # nothing known
        (G1.replace('"name" TEXT', '"name" INTEGER'), LATEST, None),
        ('CREATE TABLE "e" ("id" INTEGER PRIMARY KEY);', LATEST, None),
        ('CREATE TABLE "other" ("x" TEXT);', LATEST, None),
    ],
    ids=[
        "g1",
        "g2",
        "g3",
        "g4",
        "extra table",
        "extra index",
        "column early",
        "index early",
        "NOT NULL early on g1",
        "NOT NULL early on g3",
        "NOT NULL early, target g2",
        "other type",
        "missing column",
        "no WEMS table",
    ],
)
def test_newest_contained(sql, target, found):
    assert label(newest_contained(schema_from_sql(sql), CATALOG, target)) == found


@pytest.mark.parametrize(
    "sql, generation, later, expected",
    [
        (G1, 1, [], []),
        (G2, 1, [], []),
        (G1.replace('"name" TEXT', '"name" TEXT NOT NULL'), 1, [], ["column e.name is NOT NULL, expected nullable"]),
        (
            G1.replace('"name" TEXT', '"name" TEXT NOT NULL'),
            1,
            [2, 3],
            ["column e.name is NOT NULL, expected nullable"],
        ),
        (G1.replace('"name" TEXT', '"name" TEXT NOT NULL'), 1, [2, 3, 4], []),
        (
            G1.replace('"name" TEXT', "\"name\" TEXT DEFAULT '?'"),
            1,
            [2, 3, 4],
            ["column e.name has default '?', expected None"],
        ),
        (G1, 2, [], ["column e.phone is missing"]),
        ('CREATE TABLE "other" ("x" TEXT);', 2, [], ["table e is missing"]),
        (G2, 3, [4], ["index e_name is missing"]),
        (
            G2 + 'CREATE INDEX "e_name" ON "e" ("phone");',
            3,
            [4],
            ["index e_name is INDEX ON e (phone), expected INDEX ON e (name)"],
        ),
        (
            G2.replace('"phone" TEXT', '"phone" TEXT UNIQUE'),
            2,
            [3, 4],
            ["table e has UNIQUE constraints [('phone',)], expected []"],
        ),
    ],
    ids=[
        "same",
        "extra column ignored",
        "differs",
        "differs, later does not explain",
        "explained by g4",
        "not explained by any",
        "missing column",
        "missing table",
        "missing index",
        "index differs",
        "UNIQUE differs",
    ],
)
def test_unexplained(sql, generation, later, expected):
    schemas = [CATALOG.step(n).schema for n in later]
    found = unexplained(schema_from_sql(sql), CATALOG.step(generation).schema, schemas)
    assert [english(text) for text in found] == expected


def test_unknown_names_the_closest_generation_and_its_differences():
    error = unknown(schema_from_sql(G2.replace('"phone" TEXT', '"phone" INTEGER')), CATALOG)
    assert error.message == (
        "This database does not match any Wareflow EMS version. Closest is g2 (r2); the differences are:"
    )
    assert error.details == ["column e.phone has type INTEGER, expected TEXT"]


def database(*sql: str) -> apsw.Connection:
    conn = apsw.Connection(":memory:")
    for statement in sql:
        conn.execute(statement)
    return conn


def history_row(generation: int) -> str:
    return (
        f"INSERT INTO \"{HISTORY_TABLE}\" VALUES (1, '2026-11-30T10:00:00+00:00', '9.9.9', {generation}, "
        f"'g{generation}_future', 'x', 1, 0)"
    )


@pytest.mark.parametrize(
    "sql, error, message, details",
    [
        ((), BadInstallation, "The database file is empty: it holds no Wareflow EMS data.", []),
        (
            ('CREATE TABLE "notes" ("x" TEXT); CREATE TABLE "b" ("y" TEXT)',),
            BadInstallation,
            "This is not a Wareflow EMS database: it has none of its tables (it has: b, notes).",
            [],
        ),
        (
            (G4, HISTORY_DDL, history_row(5)),
            NewerDatabase,
            "This database was upgraded to g5_future by wems-upgrade 9.9.9, newer than this upgrader knows "
            "(up to g4, Wareflow EMS 1.0.4).",
            [],
        ),
        (
            (
                G4,
                MIGRATIONS,
                "INSERT INTO migrations (name) VALUES ('20260104_000000_step4'), "
                "('20270101_000000_badges'), ('20260201_000000_z')",
            ),
            NewerDatabase,
            "This database was changed by a Wareflow EMS release newer than this upgrader knows (up to 1.0.4).",
            ["unknown app migration 20260201_000000_z", "unknown app migration 20270101_000000_badges"],
        ),
    ],
    ids=["empty", "not WEMS", "newer history", "newer app migrations"],
)
def test_refused_before_any_plan(sql, error, message, details):
    with closing(database(*sql)) as conn, pytest.raises(error) as refused:
        read_wems_schema(conn, CATALOG)
    assert type(refused.value) is error
    assert (refused.value.message, refused.value.details) == (message, details)


@pytest.mark.parametrize(
    "sql",
    [
        (G4, HISTORY_DDL, history_row(4)),
        (G4, MIGRATIONS, "INSERT INTO migrations (name) VALUES ('20251231_000000_older_unknown'), ('not_dated')"),
    ],
    ids=["history up to the latest", "unknown app migrations older than the newest known"],
)
def test_not_refused(sql):
    with closing(database(*sql)) as conn:
        assert read_wems_schema(conn, CATALOG).table("e") is not None


def plan_of(sql: str, target: Step = LATEST):
    with closing(database(sql)) as conn:
        return make_plan(conn, CATALOG, target)


@pytest.mark.parametrize(
    "sql, start, done",
    [
        (
            G1,
            "g1",
            [
                ("g2", "add column e.phone", True),
                ("g3", "create index e_name", True),
                ("g4", "rebuild table e", True),
                ("g4", "create index e_name", True),
            ],
        ),
        (G3, "g3", [("g4", "rebuild table e", True), ("g4", "create index e_name", True)]),
        (
            G1.replace('"name" TEXT', '"name" TEXT NOT NULL'),
            "g1",
            [
                ("g2", "add column e.phone", True),
                ("g3", "create index e_name", True),
                ("g4", "rebuild table e", False),
                ("g4", "create index e_name", False),
            ],
        ),
        (G4, "g4", []),
    ],
    ids=["g1", "g3", "g1 with g4's NOT NULL already", "latest"],
)
def test_the_plan_starts_at_the_detected_generation_and_skips_what_is_done(sql, start, done):
    plan = plan_of(sql)
    assert plan.current.label == start
    assert [(o.step.label, o.operation.describe(), o.applied) for o in plan.outcomes] == done


@pytest.mark.parametrize(
    "sql, target, error, message, details",
    [
        (
            G3,
            G2_STEP,
            NewerDatabase,
            "This database is g3 (r3), newer than the requested g2 (r2). wems-upgrade never downgrades.",
            [],
        ),
        (
            G1 + 'CREATE TABLE "notes" ("x" TEXT);',
            LATEST,
            UnknownSchema,
            "This database has parts that Wareflow EMS g4 (r4) does not have. They may have been added by hand, "
            "or by a newer release:",
            ["table notes is not part of WEMS"],
        ),
        (
            G1.replace('"name" TEXT', '"name" TEXT, "badge" INT'),
            LATEST,
            UnknownSchema,
            "This database has parts that Wareflow EMS g4 (r4) does not have. They may have been added by hand, "
            "or by a newer release:",
            ["column e.badge (INT) is not part of WEMS"],
        ),
        (
            G1.replace('"name" TEXT', '"name" INTEGER'),
            LATEST,
            UnknownSchema,
            "This database does not match any Wareflow EMS version. Closest is g1 (r1); the differences are:",
            ["column e.name has type INTEGER, expected TEXT"],
        ),
    ],
    ids=["newer than the target", "extra table", "extra column", "unknown"],
)
def test_the_plan_refuses(sql, target, error, message, details):
    with pytest.raises(error) as refused:
        plan_of(sql, target)
    assert (refused.value.message, refused.value.details) == (message, details)


def test_every_shipped_generation_is_detected_as_itself(catalog):
    found = [label(newest_contained(step.schema, catalog, catalog.latest)) for step in catalog.steps]
    assert found == [step.label for step in catalog.steps]
