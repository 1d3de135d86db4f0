"""The app's own operations (its screens' queries, adding, updating, archiving and restoring an
employee) run on the upgraded database before COMMIT, under a SAVEPOINT that is rolled back."""

from __future__ import annotations

import shutil
from contextlib import closing
from pathlib import Path

import apsw
import pytest
from support import GENERATIONS, after_a_failure, database, table_rows

from upgrader.errors import EXIT_ROLLED_BACK, UpgradeFailed
from upgrader.executor import rolled_back
from upgrader.installation import locate
from upgrader.loader import APP_CHECKS_FILE, load_catalog, parse_app_operations
from upgrader.paths import migrations_dir
from upgrader.report import render_error, result_json
from upgrader.upgrade import upgrade
from upgrader.validator import APP_OPERATIONS, app_operations_check

G8 = "g8_optional_employee_fields"


@pytest.fixture
def copied_migrations(tmp_path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder)
    return folder


def edit_app_checks(folder: Path, step: str, old: str, new: str) -> None:
    path = folder / step / APP_CHECKS_FILE
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def app_check(result):
    return next(c for c in result.checks if c.name == APP_OPERATIONS)


@pytest.mark.parametrize("generation", GENERATIONS[:-1])
def test_every_generation_upgraded_to_the_latest_runs_every_operation(install, catalog, generation):
    result = upgrade(locate(install(generation), environ={}), backup=False)
    check = app_check(result)
    assert check.ok, check.problems
    names = [op.name for op in catalog.latest.app_operations]
    assert check.items == tuple(names) and len(names) >= 20
    assert f"{len(names)} of {len(names)}" in check.detail and "(g8)" in check.detail
    for wanted in (
        "list active employees",
        "list inactive employees",
        "list archived employees",
        "list the employees' CACES",
        "list the employees' medical visits",
        "list the employees' online trainings",
        "list the employees' contracts and amendments",
        "alerts: CACES expired or expiring soon",
        "alerts: medical visits due",
        "update the employee",
        "archive the employee",
        "bring the employee back",
        "add a CACES to the employee",
        "add a contract to the employee",
    ):
        assert wanted in names


def test_older_targets_run_their_own_generations_operations_or_say_there_are_none(install, catalog):
    result = upgrade(locate(install(5), environ={}), "g6", backup=False)
    check = app_check(result)
    assert check.ok and "(g6)" in check.detail
    assert check.items == tuple(op.name for op in catalog.step(6).app_operations)
    assert not any("contract" in item for item in check.items), "g6 has no contracts tables"
    result = upgrade(locate(install(1), environ={}), "g5", backup=False)
    check = app_check(result)
    assert check.ok and check.detail.startswith("none run") and "g5" in check.detail and not check.items


def test_a_generation_without_a_file_runs_the_newest_earlier_one(copied_migrations):
    (copied_migrations / G8 / APP_CHECKS_FILE).unlink()
    catalog = load_catalog(copied_migrations)
    assert catalog.latest.app_operations_from == 7
    assert catalog.latest.app_operations == catalog.step(7).app_operations
    assert [s.app_operations_from for s in catalog.steps[:5]] == [None] * 5


def test_the_operations_leave_no_trace(install):
    """Same rows, same values, as the database had after the migration and before the operations."""
    root = install(7)
    original = table_rows(root)
    result = upgrade(locate(root, environ={}), backup=False)
    assert app_check(result).ok
    after = table_rows(root)
    for table in (
        "employees",
        "caces",
        "medical_visits",
        "online_trainings",
        "contracts",
        "contract_amendments",
        "app_locks",
    ):
        assert after[table] == original[table], table
    assert not [r for r in after["employees"].values() if (r["external_id"] or "").startswith("WEMS-UPGRADE")]


def test_rolled_back_undoes_every_write_row_for_row(install, catalog):
    """Directly on an upgraded database, inside an open transaction as in migrate_copy."""
    root = install(8)
    before = table_rows(root)
    with closing(apsw.Connection(str(database(root)))) as conn:
        conn.execute("PRAGMA journal_mode=DELETE").fetchall()
        conn.execute("BEGIN IMMEDIATE")
        check = app_operations_check(conn, catalog.latest)
        assert check.ok, check.problems
        conn.execute("COMMIT")
    assert table_rows(root) == before


def test_journal_mode_off_is_refused_rather_than_keeping_the_writes(tmp_path):
    with closing(apsw.Connection(str(tmp_path / "t.db"))) as conn:
        conn.execute("CREATE TABLE t(x)")
        conn.execute("PRAGMA journal_mode=OFF").fetchall()
        conn.execute("BEGIN")
        with pytest.raises(UpgradeFailed, match="journal_mode=OFF"), rolled_back(conn):
            conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("ROLLBACK")


