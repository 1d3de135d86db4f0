"""schema.differences on its own: what "equal" means (docs/ARCHITECTURE.md), in plain words.

Each case changes one thing in a small expected schema (built from SQL in an in-memory
database) and gives the exact list of differences the user would read.
"""

from __future__ import annotations

import pytest

from upgrader import i18n
from upgrader.i18n import english
from upgrader.schema import Index, difference_texts, differences, extra_columns, schema_from_sql


def in_english(texts) -> list[str]:
    return [english(text) for text in texts]


EXPECTED = """
CREATE TABLE "p" ("id" INTEGER PRIMARY KEY);
CREATE TABLE "c" (
    "id" INTEGER PRIMARY KEY,
    "p_id" INTEGER NOT NULL REFERENCES "p" ("id") ON DELETE CASCADE,
    "name" VARCHAR(20) DEFAULT '',
    "code" TEXT UNIQUE
);
CREATE INDEX "c_name" ON "c" ("name");
CREATE VIEW "v" AS SELECT id FROM p;
"""


def changed(old: str, new: str) -> str:
    assert old in EXPECTED
    return EXPECTED.replace(old, new, 1)


@pytest.mark.parametrize(
    "actual, expected",
    [
        # equal
        (EXPECTED, []),
        (changed('"name" VARCHAR(20)', '"name" varchar( 20 )'), []),
        (
            changed(
                '"name" VARCHAR(20) DEFAULT \'\',\n    "code" TEXT UNIQUE',
                '"code" TEXT UNIQUE,\n    "name" VARCHAR(20) DEFAULT \'\'',
            ),
            [],
        ),
        (changed('"code" TEXT UNIQUE', '"code" TEXT UNIQUE CHECK (length(code) < 9)'), []),
        (changed("AS SELECT id FROM p", "AS  SELECT id\n  FROM p"), []),
        (EXPECTED + 'CREATE TABLE "wems_upgrade_history" ("id" INTEGER PRIMARY KEY);', []),
        # columns
        (changed('"name" VARCHAR(20)', '"name" TEXT'), ["column c.name has type TEXT, expected VARCHAR(20)"]),
        (changed('"p_id" INTEGER NOT NULL', '"p_id" INTEGER'), ["column c.p_id is nullable, expected NOT NULL"]),
        (changed("DEFAULT ''", ""), ["column c.name has default None, expected ''"]),
        (changed("DEFAULT ''", "DEFAULT 'x'"), ["column c.name has default 'x', expected ''"]),
        (
            changed('"id" INTEGER PRIMARY KEY,\n    "p_id"', '"id" INTEGER,\n    "p_id"'),
            ["column c.id primary-key position is 0, expected 1"],
        ),
        (
            changed(',\n    "code" TEXT UNIQUE', ""),
            ["column c.code is missing", "table c has UNIQUE constraints [], expected [('code',)]"],
        ),
        (
            changed('"code" TEXT UNIQUE', '"code" TEXT UNIQUE, "badge" INT NOT NULL DEFAULT 0'),
            ["column c.badge (INT NOT NULL DEFAULT 0) is not part of WEMS"],
        ),
        # constraints
        (
            changed("ON DELETE CASCADE", ""),
            [
                "table c lacks foreign key (p_id) -> p ON DELETE CASCADE ON UPDATE NO ACTION",
                "table c has an unexpected foreign key (p_id) -> p ON DELETE NO ACTION ON UPDATE NO ACTION",
            ],
        ),
        (
            changed('REFERENCES "p" ("id") ON DELETE CASCADE', ""),
            ["table c lacks foreign key (p_id) -> p ON DELETE CASCADE ON UPDATE NO ACTION"],
        ),
        (changed('"code" TEXT UNIQUE', '"code" TEXT'), ["table c has UNIQUE constraints [], expected [('code',)]"]),
        (
            changed('"p" ("id" INTEGER PRIMARY KEY)', '"p" ("id" INTEGER PRIMARY KEY) STRICT'),
            ["table p differs in WITHOUT ROWID / STRICT"],
        ),
        # tables
        (
            changed('CREATE VIEW "v" AS SELECT id FROM p;', "").replace(
                'CREATE TABLE "p" ("id" INTEGER PRIMARY KEY);', 'CREATE TABLE "q" ("id" INTEGER PRIMARY KEY);'
            ),
            ["table p is missing", "view v is missing or different", "table q is not part of WEMS"],
        ),
        # indexes
        (changed('CREATE INDEX "c_name" ON "c" ("name");', ""), ["index c_name is missing"]),
        (
            changed('CREATE INDEX "c_name"', 'CREATE UNIQUE INDEX "c_name"'),
            ["index c_name is UNIQUE INDEX ON c (name), expected INDEX ON c (name)"],
        ),
        (
            changed('ON "c" ("name")', 'ON "c" ("name", "code")'),
            ["index c_name is INDEX ON c (name, code), expected INDEX ON c (name)"],
        ),
        (
            changed('ON "c" ("name")', 'ON "c" ("name" DESC)'),
            ["index c_name is INDEX ON c (name DESC), expected INDEX ON c (name)"],
        ),
        (
            changed('ON "c" ("name")', 'ON "c" ("name" COLLATE NOCASE)'),
            ["index c_name is INDEX ON c (name COLLATE NOCASE), expected INDEX ON c (name)"],
        ),
        (
            changed('ON "c" ("name")', 'ON "c" ("name") WHERE "name" IS NOT NULL'),
            ['index c_name is INDEX ON c (name) WHERE "name" IS NOT NULL, expected INDEX ON c (name)'],
        ),
        (
            changed('ON "c" ("name")', 'ON "c" (lower("name"))'),
            ["index c_name is INDEX ON c (<expression>), expected INDEX ON c (name)"],
        ),
        (EXPECTED + 'CREATE INDEX "mine" ON "p" ("id");', ["index mine (INDEX ON p (id)) is not part of WEMS"]),
        # views and triggers
        (changed("AS SELECT id FROM p", "AS SELECT id FROM c"), ["view v is missing or different"]),
        (EXPECTED + 'CREATE TRIGGER "t" AFTER INSERT ON "p" BEGIN SELECT 1; END;', ["trigger t is not part of WEMS"]),
    ],
    ids=[
        "same",
        "type spelling",
        "column order",
        "CHECK not compared",
        "view whitespace",
        "history table ignored",
        "type",
        "NOT NULL",
        "default dropped",
        "default changed",
        "primary key",
        "missing column",
        "extra column",
        "ON DELETE",
        "foreign key dropped",
        "UNIQUE",
        "STRICT",
        "tables",
        "index missing",
        "index unique",
        "index columns",
        "index DESC",
        "index collation",
        "index WHERE",
        "index expression",
        "extra index",
        "view changed",
        "extra trigger",
    ],
)
def test_differences(actual, expected):
    assert in_english(differences(schema_from_sql(actual), schema_from_sql(EXPECTED))) == expected


