"""The migrations/ folder as data: each step proven against its expected schema, and a
future release added by one folder; broken SQL is caught and rolled back, never half-applied."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import after_a_failure, file_digests, query

from upgrader.errors import MalformedMigrations, UpgradeError, UpgradeFailed
from upgrader.installation import locate
from upgrader.loader import load_catalog
from upgrader.operations import parse_operations, split_statements
from upgrader.paths import migrations_dir
from upgrader.schema import differences, schema_from_sql
from upgrader.upgrade import upgrade


@pytest.mark.parametrize("generation", range(2, 9))
def test_each_steps_sql_turns_the_previous_fresh_schema_into_its_own(catalog, generation):
    before = catalog.step(generation - 1).schema_sql
    result = schema_from_sql(before + "\n" + catalog.step(generation).up_sql)
    assert differences(result, catalog.step(generation).schema) == []


def test_every_step_has_a_description_and_releases(catalog):
    for step in catalog.steps:
        assert step.description and step.releases
    assert catalog.latest.last_release is not None


@pytest.fixture
def copied_migrations(tmp_path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder)
    return folder


def test_a_future_release_is_one_more_folder(install, copied_migrations):
    g9 = copied_migrations / "g9_badges"
    g9.mkdir()
    (g9 / "step.toml").write_text(
        'generation = 9\ndescription = "Employees get a badge number"\n'
        'releases = "v3.0.0"\nfirst_release = "3.0.0"\nlast_release = "3.0.0"\n',
        encoding="utf-8",
    )
    (g9 / "up.sql").write_text('ALTER TABLE "employees" ADD COLUMN "badge" VARCHAR(32);\n', encoding="utf-8")
    schema = (copied_migrations / "g8_optional_employee_fields" / "schema.sql").read_text(encoding="utf-8")
    (g9 / "schema.sql").write_text(
        schema.replace(
            '"deletion_reason" TEXT\n);\nCREATE INDEX "employee_',
            '"deletion_reason" TEXT,\n    "badge" VARCHAR(32)\n);\nCREATE INDEX "employee_',
            1,
        ),
        encoding="utf-8",
    )
    catalog = load_catalog(copied_migrations)
    assert catalog.latest.label == "g9"
    root = install(3)
    result = upgrade(locate(root, environ={}), catalog=catalog)
    assert all(c.ok for c in result.checks)
    assert query(root, "SELECT count(badge) FROM employees") == [(0,)]


def tamper(folder: Path, step: str, old: str, new: str) -> None:
    path = folder / step / "up.sql"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_rebuild_that_loses_on_delete_cascade_is_caught_before_anything_is_written(install, copied_migrations):
    tamper(
        copied_migrations,
        "g2_optional_documents",
        'REFERENCES "employees" ("id") ON DELETE CASCADE',
        'REFERENCES "employees" ("id")',
    )
    root = install(1)
    before = file_digests(root)
    with pytest.raises(UpgradeError) as failure:
        upgrade(locate(root, environ={}), catalog=load_catalog(copied_migrations))
    assert any("lacks foreign key" in d and "ON DELETE CASCADE" in d for d in failure.value.details)
    assert file_digests(root) == before


def test_sql_that_loses_rows_fails_validation_and_changes_nothing(install, copied_migrations):
    tamper(copied_migrations, "g2_optional_documents", 'FROM "caces";', 'FROM "caces" WHERE rowid % 2 = 0;')
    root = install(1)
    before = after_a_failure(root)
    with pytest.raises(UpgradeFailed) as failure:
        upgrade(locate(root, environ={}), catalog=load_catalog(copied_migrations))
    assert any("caces" in d and "rows before" in d for d in failure.value.details)
    assert after_a_failure(root) == before


def test_sql_that_fails_on_the_users_data_changes_nothing(install, copied_migrations):
    tamper(
        copied_migrations,
        "g4_medical_result_index",
        'CREATE INDEX "medicalvisit_result"',
        'CREATE UNIQUE INDEX "medicalvisit_result"',
    )
    (copied_migrations / "g4_medical_result_index" / "schema.sql").write_text(
        (copied_migrations / "g4_medical_result_index" / "schema.sql")
        .read_text(encoding="utf-8")
        .replace('CREATE INDEX "medicalvisit_result"', 'CREATE UNIQUE INDEX "medicalvisit_result"'),
        encoding="utf-8",
    )
    root = install(3)
    before = after_a_failure(root)
    with pytest.raises(UpgradeFailed) as failure:
        upgrade(locate(root, environ={}), "g4", catalog=load_catalog(copied_migrations))
    assert "UNIQUE" in failure.value.message or "unique" in failure.value.message.lower()
    assert after_a_failure(root) == before


def test_statements_are_split_and_grouped_into_operations():
    sql = (
        '-- comment\nCREATE TABLE "new_t" ("a" TEXT);\nINSERT INTO "new_t" ("a") SELECT "a" FROM "t";\n'
        'DROP TABLE "t";\nALTER TABLE "new_t" RENAME TO "t";\nCREATE INDEX "i" ON "t" ("a");\n'
        "UPDATE t SET a = 'x;y';\n"
    )
    assert len(split_statements(sql)) == 6
    assert [(o.kind, o.target) for o in parse_operations(sql)] == [
        ("rebuild", "t"),
        ("create_index", "i"),
        ("sql", "UPDATE t SET a = 'x;y';"),
    ]


def test_a_malformed_rebuild_is_rejected_when_the_catalog_loads():
    with pytest.raises(MalformedMigrations, match="rebuild of t must be"):
        parse_operations('CREATE TABLE "new_t" ("a" TEXT);\nDROP TABLE "t";\n')


def test_a_rebuild_that_moves_values_between_columns_is_rejected_when_loaded(copied_migrations):
    tamper(
        copied_migrations,
        "g8_optional_employee_fields",
        'SELECT "id", "external_id", "first_name", "last_name"',
        'SELECT "id", "external_id", "last_name", "first_name"',
    )
    with pytest.raises(MalformedMigrations, match="same columns in the same order"):
        load_catalog(copied_migrations)


def test_sql_that_changes_values_fails_the_values_check(install, copied_migrations):
    tamper(
        copied_migrations,
        "g8_optional_employee_fields",
        'SELECT "id", "external_id", "first_name"',
        'SELECT "id", "external_id", upper("first_name")',
    )
    root = install(7)
    before = after_a_failure(root)
    with pytest.raises(UpgradeFailed) as failure:
        upgrade(locate(root, environ={}), catalog=load_catalog(copied_migrations))
    assert any(d.startswith("values: employees") for d in failure.value.details)
    assert after_a_failure(root) == before


def test_sql_that_breaks_references_fails(install, copied_migrations):
    tamper(copied_migrations, "g8_optional_employee_fields", 'FROM "employees";', 'FROM "employees" WHERE rowid > 5;')
    root = install(7)
    with pytest.raises(UpgradeFailed) as failure:
        upgrade(locate(root, environ={}), catalog=load_catalog(copied_migrations))
    assert any("point to a missing employees" in d for d in failure.value.details)