@pytest.mark.parametrize(
    "old, new, reason",
    [
        ("'actif', 'Quai', 'Cariste', :now", "'actif', NULL, 'Cariste', :now", "NOT NULL constraint failed"),
        (
            'WHERE "id" = :employee_id;\n\n-- name: archive',
            "WHERE \"id\" = 'nobody';\n\n-- name: archive",
            "changed no row",
        ),
        (
            'SELECT "t1".* FROM "employees" AS "t1"\nWHERE "t1"."deleted_at" IS NOT NULL',
            'SELECT "t1".* FROM "employees" AS "t1"\nWHERE "t1"."archived_at" IS NOT NULL',
            "no such column",
        ),
        ('DELETE FROM "app_locks" WHERE "id" = :lock_id;', "COMMIT;", "not allowed"),
        ("date(:today, '+5 years')", "date(:tomorrow, '+5 years')", "no value for the binding :tomorrow"),
    ],
)
def test_a_failing_operation_fails_the_upgrade_names_it_and_changes_nothing(
    install, copied_migrations, old, new, reason
):
    edit_app_checks(copied_migrations, G8, old, new)
    root = install(6)
    before = after_a_failure(root)
    with pytest.raises(UpgradeFailed) as failure:
        upgrade(locate(root, environ={}), catalog=load_catalog(copied_migrations), backup=False)
    assert failure.value.exit_code == EXIT_ROLLED_BACK == 7
    problem = next(d for d in failure.value.details if d.startswith(APP_OPERATIONS))
    assert reason in problem, problem
    names = [op.name for op in load_catalog(copied_migrations).latest.app_operations]
    operation = next(name for name in names if problem.startswith(f"{APP_OPERATIONS}: {name}: "))
    assert operation in render_error(failure.value)
    assert after_a_failure(root) == before


def test_a_foreign_key_the_app_would_refuse_fails_the_upgrade(install, copied_migrations):
    """foreign_keys is off in the migration's transaction; a write pointing nowhere is still caught."""
    edit_app_checks(
        copied_migrations,
        G8,
        "VALUES (:caces_id, :employee_id, 'R489-1A'",
        "VALUES (:caces_id, 'no-such-employee', 'R489-1A'",
    )
    edit_app_checks(
        copied_migrations,
        G8,
        'INNER JOIN "caces" AS "t2" ON ("t2"."employee_id" = "t1"."id")\nINNER JOIN "contracts"',
        'INNER JOIN "contracts"',
    )
    edit_app_checks(copied_migrations, G8, '"t2"."kind", "t2"."expiration_date", ', "")
    for _twice in range(2):  # archive and bring back its CACES
        edit_app_checks(
            copied_migrations,
            G8,
            '"employee_id" = :employee_id AND "deleted_at" IS',
            '"employee_id" = \'no-such-employee\' AND "deleted_at" IS',
        )
    root = install(7)
    with pytest.raises(UpgradeFailed) as failure:
        upgrade(locate(root, environ={}), catalog=load_catalog(copied_migrations), backup=False)
    assert any("caces" in d and "missing employees" in d for d in failure.value.details), failure.value.details


def test_json_lists_the_operations(install):
    result = upgrade(locate(install(4), environ={}), dry_run=True)
    entry = next(c for c in result_json(result)["checks"] if c["name"] == APP_OPERATIONS)
    assert entry["ok"] and entry["items"] == list(app_check(result).items) and entry["detail"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("SELECT 1;\n-- name: x\nSELECT 2;", "before the first"),
        ("-- name: x\nSELECT 1;\n-- name: x\nSELECT 2;", "two operations"),
        ("-- name: x\n-- only a comment\n", "has no SQL"),
    ],
)
def test_a_malformed_file_is_refused_when_loaded(text, message):
    with pytest.raises(ValueError, match=message):
        parse_app_operations(text)


def test_the_catalog_digest_covers_the_app_operations(copied_migrations):
    before = load_catalog(copied_migrations).digest
    edit_app_checks(copied_migrations, "g7_contracts", "'2.1.4'", "'2.1.5'")
    assert load_catalog(copied_migrations).digest != before
    spec = (Path(__file__).parents[1] / "build" / "wems-upgrade.spec").read_text(encoding="utf-8")
    assert '(str(ROOT / "migrations"), "migrations")' in spec, "the binary embeds the whole folder"