@pytest.mark.parametrize(
    "actual, expected",
    [
        (EXPECTED + 'CREATE TABLE "q" ("id" INTEGER PRIMARY KEY);', []),
        (EXPECTED + 'CREATE INDEX "mine" ON "p" ("id");', []),
        (changed('"code" TEXT UNIQUE', '"code" TEXT UNIQUE, "badge" INT'), []),
        (changed('"name" VARCHAR(20)', '"name" TEXT'), ["column c.name has type TEXT, expected VARCHAR(20)"]),
        (changed('CREATE INDEX "c_name" ON "c" ("name");', ""), ["index c_name is missing"]),
    ],
    ids=["extra table", "extra index", "extra column", "changed column still reported", "missing still reported"],
)
def test_differences_allowing_extra_objects(actual, expected):
    assert in_english(differences(schema_from_sql(actual), schema_from_sql(EXPECTED), allow_extra=True)) == expected


def test_differences_are_not_symmetric_in_wording():
    assert in_english(differences(schema_from_sql(EXPECTED), schema_from_sql(changed("DEFAULT ''", "")))) == [
        "column c.name has default '', expected None"
    ]


def test_extra_columns_lists_only_columns_of_shared_tables():
    actual = changed('"code" TEXT UNIQUE', '"code" TEXT UNIQUE, "badge" INT') + 'CREATE TABLE "q" ("x" INT);'
    assert in_english(extra_columns(schema_from_sql(actual), schema_from_sql(EXPECTED))) == [
        "column c.badge (INT) is not part of WEMS"
    ]


@pytest.mark.parametrize(
    "keys, where, text",
    [
        ((("a", False, "BINARY"),), None, "INDEX ON t (a)"),
        ((("a", True, "BINARY"), ("b", False, "NOCASE")), None, "INDEX ON t (a DESC, b COLLATE NOCASE)"),
        (((None, False, "BINARY"),), "a > 1", "INDEX ON t (<expression>) WHERE a > 1"),
    ],
)
def test_index_describe(keys, where, text):
    assert Index("i", "t", False, keys, where).describe() == text


def test_differences_are_shown_in_french_and_kept_in_english():
    actual = changed('"name" VARCHAR(20)', '"name" TEXT') + 'CREATE TABLE "q" ("id" INTEGER PRIMARY KEY);'
    texts = difference_texts(schema_from_sql(actual), schema_from_sql(EXPECTED))
    assert in_english(texts) == differences(schema_from_sql(actual), schema_from_sql(EXPECTED))
    i18n.use("fr")
    assert [str(text) for text in texts] == [
        "la colonne c.name est de type TEXT au lieu de VARCHAR(20)",
        "la table q ne fait pas partie de WEMS",
    ]
    assert in_english(texts) == ["column c.name has type TEXT, expected VARCHAR(20)", "table q is not part of WEMS"]
